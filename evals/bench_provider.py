"""What a thin OpenAI-compatible provider would save: the client's cost of one call, and of a
CoLM run, on raw httpx, on a minimal LangChain chat model over httpx, and on ``ChatOpenAI``.

    python evals/bench_provider.py [--quick] [--json FILE]

The endpoint is the test suite's ``FakeOpenAIServer`` (``tests/support/openai_server.py``) in
its own process on 127.0.0.1, answering at once or after 50 ms. Three clients make the same
requests (usage included: ``stream_options.include_usage`` when streamed):

* ``raw_httpx``: one ``httpx.AsyncClient`` POST per call, the JSON (or the SSE events)
  parsed into the reply text and its usage. No LangChain at all: no callbacks, caches, rate
  limiters or tracing.
* ``thin``: :class:`ThinChatModel`, a ``BaseChatModel`` whose ``_agenerate``/``_astream``
  are that same httpx call. LangChain's features stay (they live in ``BaseChatModel``); what
  ``ChatOpenAI`` adds beyond the wire call (tools, structured output, retries, the openai
  error types, reasoning fields, ...) does not.
* ``chat_openai``: ``ChatOpenAI`` as the pool builds it (``stream_usage=True``,
  ``max_retries=2``; the pool's subclass keeping ``reasoning_content``).

1. Per call, at concurrency 32, not streamed and streamed: calls/s and client CPU per call
   (``time.process_time`` of this process; the server runs elsewhere), median of repeats.
2. Per CoLM run (4 clients, server guidance, 2 rounds of revisions: 14 calls in 5 steps),
   zero server latency: client CPU of the CoLM graph over an ``openai`` pool on that server,
   against the same 14 calls made by plain asyncio with each of the three clients; a
   cProfile of the graph run by layer. The provider layer's share of a CoLM run is
   (plain ``ChatOpenAI`` - plain raw httpx) / graph, the most any provider could save.

The fake server closes every connection after its response (``Connection: close``), so
each call also pays a TCP connect; that is the same for all three clients. Timings depend on
the machine and its load; nothing here is a test assertion. ``run()`` returns the figures as
a dict (``evals/bench.py`` imports this file by path).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 32
#: The key variable of the bench pool's paid entry: a placeholder for a local fake server.
KEY_ENV = "COLM_BENCH_PROVIDER_KEY"
#: Figures of the issue (issue 15), for comparison: client CPU per CoLM run over HTTP, ms.
ISSUE_COLM_RUN_CPU_MS = {"graph": "66-72", "plain_chat_openai": "54-57", "plain_raw_httpx": "23-25"}
#: cProfile packages by layer (anything else: "other").
LAYERS = {
    "HTTP stack (httpx, httpcore, anyio, h11)": ("httpx", "httpcore", "anyio", "h11", "sniffio"),
    "openai SDK": ("openai",),
    "langchain_openai": ("langchain_openai",),
    "LangChain core (+ langsmith)": ("langchain_core", "langsmith"),
    "LangGraph": ("langgraph",),
    "colm_graph": ("colm_graph",),
    "pydantic": ("pydantic", "pydantic_core"),
    "Python stdlib and builtins (asyncio, json, ...)": ("stdlib:", "builtin:"),
}


def _bench() -> ModuleType:
    """evals/bench.py (its server process, request helpers and profile summary)."""
    if "_bench" in sys.modules:
        return sys.modules["_bench"]
    spec = importlib.util.spec_from_file_location("_bench", ROOT / "evals" / "bench.py")
    if spec is None or spec.loader is None:
        raise ImportError("cannot import evals/bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["_bench"] = module
    spec.loader.exec_module(module)
    return module


# -- the thin provider prototype -------------------------------------------------------------

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def wire_messages(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """Chat Completions messages of LangChain messages (text content only)."""
    return [{"role": _ROLES.get(m.type, "user"), "content": m.content} for m in messages]


def usage_metadata(usage: dict[str, Any] | None) -> dict[str, int] | None:
    if not usage:
        return None
    i, o = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return {"input_tokens": i, "output_tokens": o, "total_tokens": i + o}


DONE: dict[str, Any] = {}
"""What :func:`sse_event` returns for ``data: [DONE]``."""


def sse_event(line: str) -> dict[str, Any] | None:
    """The JSON event of one SSE line (``None``: not a data line; :data:`DONE`: the end)."""
    if not line.startswith("data: "):
        return None
    data = line[6:]
    return DONE if data.strip() == "[DONE]" else json.loads(data)


_SHARED: dict[tuple[int, str], Any] = {}


def shared_client(base_url: str, headers: dict[str, str] | None = None) -> Any:
    """One ``httpx.AsyncClient`` per event loop and endpoint, shared by every caller (as
    ``ChatOpenAI`` shares its default client): a client is bound to the loop it first ran
    on, and making one costs milliseconds (its SSL context)."""
    import httpx

    key = (id(asyncio.get_running_loop()), base_url)
    client = _SHARED.get(key)
    if client is None:
        for old in [k for k in _SHARED if k[0] != key[0]]:  # clients of finished loops
            del _SHARED[old]
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        client = _SHARED[key] = httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits,
                                                  headers=headers)
    return client


class ThinChatModel(BaseChatModel):
    """A minimal OpenAI-compatible chat model: one httpx request per call, text replies and
    usage only. A measuring prototype, not a provider: no tools, structured output, retries,
    error mapping or reasoning fields."""

    base_url: str
    model: str = "fake"
    api_key: str = "sk-local"

    @property
    def _llm_type(self) -> str:
        return "thin-openai-httpx"

    def _client(self) -> Any:
        return shared_client(self.base_url, {"Authorization": f"Bearer {self.api_key}"})

    def _body(self, messages: list[BaseMessage], stop: Any, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": wire_messages(messages)}
        if stop:
            body["stop"] = stop
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        import httpx

        resp = httpx.post(f"{self.base_url}/chat/completions",
                          json=self._body(messages, stop, False), timeout=60,
                          headers={"Authorization": f"Bearer {self.api_key}"})
        resp.raise_for_status()
        return self._result(resp.json())

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        resp = await self._client().post("/chat/completions",
                                         json=self._body(messages, stop, False))
        resp.raise_for_status()
        return self._result(resp.json())

    def _result(self, data: dict[str, Any]) -> ChatResult:
        choice = data["choices"][0]
        usage = data.get("usage")
        msg = AIMessage(content=choice["message"].get("content") or "",
                        usage_metadata=usage_metadata(usage),  # type: ignore[arg-type]
                        response_metadata={"model_name": data.get("model"),
                                           "finish_reason": choice.get("finish_reason")})
        return ChatResult(generations=[ChatGeneration(message=msg)],
                          llm_output={"token_usage": usage, "model_name": data.get("model")})

    async def _astream(self, messages: list[BaseMessage], stop: Any = None,
                       run_manager: Any = None, **kwargs: Any
                       ) -> AsyncIterator[ChatGenerationChunk]:
        async with self._client().stream("POST", "/chat/completions",
                                         json=self._body(messages, stop, True)) as resp:
            resp.raise_for_status()
            async for line in resp.aiter_lines():
                event = sse_event(line)
                if event is None:
                    continue
                if event is DONE:
                    break
                choices = event.get("choices") or []
                text = ((choices[0].get("delta") or {}).get("content") or "") if choices else ""
                chunk = ChatGenerationChunk(message=AIMessageChunk(
                    content=text,
                    usage_metadata=usage_metadata(event.get("usage"))))  # type: ignore[arg-type]
                if run_manager is not None and text:
                    await run_manager.on_llm_new_token(text, chunk=chunk)
                yield chunk


# -- per call --------------------------------------------------------------------------------

Batch = Callable[[int, int, bool], Awaitable[list[float]]]


def _clients(base_url: str) -> dict[str, Batch]:
    """Each client as ``batch(n, concurrency, stream) -> latencies``."""
    from colm_graph.pool import ModelSpec
    from colm_graph.pool.providers.openai import build

    b = _bench()
    chat = build(ModelSpec(name="bench", provider="openai", model="fake", base_url=base_url,
                           tier="local"))
    thin = ThinChatModel(base_url=base_url)
    return {
        "raw_httpx": lambda n, c, s: b._raw_httpx(base_url, n, c, stream=s,
                                                  client=shared_client(base_url)),
        "thin": lambda n, c, s: b._chat_openai(thin, n, c, stream=s),
        "chat_openai": lambda n, c, s: b._chat_openai(chat, n, c, stream=s),
    }


async def _timed_batch(batch: Batch, n: int, concurrency: int, stream: bool
                       ) -> dict[str, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    lat = sorted(await batch(n, concurrency, stream))
    return {"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0,
            "p50_s": lat[len(lat) // 2]}


def bench_calls(latency: float, n: int, reps: int, concurrency: int = CONCURRENCY
                ) -> dict[str, Any]:
    """Per call: each client's calls/s and client CPU per call, ``reps`` batches of ``n``
    calls each, interleaved (so that a change of the machine's load hits all three), all on
    one event loop after a warm-up batch of each."""
    b = _bench()
    out: dict[str, Any] = {"latency_s": latency, "calls": n, "concurrency": concurrency,
                           "reps": reps, "ideal_calls_per_s": round(concurrency / latency, 1)
                           if latency else None}
    with b.ServerProcess(latency, backlog=128) as srv:
        clients = _clients(srv.base_url)

        async def measure(stream: bool) -> tuple[dict[str, list[dict[str, float]]],
                                                 dict[str, float]]:
            timed: dict[str, list[dict[str, float]]] = {label: [] for label in clients}
            server_cpu = dict.fromkeys(clients, 0.0)
            for batch in clients.values():
                await batch(min(n, concurrency), concurrency, stream)  # warm-up
            for _ in range(reps):
                for label, batch in clients.items():
                    srv.stats()
                    timed[label].append(await _timed_batch(batch, n, concurrency, stream))
                    server_cpu[label] += srv.stats()["cpu_s"]
            return timed, server_cpu

        for mode in ("json", "stream"):
            timed, server_cpu = asyncio.run(measure(mode == "stream"))
            rows: dict[str, Any] = {}
            for label, timings in timed.items():
                cpu = [t["cpu_s"] / n * 1000 for t in timings]
                rate = [n / t["wall_s"] for t in timings]
                rows[label] = {"calls_per_s": round(statistics.median(rate), 1),
                               "calls_per_s_range": [round(min(rate), 1), round(max(rate), 1)],
                               "client_cpu_ms_per_call": round(statistics.median(cpu), 3),
                               "client_cpu_ms_range": [round(min(cpu), 3), round(max(cpu), 3)],
                               "server_cpu_ms_per_call": round(server_cpu[label] / (n * reps)
                                                               * 1000, 3),
                               "latency_p50_ms": round(statistics.median(
                                   t["p50_s"] for t in timings) * 1000, 2)}
            co, raw, thin = rows["chat_openai"], rows["raw_httpx"], rows["thin"]
            rows["ratios"] = {
                "cpu_chat_openai_over_raw": round(co["client_cpu_ms_per_call"]
                                                  / raw["client_cpu_ms_per_call"], 2),
                "cpu_chat_openai_over_thin": round(co["client_cpu_ms_per_call"]
                                                   / thin["client_cpu_ms_per_call"], 2),
                "rate_raw_over_chat_openai": round(raw["calls_per_s"] / co["calls_per_s"], 2),
                "rate_thin_over_chat_openai": round(thin["calls_per_s"] / co["calls_per_s"], 2),
            }
            out[mode] = rows
    return out


# -- per CoLM run ----------------------------------------------------------------------------


def _http_pool(base_url: str) -> Any:
    from colm_graph import ModelPool

    os.environ.setdefault(KEY_ENV, "sk-local-bench")  # a placeholder for the local fake
    models = [{"name": f"client{i}", "provider": "openai", "model": "fake",
               "base_url": base_url, "tier": "local"} for i in range(4)]
    models.append({"name": "server", "provider": "openai", "model": "fake", "base_url": base_url,
                   "tier": "paid", "api_key_env": KEY_ENV,
                   "price": {"input": 1.0, "output": 1.0}})
    return ModelPool.from_dict({"models": models})


def _raw_caller(base_url: str) -> Callable[[Any, str], Awaitable[str]]:
    """``call(model, prompt) -> text`` with raw httpx (the shared client of the loop)."""
    async def call(model: Any, prompt: str) -> str:
        resp = await shared_client(base_url).post("/chat/completions", json={
            "model": "fake", "messages": [{"role": "user", "content": prompt}]})
        resp.raise_for_status()
        data = resp.json()
        usage_metadata(data.get("usage"))
        return data["choices"][0]["message"]["content"] or ""

    return call


def _layers(summary: dict[str, Any], profile: cProfile.Profile, runs: int) -> dict[str, Any]:
    """cProfile own time per run grouped into LAYERS (all packages, not only the top)."""
    import pstats

    b = _bench()
    by: dict[str, float] = {}
    stdlib: dict[str, float] = {}
    for (filename, _line, func), (_cc, _n, tottime, _ct, _) in pstats.Stats(profile).stats.items():
        if filename == "~" and any(mark in func for mark in b.IDLE):
            continue
        pkg = b._pkg(filename, func)
        layer = next((name for name, prefixes in LAYERS.items()
                      if any(pkg == p or pkg.startswith(p) for p in prefixes)), "other")
        by[layer] = by.get(layer, 0.0) + tottime
        if pkg.startswith(("stdlib:", "builtin:")):
            stdlib[pkg] = stdlib.get(pkg, 0.0) + tottime
    total = sum(by.values())
    return {"profiled_cpu_ms_per_run": round(total / runs * 1000, 2),
            "layers": [{"layer": k, "ms_per_run": round(v / runs * 1000, 2),
                        "share": round(v / total, 3)}
                       for k, v in sorted(by.items(), key=lambda kv: -kv[1])],
            "stdlib_top": [{"module": k, "share": round(v / total, 3)}
                           for k, v in sorted(stdlib.items(), key=lambda kv: -kv[1])[:5]],
            "top_packages": summary["by_package"]}


def bench_colm_run(runs: int, reps: int, profile_runs: int) -> dict[str, Any]:
    from colm_graph import create_colm_graph

    b = _bench()
    out: dict[str, Any] = {"runs": runs, "reps": reps, "server_latency_s": 0.0,
                           "issue_figures_ms": ISSUE_COLM_RUN_CPU_MS}
    with b.ServerProcess(0.0, backlog=128, replies="distinct") as srv:
        pool = _http_pool(srv.base_url)
        graph = create_colm_graph(pool=pool, clients=[f"client{i}" for i in range(4)],
                                  server="server", top_k=4, rounds=2,
                                  skip_guidance_when_agreed=False)
        check = asyncio.run(graph.ainvoke(dict(b.QUESTION)))
        out["graph_calls_per_run"] = len(check["ledger"])
        chat = [pool.entry(f"client{i}").chat_model for i in range(4)]
        server = pool.entry("server").chat_model
        thin = [ThinChatModel(base_url=srv.base_url) for _ in range(5)]
        raw = _raw_caller(srv.base_url)
        question = b.QUESTION["question"]

        async def lc(models: list[Any], model: Any, prompt: str) -> str:
            return (await models[model if model != "server" else 4].ainvoke(prompt)).text

        variants: dict[str, Callable[[], Awaitable[Any]]] = {
            "graph": lambda: graph.ainvoke(dict(b.QUESTION)),
            "plain_chat_openai": lambda: b.plain_colm(
                lambda m, p: lc([*chat, server], m, p), question),
            "plain_thin": lambda: b.plain_colm(lambda m, p: lc(thin, m, p), question),
            "plain_raw_httpx": lambda: b.plain_colm(raw, question),
        }
        async def measure() -> dict[str, list[tuple[float, float]]]:
            """(CPU, wall) ms per run of each variant: ``runs`` runs, ``reps`` times,
            interleaved, on one event loop after a warm-up of each."""
            measured: dict[str, list[tuple[float, float]]] = {label: [] for label in variants}
            for fn in variants.values():
                for _ in range(max(2, runs // 4)):
                    await fn()
            for _ in range(reps):
                for label, fn in variants.items():
                    c0, w0 = time.process_time(), time.perf_counter()
                    for _ in range(runs):
                        await fn()
                    measured[label].append(((time.process_time() - c0) / runs * 1000,
                                            (time.perf_counter() - w0) / runs * 1000))
            return measured

        for label, ms in asyncio.run(measure()).items():
            cpu = [c for c, _ in ms]
            out[label] = {"cpu_ms_per_run": round(statistics.median(cpu), 2),
                          "cpu_ms_range": [round(min(cpu), 2), round(max(cpu), 2)],
                          "wall_ms_per_run": round(statistics.median(w for _, w in ms), 2)}
        srv.stats()
        prof = cProfile.Profile()

        async def profiled() -> None:
            for _ in range(profile_runs):
                await graph.ainvoke(dict(b.QUESTION))

        prof.enable()
        asyncio.run(profiled())
        prof.disable()
        out["graph_profile"] = _layers(b._profile_summary(prof, profile_runs, top=10), prof,
                                       profile_runs)
    g = out["graph"]["cpu_ms_per_run"]
    co = out["plain_chat_openai"]["cpu_ms_per_run"]
    out["ratios"] = {
        "graph_over_plain_chat_openai": round(g / co, 2),
        "graph_over_plain_raw_httpx": round(g / out["plain_raw_httpx"]["cpu_ms_per_run"], 2),
        "plain_chat_openai_over_plain_raw": round(
            co / out["plain_raw_httpx"]["cpu_ms_per_run"], 2),
        "plain_chat_openai_over_plain_thin": round(co / out["plain_thin"]["cpu_ms_per_run"], 2),
        # the most a provider could take off a CoLM run, and what a LangChain-keeping one does
        "provider_share_max": round((co - out["plain_raw_httpx"]["cpu_ms_per_run"]) / g, 3),
        "provider_share_thin": round((co - out["plain_thin"]["cpu_ms_per_run"]) / g, 3),
    }
    return out


# -- report ----------------------------------------------------------------------------------


def run(quick: bool = False) -> dict[str, Any]:
    """Every figure of this file as a dict (prints nothing)."""
    for var in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        os.environ[var] = "false"
    n, reps, latencies = (64, 1, (0.0,)) if quick else (192, 3, (0.0, 0.05))
    return {
        "quick": quick,
        "per_call": [bench_calls(latency, n, reps) for latency in latencies],
        "colm_run": bench_colm_run(runs=3 if quick else 20, reps=1 if quick else 5,
                                   profile_runs=2 if quick else 10),
    }


def print_report(sec: dict[str, Any], indent: str = "  ") -> None:
    for per in sec["per_call"]:
        lat = per["latency_s"] * 1000
        ideal = f", ideal {per['ideal_calls_per_s']:.0f} calls/s" if per["ideal_calls_per_s"] \
            else ""
        print(f"{indent}server {lat:.0f} ms, {per['calls']} calls at concurrency"
              f" {per['concurrency']}{ideal}; median of {per['reps']}:")
        for mode in ("json", "stream"):
            rows = per[mode]
            for label in ("raw_httpx", "thin", "chat_openai"):
                r = rows[label]
                print(f"{indent}  {mode:6s} {label:11s} {r['calls_per_s']:7.1f} calls/s"
                      f" ({r['calls_per_s_range'][0]:.0f}-{r['calls_per_s_range'][1]:.0f}),"
                      f" client CPU {r['client_cpu_ms_per_call']:.3f} ms/call"
                      f" ({r['client_cpu_ms_range'][0]:.2f}-{r['client_cpu_ms_range'][1]:.2f}),"
                      f" server CPU {r['server_cpu_ms_per_call']:.2f}, p50"
                      f" {r['latency_p50_ms']:.1f} ms")
            x = rows["ratios"]
            print(f"{indent}  {mode:6s} ChatOpenAI CPU/call = {x['cpu_chat_openai_over_raw']:.2f}x"
                  f" raw httpx, {x['cpu_chat_openai_over_thin']:.2f}x thin; calls/s raw ="
                  f" {x['rate_raw_over_chat_openai']:.2f}x ChatOpenAI, thin ="
                  f" {x['rate_thin_over_chat_openai']:.2f}x")
    c = sec["colm_run"]
    print(f"{indent}CoLM run over HTTP (k=4, R=2, {c['graph_calls_per_run']} calls, server 0 ms):"
          f" client CPU per run, median of {c['reps']} x {c['runs']} runs (issue figures in"
          " brackets):")
    for label in ("graph", "plain_chat_openai", "plain_thin", "plain_raw_httpx"):
        r = c[label]
        issue = c["issue_figures_ms"].get(label)
        print(f"{indent}  {label:18s} {r['cpu_ms_per_run']:7.2f} ms"
              f" ({r['cpu_ms_range'][0]:.1f}-{r['cpu_ms_range'][1]:.1f})"
              f"{f' [{issue}]' if issue else ''}; wall {r['wall_ms_per_run']:.1f} ms")
    x = c["ratios"]
    print(f"{indent}  graph = {x['graph_over_plain_chat_openai']:.2f}x plain ChatOpenAI,"
          f" {x['graph_over_plain_raw_httpx']:.2f}x plain raw httpx; plain ChatOpenAI ="
          f" {x['plain_chat_openai_over_plain_raw']:.2f}x raw, ="
          f" {x['plain_chat_openai_over_plain_thin']:.2f}x thin")
    print(f"{indent}  provider layer's share of a CoLM run's client CPU: at most"
          f" {x['provider_share_max']:.1%} (ChatOpenAI -> raw httpx, LangChain's features"
          f" gone); {x['provider_share_thin']:.1%} with a thin BaseChatModel on httpx")
    p = c["graph_profile"]
    print(f"{indent}  graph profile by layer (cProfile, {p['profiled_cpu_ms_per_run']:.1f} ms"
          " per run):")
    for layer in p["layers"]:
        print(f"{indent}    {layer['layer']:48s} {layer['ms_per_run']:7.2f} ms"
              f" {layer['share']:6.1%}")
    print(f"{indent}    (largest stdlib parts: " + ", ".join(
        f"{m['module'].split(':', 1)[1]} {m['share']:.1%}" for m in p["stdlib_top"]) + ")")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    report = run(args.quick)
    print("Provider layer: raw httpx vs a thin BaseChatModel on httpx vs ChatOpenAI"
          f" (load average {[round(x, 2) for x in os.getloadavg()]})")
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
