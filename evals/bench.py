"""Performance figures of colm_graph, measured side by side in one run.

    python evals/bench.py [--quick] [--json FILE]

1. Orchestration overhead: wall time / critical path of CoLM (k=4, R=2, guidance every
   round) and COPE (3 samples, all three stages) on fake chat models with injected latency,
   for ``ainvoke`` and ``invoke``. The critical path is the sum over steps of the longest
   call of the step, from the ledger (records grouped by node and round/stage). Where the
   target is missed, the gap is split into time before the first call, between steps,
   stagger inside a parallel step and after the last call, and a zero-latency run is
   profiled.
2. Eval throughput of the ``single`` graph against a local OpenAI-compatible server (the
   test suite's FakeOpenAIServer, run in its own process) at concurrency 32, next to the
   same requests made with raw httpx and with plain ``ChatOpenAI.ainvoke``, and a sequential
   ``ChatOpenAI.invoke`` loop.
3. Footprint: ``import colm_graph`` time (and whether torch got imported); peak RSS of a
   simulated 1000-item eval of ``colm`` in a child process, and whether results stream to
   disk.
4. Local models: ``evals/bench_hf.py``'s ``run()`` (batched vs one-at-a-time generation),
   when that file exists.

Timings depend on the machine; nothing here is a test assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import importlib.util
import inspect
import itertools
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = ROOT / "tests" / "support"

OVERHEAD_TARGET = 1.03
THROUGHPUT_TARGET = 0.9
IMPORT_TARGET_S = 0.5
RSS_TARGET_MB = 500.0


# -- helpers ---------------------------------------------------------------------------------


def _load(path: Path, name: str) -> ModuleType:
    """Import a module from a file path (registered in sys.modules, for pydantic)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def _status(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _pkg(filename: str, func: str) -> str:
    """A coarse owner of a profiled function: its top-level package, or the builtin."""
    if filename == "~":
        return "builtin:" + func.strip("<>").replace("built-in method ", "")[:40]
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if str(ROOT) in filename:
        rel = Path(filename).relative_to(ROOT).parts
        return rel[0] if rel[0] != "colm_graph" else "colm_graph"
    return "stdlib:" + Path(filename).stem


IDLE = ("poll' of 'select.epoll", "select' of 'select", "acquire' of '_thread.lock")


#: (label, file suffix, function): cumulative time of these entry points is reported.
HOTSPOTS = [
    ("LangChain chat-model ainvoke (whole call, fake reply included)",
     "langchain_core/language_models/chat_models.py", "ainvoke"),
    ("node wrapper RunnableLambda -> acall_func_with_variable_args",
     "langchain_core/runnables/config.py", "acall_func_with_variable_args"),
    ("inspect.signature (per-call signature inspection)", "inspect.py", "signature"),
    ("callback manager setup (CallbackManager._configure)",
     "langchain_core/callbacks/manager.py", "_configure"),
    ("LangGraph apply_writes", "langgraph/pregel/_algo.py", "apply_writes"),
    ("LangGraph prepare_next_tasks", "langgraph/pregel/_algo.py", "prepare_next_tasks"),
    ("openai client request (AsyncAPIClient.request)", "openai/_base_client.py", "request"),
    ("results.jsonl row (result_row)", "colm_graph/evaluation/runner.py", "result_row"),
]


def _profile_summary(profile: cProfile.Profile, runs: int, top: int = 8) -> dict[str, Any]:
    """CPU (tottime) per run by package and the top functions, idle waits left out."""
    stats = pstats.Stats(profile)
    by_pkg: collections.Counter[str] = collections.Counter()
    funcs: list[tuple[float, float, int, str]] = []
    idle = 0.0
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _) in stats.stats.items():
        if filename == "~" and any(mark in func for mark in IDLE):
            idle += tottime
            continue
        by_pkg[_pkg(filename, func)] += tottime
        where = func if filename == "~" else f"{_short(filename)}:{line}({func})"
        funcs.append((tottime, cumtime, ncalls, where))
    total = sum(by_pkg.values())
    funcs.sort(reverse=True)
    hot = {}
    for label, suffix, name in HOTSPOTS:
        cum = [(ct, nc) for (f, _, fn), (_, nc, _, ct, _) in stats.stats.items()
               if fn == name and f.endswith(suffix)]
        if cum:
            hot[label] = {"cumtime_ms_per_run": _ms(sum(c for c, _ in cum) / runs),
                          "calls_per_run": sum(n for _, n in cum) / runs}
    return {
        "cpu_ms_per_run": _ms(total / runs),
        "idle_wait_ms_per_run": _ms(idle / runs),
        "by_package": [{"package": k, "ms_per_run": _ms(v / runs), "share": round(v / total, 3)}
                       for k, v in by_pkg.most_common(top)],
        "top_functions": [{"function": w, "tottime_ms_per_run": _ms(t / runs),
                           "cumtime_ms_per_run": _ms(c / runs), "calls_per_run": n / runs}
                          for t, c, n, w in funcs[:top]],
        "hotspots": hot,
    }


def _short(filename: str) -> str:
    parts = Path(filename).parts
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1:])
    if str(ROOT) in filename:
        return str(Path(filename).relative_to(ROOT))
    return Path(filename).name


def machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for dist in ("langgraph", "langchain-core", "langchain-openai", "openai", "httpx",
                 "pydantic"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = None
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"cpu_count": os.cpu_count(), "usable_cores": usable, "memory_gb": mem_gb,
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "processor": platform.processor() or None,
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg")
            else None,
            "versions": versions}


# -- 1. orchestration overhead ---------------------------------------------------------------


def _colm_graph(latency: float) -> Any:
    from colm_graph import ModelPool, create_colm_graph

    fakes = _load(SUPPORT / "fakes.py", "_bench_fakes")
    pool = ModelPool()
    for i in range(4):  # four clients that never agree, so every round runs
        pool.add(f"client{i}", fakes.ScriptedChatModel(reply=f"Answer: {i + 1}",
                                                       latency_s=latency), tier="local")
    pool.add("server", fakes.ScriptedChatModel(reply="Guidance.\nAnswer: 9", latency_s=latency),
             tier="paid", price={"input": 1.0, "output": 1.0})
    return create_colm_graph(pool=pool, clients=[f"client{i}" for i in range(4)],
                             server="server", top_k=4, rounds=2,
                             skip_guidance_when_agreed=False)


def _cope_graph(latency: float) -> Any:
    from colm_graph import ModelPool, create_cope_graph

    fakes = _load(SUPPORT / "fakes.py", "_bench_fakes")
    counter = itertools.count(1)

    def small(prompt: str) -> str:  # every execution differs: stages 1 and 2 disagree
        if "You are the planner" in prompt:
            return "1. Read the question.\n2. Compute."
        return f"Answer: {next(counter)}"

    def large(prompt: str) -> str:
        if "You are the planner" in prompt:
            return "1. Compute carefully."
        return "Answer: 9"

    pool = ModelPool()
    pool.add("small", fakes.ScriptedChatModel(script=small, latency_s=latency), tier="local")
    pool.add("large", fakes.ScriptedChatModel(script=large, latency_s=latency), tier="paid",
             price={"input": 1.0, "output": 1.0})
    return create_cope_graph(pool=pool, small="small", large="large", samples=3)


GRAPHS: dict[str, tuple[Callable[[float], Any], Callable[[dict[str, Any]], bool]]] = {
    # name: (builder, "every step ran" check on the output)
    "colm": (_colm_graph, lambda out: out.get("rounds") == 2 and len(out["ledger"]) == 14),
    "cope": (_cope_graph, lambda out: out.get("stage") == 3 and len(out["ledger"]) == 10),
}
QUESTION = {"question": "What is 17 * 23 + 48?"}


def _groups(ledger: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Ledger records grouped by (node, round, stage), in the order the steps ran."""
    groups: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for rec in ledger:
        groups.setdefault((rec["node"], rec["round"], rec.get("stage", 0)), []).append(rec)
    return sorted(groups.values(), key=lambda g: min(r["started_at"] for r in g))


def analyse_run(ledger: list[dict[str, Any]], t0: float, t1: float, wall: float
                ) -> dict[str, Any]:
    """Critical path of one run and where the rest of the wall time went.

    ``t0``/``t1`` are ``time.time()`` around the call (the ledger's clock); ``wall`` is the
    ``perf_counter`` duration. wall = critical + before + between + stagger + after."""
    groups = _groups(ledger)
    critical = sum(max(r["latency_s"] for r in g) for g in groups)
    starts = [min(r["started_at"] for r in g) for g in groups]
    ends = [max(r["started_at"] + r["latency_s"] for r in g) for g in groups]
    stagger = sum(e - s - max(r["latency_s"] for r in g) for g, s, e in zip(groups, starts, ends,
                                                                             strict=True))
    between = sum(starts[i + 1] - ends[i] for i in range(len(groups) - 1))
    parallel = all(max(r["started_at"] for r in g) < e for g, e in zip(groups, ends, strict=True)
                   if len(g) > 1)
    return {"wall": wall, "critical": critical, "ratio": wall / critical if critical else 0.0,
            "steps": len(groups), "calls": len(ledger), "parallel": parallel,
            "before": starts[0] - t0 if groups else 0.0, "between": between, "stagger": stagger,
            "after": t1 - ends[-1] if groups else 0.0,
            "mean_call": statistics.fmean(r["latency_s"] for r in ledger) if ledger else 0.0}


def _sync_runs(graph: Any, reps: int) -> list[tuple[dict[str, Any], float, float, float]]:
    out = []
    for _ in range(reps):
        t0, p0 = time.time(), time.perf_counter()
        result = graph.invoke(dict(QUESTION))
        out.append((result, t0, time.time(), time.perf_counter() - p0))
    return out


def _async_runs(graph: Any, reps: int) -> list[tuple[dict[str, Any], float, float, float]]:
    async def go() -> list[tuple[dict[str, Any], float, float, float]]:
        out = []
        for _ in range(reps):
            t0, p0 = time.time(), time.perf_counter()
            result = await graph.ainvoke(dict(QUESTION))
            out.append((result, t0, time.time(), time.perf_counter() - p0))
        return out

    return asyncio.run(go())


def _runs(graph: Any, mode: str, reps: int) -> list[tuple[dict[str, Any], float, float, float]]:
    return (_async_runs if mode == "ainvoke" else _sync_runs)(graph, reps)


def bench_orchestration(reps: int, latency: float, profile_runs: int) -> dict[str, Any]:
    section: dict[str, Any] = {"target": OVERHEAD_TARGET, "latency_s": latency, "reps": reps,
                               "graphs": {}}
    worst = 0.0
    for name, (build, all_ran) in GRAPHS.items():
        graph = build(latency)
        zero = build(0.0)
        per_mode: dict[str, Any] = {}
        for mode in ("ainvoke", "invoke"):
            _runs(graph, mode, 1)  # warm-up
            runs = _runs(graph, mode, reps)
            stats = [analyse_run(out["ledger"], t0, t1, wall) for out, t0, t1, wall in runs]
            _runs(zero, mode, 1)
            zero_walls = [wall for *_, wall in _runs(zero, mode, reps)]
            ratio = _median(s["ratio"] for s in stats)
            worst = max(worst, ratio)
            per_mode[mode] = {
                "ratio_median": round(ratio, 4),
                "ratio_min": round(min(s["ratio"] for s in stats), 4),
                "ratio_max": round(max(s["ratio"] for s in stats), 4),
                "wall_ms_median": _ms(_median(s["wall"] for s in stats)),
                "critical_path_ms_median": _ms(_median(s["critical"] for s in stats)),
                "overhead_ms_median": _ms(_median(s["wall"] - s["critical"] for s in stats)),
                "steps_with_calls": stats[0]["steps"],
                "calls": stats[0]["calls"],
                "all_steps_ran": all(all_ran(out) for out, *_ in runs),
                "parallel_calls_overlapped": all(s["parallel"] for s in stats),
                "breakdown_ms_median": {
                    "before_first_call": _ms(_median(s["before"] for s in stats)),
                    "between_steps": _ms(_median(s["between"] for s in stats)),
                    "stagger_within_steps": _ms(_median(s["stagger"] for s in stats)),
                    "after_last_call": _ms(_median(s["after"] for s in stats)),
                    "mean_call_latency": _ms(_median(s["mean_call"] for s in stats)),
                },
                "zero_latency_wall_ms_median": _ms(_median(zero_walls)),
                "status": _status(ratio <= OVERHEAD_TARGET),
            }
        section["graphs"][name] = per_mode
        if any(m["status"] == "MISS" for m in per_mode.values()) and profile_runs:
            # Profile the orchestration itself: zero-latency models, ainvoke (one thread, so
            # cProfile sees everything; invoke runs fan-out tasks in worker threads).
            _runs(zero, "ainvoke", 1)
            prof = cProfile.Profile()

            async def many(g: Any = zero) -> None:
                for _ in range(profile_runs):
                    await g.ainvoke(dict(QUESTION))

            prof.enable()
            asyncio.run(many())
            prof.disable()
            section["graphs"][name]["profile_ainvoke_zero_latency"] = _profile_summary(
                prof, profile_runs)
    section["worst_ratio"] = round(worst, 4)
    section["status"] = _status(worst <= OVERHEAD_TARGET)
    return section


def print_orchestration(sec: dict[str, Any]) -> None:
    print(f"\n== 1. Orchestration overhead: wall / critical path (target <= {sec['target']}),"
          f" {sec['latency_s'] * 1000:.0f} ms per fake call, median of {sec['reps']} ==")
    for name, modes in sec["graphs"].items():
        for mode in ("ainvoke", "invoke"):
            m = modes[mode]
            b = m["breakdown_ms_median"]
            print(f"  {name:5s} {mode:8s} ratio {m['ratio_median']:.3f} "
                  f"(min {m['ratio_min']:.3f}, max {m['ratio_max']:.3f})  "
                  f"wall {m['wall_ms_median']:.1f} ms  critical {m['critical_path_ms_median']:.1f}"
                  f" ms  overhead {m['overhead_ms_median']:.1f} ms  [{m['status']}]")
            print(f"  {'':14s} {m['calls']} calls in {m['steps_with_calls']} steps, all steps"
                  f" ran: {m['all_steps_ran']}, parallel calls overlapped:"
                  f" {m['parallel_calls_overlapped']}")
            print(f"  {'':14s} gap: before first call {b['before_first_call']:.2f} ms, between"
                  f" steps {b['between_steps']:.2f}, stagger {b['stagger_within_steps']:.2f},"
                  f" after last {b['after_last_call']:.2f}; mean call"
                  f" {b['mean_call_latency']:.2f} ms; zero-latency run"
                  f" {m['zero_latency_wall_ms_median']:.1f} ms")
        prof = modes.get("profile_ainvoke_zero_latency")
        if prof:
            print(f"  {name} profile (ainvoke, zero latency): {prof['cpu_ms_per_run']:.1f} ms CPU"
                  " per run under cProfile; by package:")
            for p in prof["by_package"]:
                print(f"      {p['package']:28s} {p['ms_per_run']:7.2f} ms  {p['share']:6.1%}")
            print("    hotspots (cumulative per run):")
            for label, h in prof["hotspots"].items():
                print(f"      {h['cumtime_ms_per_run']:6.2f} ms  {h['calls_per_run']:6.1f} calls"
                      f"  {label}")
            print("    top functions by own time:")
            for f in prof["top_functions"][:6]:
                print(f"      {f['tottime_ms_per_run']:6.2f} ms  {f['calls_per_run']:6.1f} calls"
                      f"  {f['function']}")
    print(f"  => worst median ratio {sec['worst_ratio']:.3f}  [{sec['status']}]")


# -- 2. eval throughput ----------------------------------------------------------------------

SERVER_CHILD = textwrap.dedent("""
    import importlib.util, json, sys, time
    spec = importlib.util.spec_from_file_location("_bench_server", sys.argv[1])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["_bench_server"] = mod
    spec.loader.exec_module(mod)
    if int(sys.argv[3]):
        mod._Server.request_queue_size = int(sys.argv[3])
    srv = mod.FakeOpenAIServer(latency_s=float(sys.argv[2]))
    print(json.dumps({"base_url": srv.base_url,
                      "backlog": mod._Server.request_queue_size}), flush=True)
    cpu = time.process_time()
    for line in sys.stdin:
        reqs = srv.requests.snapshot()
        srv.requests.clear()
        events = sorted([(r["started_at"], 1) for r in reqs]
                        + [(r["finished_at"], -1) for r in reqs if r["finished_at"]])
        inflight = peak = 0
        for _, step in events:
            inflight += step
            peak = max(peak, inflight)
        lat = [r["finished_at"] - r["started_at"] for r in reqs if r["finished_at"]]
        now = time.process_time()
        print(json.dumps({"requests": len(reqs), "peak_in_flight": peak,
                          "max_handler_s": max(lat, default=0.0), "cpu_s": now - cpu}),
              flush=True)
        cpu = now
    srv.close()
""")


class ServerProcess:
    """The test suite's FakeOpenAIServer in a child process (its own GIL and CPU time)."""

    def __init__(self, latency: float, backlog: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_CHILD, str(SUPPORT / "openai_server.py"),
             str(latency), str(backlog)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        hello = json.loads(self.proc.stdout.readline())
        self.base_url: str = hello["base_url"]
        self.backlog: int = hello["backlog"]

    def stats(self) -> dict[str, Any]:
        """Server-side figures since the last call (requests, peak in flight, CPU)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _items(n: int) -> list[Any]:
    from colm_graph.evaluation.datasets import Item

    return [Item(id=f"q{i}", question=f"What is {i} + 1?", answer=str(i + 1), kind="numeric")
            for i in range(n)]


def _chat(base_url: str) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=base_url, api_key="sk-local", model="fake")  # type: ignore[arg-type]


async def _raw_httpx(base_url: str, n: int, concurrency: int,
                     errors: list[str] | None = None) -> list[float]:
    """n POSTs with a plain httpx client; with ``errors``, failures are collected there
    instead of raised (and leave no latency)."""
    import httpx

    body = {"model": "fake", "messages": [{"role": "user", "content": "What is 1 + 1?"}]}
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []
    async with httpx.AsyncClient(timeout=60) as client:
        async def one() -> None:
            async with sem:
                start = time.perf_counter()
                try:
                    resp = await client.post(f"{base_url}/chat/completions", json=body)
                    resp.raise_for_status()
                    resp.json()
                except httpx.HTTPError as exc:
                    if errors is None:
                        raise
                    errors.append(type(exc).__name__)
                    return
                lat.append(time.perf_counter() - start)

        await asyncio.gather(*(one() for _ in range(n)))
    return lat


async def _chat_openai(llm: Any, n: int, concurrency: int) -> list[float]:
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []

    async def one(i: int) -> None:
        async with sem:
            start = time.perf_counter()
            await llm.ainvoke(f"What is {i} + 1?")
            lat.append(time.perf_counter() - start)

    await asyncio.gather(*(one(i) for i in range(n)))
    return lat


async def _eval(pool: Any, items: list[Any], concurrency: int) -> list[float]:
    from colm_graph.evaluation import arun_eval, resolve_graphs

    entries = resolve_graphs(["small_only"], pool)
    with tempfile.TemporaryDirectory() as out:
        path = await arun_eval(entries, items, pool, out, concurrency=concurrency)
        rows = [json.loads(line) for line in path.read_text().splitlines()]
    errors = [r["error"] for r in rows if r["error"]]
    if errors or len(rows) != len(items) or any(r["calls"] != 1 for r in rows):
        raise RuntimeError(f"eval run went wrong: {len(rows)} rows, errors {errors[:3]}")
    return [r["latency_s"] for r in rows]


def _timed(fn: Callable[[], list[float]]) -> dict[str, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    lat = fn()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    lat.sort()
    return {"wall_s": wall, "cpu_s": cpu, "n": len(lat), "p50_s": lat[len(lat) // 2],
            "max_s": lat[-1]}


def _layer(label: str, runs: list[tuple[dict[str, float], dict[str, Any]]], n: int,
           ideal: float) -> dict[str, Any]:
    """Median over repetitions of one way of making the n requests."""
    client = [r for r, _ in runs]
    server = [s for _, s in runs]
    wall = _median(r["wall_s"] for r in client)
    rate = n / wall
    return {"label": label, "items_per_s": round(rate, 2), "ratio_to_ideal": round(rate / ideal, 4),
            "wall_s": round(wall, 4),
            "client_cpu_ms_per_item": round(_median(r["cpu_s"] for r in client) / n * 1000, 3),
            "server_cpu_ms_per_item": round(_median(s["cpu_s"] for s in server) / n * 1000, 3),
            "latency_p50_s": round(_median(r["p50_s"] for r in client), 4),
            "latency_max_s": round(max(r["max_s"] for r in client), 4),
            "server_peak_in_flight": max(s["peak_in_flight"] for s in server),
            "server_max_handler_s": round(max(s["max_handler_s"] for s in server), 4)}


def _backlog_check(latency: float, concurrency: int, backlog: int, bursts: int
                   ) -> dict[str, Any]:
    """Bursts of `concurrency` simultaneous raw requests (no retries): do any fail, or wait
    for a TCP retransmission, because the server's listen queue overflowed?"""
    with ServerProcess(latency, backlog) as srv:
        lat: list[float] = []
        errors: list[str] = []
        for _ in range(bursts):
            lat += asyncio.run(_raw_httpx(srv.base_url, concurrency, concurrency, errors))
        stats = srv.stats()
        return {"listen_backlog": srv.backlog, "requests": concurrency * bursts,
                "failed": len(errors), "errors": sorted(set(errors)),
                "max_latency_s": round(max(lat, default=0.0), 4),
                "slow_over_0_5s": sum(x > 0.5 for x in lat),
                "server_peak_in_flight": stats["peak_in_flight"]}


def bench_throughput(n_items: int, concurrency: int, latency: float, reps: int,
                     n_sequential: int, profile: bool, bursts: int) -> dict[str, Any]:
    from colm_graph import ModelPool

    ideal = min(concurrency, n_items) / latency
    waves = -(-n_items // concurrency)
    wave_ideal = n_items / (waves * latency)
    section: dict[str, Any] = {
        "target": THROUGHPUT_TARGET, "items": n_items, "concurrency": concurrency,
        "server_latency_s": latency, "reps": reps, "ideal_items_per_s": round(ideal, 2),
        "wave_bound_items_per_s": round(wave_ideal, 2),
        "wave_bound_ratio": round(wave_ideal / ideal, 4),
        "server": "tests/support/openai_server.py FakeOpenAIServer, in a child process",
    }
    # Server check: the stdlib server listens with a backlog of 5 (socketserver default).
    section["server_check"] = [_backlog_check(latency, concurrency, 0, bursts),
                               _backlog_check(latency, concurrency, 128, bursts)]

    items = _items(n_items)
    with ServerProcess(latency, backlog=128) as srv:
        pool = ModelPool.from_dict({"models": [{"name": "local-fake", "provider": "openai",
                                                "model": "fake", "base_url": srv.base_url,
                                                "tier": "local"}]})
        llm = _chat(srv.base_url)
        layers = {
            "raw_httpx": lambda: asyncio.run(_raw_httpx(srv.base_url, n_items, concurrency)),
            "chat_openai_ainvoke": lambda: asyncio.run(_chat_openai(llm, n_items, concurrency)),
            "eval_single_graph": lambda: asyncio.run(_eval(pool, items, concurrency)),
        }
        results: dict[str, Any] = {}
        for label, fn in layers.items():
            fn()  # warm-up: connections, lazy imports, graph build
            srv.stats()
            runs = []
            for _ in range(reps):
                timing = _timed(fn)
                runs.append((timing, srv.stats()))
            results[label] = _layer(label, runs, n_items, ideal)

        # Sequential: plain ChatOpenAI.invoke, one call after another.
        llm.invoke("warm-up")
        srv.stats()
        wall0 = time.perf_counter()
        for i in range(n_sequential):
            llm.invoke(f"What is {i} + 1?")
        seq_wall = time.perf_counter() - wall0
        seq_rate = n_sequential / seq_wall
        results["sequential_invoke"] = {
            "label": "sequential_invoke", "items": n_sequential, "wall_s": round(seq_wall, 4),
            "items_per_s": round(seq_rate, 2),
            "per_call_ms": round(seq_wall / n_sequential * 1e3, 3),
            "ideal_items_per_s": round(1 / latency, 2)}
        srv.stats()

        # Connection limits of the client the pool built.
        section["connection_limits"] = _connection_limits(pool.entry("local-fake").chat_model,
                                                          concurrency)
        if profile:
            section["profile_eval"] = _profile_eval(pool, items, concurrency)
            srv.stats()

    ev = results["eval_single_graph"]
    section["layers"] = results
    section["ratio_to_ideal"] = ev["ratio_to_ideal"]
    section["ratio_to_wave_bound"] = round(ev["items_per_s"] / wave_ideal, 4)
    section["ratio_to_sequential"] = round(ev["items_per_s"] / seq_rate, 3)
    section["status"] = _status(ev["ratio_to_ideal"] >= THROUGHPUT_TARGET)
    return section


def _connection_limits(chat_model: Any, concurrency: int) -> dict[str, Any]:
    out: dict[str, Any] = {"client": type(chat_model).__name__}
    try:
        client = chat_model.root_async_client._client
        pool = client._transport._pool
        base = next((c for c in type(client).__mro__ if c.__name__ == "AsyncClient"),
                    type(client))
        out.update(httpx_client=f"{base.__module__.split('.')[0]}.{base.__name__}",
                   max_connections=pool._max_connections,
                   max_keepalive_connections=pool._max_keepalive_connections)
        out["bottleneck"] = bool(pool._max_connections is not None
                                 and pool._max_connections < concurrency)
    except AttributeError as exc:  # private attributes moved: report, do not fail
        out["error"] = f"could not read the httpx pool limits: {exc}"
    return out


def _profile_eval(pool: Any, items: list[Any], concurrency: int) -> dict[str, Any]:
    prof = cProfile.Profile()
    prof.enable()
    asyncio.run(_eval(pool, items, concurrency))
    prof.disable()
    summary = _profile_summary(prof, len(items), top=10)
    summary["note"] = ("per item; one eval run under cProfile (which inflates CPU time);"
                       " idle waits excluded")
    return summary


def print_throughput(sec: dict[str, Any]) -> None:
    print(f"\n== 2. Eval throughput: {sec['items']} items, concurrency {sec['concurrency']},"
          f" server {sec['server_latency_s'] * 1000:.0f} ms per call (target >= {sec['target']}"
          " of ideal) ==")
    print(f"  ideal {sec['ideal_items_per_s']:.0f} items/s (concurrency / latency);"
          f" wave bound {sec['wave_bound_items_per_s']:.0f} items/s"
          f" (ceil(items/concurrency) waves; = {sec['wave_bound_ratio']:.3f} of ideal)")
    for chk in sec["server_check"]:
        print(f"  server check, listen backlog {chk['listen_backlog']:3d}: {chk['requests']}"
              f" raw requests in bursts of {sec['concurrency']}: {chk['failed']} failed"
              f" {chk['errors'] or ''}, max latency {chk['max_latency_s']:.3f} s,"
              f" {chk['slow_over_0_5s']} over 0.5 s, peak in flight {chk['server_peak_in_flight']}")
    print("  below: server with listen backlog 128; same 32-way concurrency, median of"
          f" {sec['reps']} after a warm-up")
    for label in ("raw_httpx", "chat_openai_ainvoke", "eval_single_graph"):
        m = sec["layers"][label]
        print(f"  {label:20s} {m['items_per_s']:7.1f} items/s = {m['ratio_to_ideal']:.3f} of ideal;"
              f" client CPU {m['client_cpu_ms_per_item']:.2f} ms/item, server CPU"
              f" {m['server_cpu_ms_per_item']:.2f} ms/item; latency p50 {m['latency_p50_s']:.3f}"
              f" max {m['latency_max_s']:.3f} s; peak in flight {m['server_peak_in_flight']}")
    s = sec["layers"]["sequential_invoke"]
    print(f"  sequential invoke    {s['items_per_s']:7.1f} items/s ({s['items']} calls,"
          f" {s['per_call_ms']:.1f} ms per call)")
    cl = sec["connection_limits"]
    print(f"  connection limits: {cl}")
    prof = sec.get("profile_eval")
    if prof:
        print(f"  profile of the eval (cProfile, per item): {prof['cpu_ms_per_run']:.2f} ms CPU;"
              " by package, then hotspots:")
        for p in prof["by_package"]:
            print(f"      {p['package']:28s} {p['ms_per_run']:7.3f} ms  {p['share']:6.1%}")
        for label, h in prof["hotspots"].items():
            print(f"      {h['cumtime_ms_per_run']:7.3f} ms  {h['calls_per_run']:5.1f} calls"
                  f"  {label}")
    print(f"  => eval/ideal {sec['ratio_to_ideal']:.3f} [{sec['status']}]; eval/wave bound"
          f" {sec['ratio_to_wave_bound']:.3f}; eval/sequential {sec['ratio_to_sequential']:.1f}x")


# -- 3. footprint ----------------------------------------------------------------------------

MEMORY_CHILD = textwrap.dedent("""
    import asyncio, dataclasses, json, resource, sys, time
    from pathlib import Path

    def rss_mb(field="VmRSS:"):  # resident now (VmRSS) or peak (VmHWM), from /proc
        try:
            for line in open("/proc/self/status"):
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    from colm_graph import ModelPool
    from colm_graph.evaluation import arun_eval, load_dataset, resolve_graphs
    n, out, concurrency = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    after_import = rss_mb()
    base = load_dataset("colm_tasks")
    items = [dataclasses.replace(base[i % len(base)], id=f"{base[i % len(base)].id}~{i}")
             for i in range(n)]
    pool = ModelPool.default()
    entries = resolve_graphs(["colm"], pool)
    before_eval = [rss_mb(), rss_mb("VmHWM:")]
    results = out / "results.jsonl"
    seen = []

    class Watch:  # the runner's progress stream: lines on disk and RSS as items finish
        def isatty(self):
            return False
        def write(self, text):
            if text.strip():
                done = int(text.split("]", 1)[1].split("/", 1)[0])
                on_disk = sum(1 for _ in results.open()) if results.exists() else 0
                seen.append([done, on_disk, round(rss_mb(), 1), round(rss_mb("VmHWM:"), 1)])
        def flush(self):
            pass

    start = time.perf_counter()
    asyncio.run(arun_eval(entries, items, pool, out, concurrency=concurrency,
                          progress=Watch()))
    wall = time.perf_counter() - start
    print(json.dumps({"after_imports_mb": after_import, "end_mb": rss_mb(),
                      "end_hwm_mb": rss_mb("VmHWM:"),
                      "before_eval_mb": before_eval,
                      "wall_s": wall, "progress": seen}))
""")


def _python(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True)
    return time.perf_counter() - start


HEAVY = ("torch", "transformers", "langchain_huggingface", "numpy", "PIL", "langgraph",
         "langchain_core", "langchain_openai", "openai", "httpx", "pydantic", "yaml")
PROBE = ("import json, sys, colm_graph; print(json.dumps([len(sys.modules),"
         f" [m for m in {HEAVY!r} if m in sys.modules]]))")
FIRST_USE = "from colm_graph import ModelPool, load_graph; ModelPool.default()"


def bench_import(reps: int) -> dict[str, Any]:
    _python("-c", "import colm_graph")  # warm the file cache and bytecode
    imports, bases, first_use = [], [], []
    for _ in range(reps):
        bases.append(_python("-c", "pass"))
        imports.append(_python("-c", "import colm_graph"))
        first_use.append(_python("-c", FIRST_USE))
    net = _median(i - b for i, b in zip(imports, bases, strict=True))
    probe = subprocess.run([sys.executable, "-c", PROBE], check=True, capture_output=True,
                           text=True).stdout
    n_modules, loaded = json.loads(probe)
    cumulative, top, packages = _importtime("import colm_graph")
    _, _, first_packages = _importtime(FIRST_USE)
    return {"target_s": IMPORT_TARGET_S, "reps": reps,
            "import_s_median": round(net, 4),
            "python_startup_s_median": round(_median(bases), 4),
            "with_startup_s_median": round(_median(imports), 4),
            "importtime_cumulative_s": cumulative,
            "torch_imported": "torch" in loaded, "transformers_imported": "transformers" in loaded,
            "heavy_modules_loaded": loaded, "modules_loaded": n_modules,
            "top_cumulative": top, "packages": packages,
            "first_use": {"code": FIRST_USE,
                          "s_median": round(_median(f - b for f, b in zip(first_use, bases,
                                                                          strict=True)), 4),
                          "packages": first_packages[:8]},
            "status": _status(net <= IMPORT_TARGET_S and "torch" not in loaded)}


def _importtime(code: str) -> tuple[float | None, list[dict[str, Any]], list[dict[str, Any]]]:
    """`python -X importtime -c CODE`: colm_graph's cumulative time, the ten largest
    cumulative entries (as `sort -t'|' -k2 -n | tail` shows them), and per top-level package
    the time of its first import (its largest cumulative entry)."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], check=True,
                         capture_output=True, text=True).stderr
    rows: list[tuple[int, int, str]] = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum_us, name = line.removeprefix("import time:").split("|")
        rows.append((int(cum_us), int(self_us), name.strip()))
    total = next((c / 1e6 for c, _, n in rows if n == "colm_graph"), None)
    top = sorted(rows, reverse=True)[:10]
    first: dict[str, int] = {}
    for cum, _, name in rows:
        pkg = name.split(".")[0]
        first[pkg] = max(first.get(pkg, 0), cum)
    packages = sorted(first.items(), key=lambda kv: -kv[1])[:12]
    return (round(total, 4) if total else None,
            [{"module": n, "cumulative_s": round(c / 1e6, 4), "self_s": round(s / 1e6, 4)}
             for c, s, n in top],
            [{"package": k, "cumulative_s": round(v / 1e6, 4)} for k, v in packages])


#: Spawns the eval child and reports RUSAGE_CHILDREN once it has exited. A child's
#: ru_maxrss starts at its parent's RSS at fork/vfork time (Linux keeps the pre-exec high-water
#: mark), so the child is started from this small launcher rather than from the benchmark
#: process, which by then holds ~100 MB itself.
LAUNCHER = textwrap.dedent("""
    import json, resource, subprocess, sys
    run = subprocess.run([sys.executable, "-c", *sys.argv[1:]], capture_output=True, text=True)
    sys.stdout.write(run.stdout)
    sys.stderr.write(run.stderr)
    hwm = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")]
    print(json.dumps({"rc": run.returncode,
                      "children_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                      "launcher_hwm_kb": hwm[0] if hwm else None}))
""")


def bench_memory(n_items: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "eval"
        run = subprocess.run([sys.executable, "-c", LAUNCHER, MEMORY_CHILD, str(n_items),
                              str(out), str(concurrency)], capture_output=True, text=True)
        lines_out = run.stdout.strip().splitlines()
        launcher = json.loads(lines_out[-1]) if lines_out else {"rc": run.returncode}
        if run.returncode != 0 or launcher["rc"] != 0:
            raise RuntimeError(f"memory child failed ({launcher['rc']}): {run.stderr[-2000:]}")
        child = json.loads(lines_out[-2])
        lines = sum(1 for _ in (out / "results.jsonl").open())
    peak_mb = launcher["children_maxrss_kb"] / 1024  # kilobytes on Linux
    progress = child["progress"]  # [items done, lines on disk, RSS, peak RSS] every 10%
    mid = [p for p in progress if p[0] < n_items]
    return {"target_mb": RSS_TARGET_MB, "items": n_items, "graph": "colm",
            "pool": "default simulated", "concurrency": concurrency,
            "peak_rss_mb": round(peak_mb, 1),
            "method": "RUSAGE_CHILDREN ru_maxrss in a small launcher process after the child"
                      " exited",
            "launcher_rss_mb": round((launcher["launcher_hwm_kb"] or 0) / 1024, 1),
            # What RUSAGE_CHILDREN says in this (large) benchmark process: inflated by the
            # RSS every child inherits at spawn time.
            "rusage_children_in_bench_mb": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            "bench_process_rss_mb": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "child_vmhwm_mb": round(child["end_hwm_mb"], 1),
            "rss_after_imports_mb": round(child["after_imports_mb"], 1),
            "rss_before_eval_mb": round(child["before_eval_mb"][0], 1),
            "rss_end_mb": round(child["end_mb"], 1),
            "eval_wall_s": round(child["wall_s"], 3),
            "items_per_s": round(n_items / child["wall_s"], 1),
            "results_lines": lines,
            "streamed": lines == n_items and bool(mid) and all(p[0] == p[1] for p in mid),
            "progress": [{"done": d, "lines_on_disk": k, "rss_mb": r, "peak_rss_mb": h}
                         for d, k, r, h in progress],
            "status": _status(peak_mb < RSS_TARGET_MB and lines == n_items)}


def print_footprint(sec: dict[str, Any]) -> None:
    imp, mem = sec["import"], sec["memory"]
    print(f"\n== 3. Footprint (targets: import <= {imp['target_s']} s without torch;"
          f" peak RSS < {mem['target_mb']:.0f} MB) ==")
    print(f"  import colm_graph: {imp['import_s_median']:.3f} s (median of {imp['reps']}, python"
          f" startup {imp['python_startup_s_median']:.3f} s subtracted; -X importtime cumulative"
          f" {imp['importtime_cumulative_s']} s); torch imported: {imp['torch_imported']},"
          f" transformers: {imp['transformers_imported']}; {imp['modules_loaded']} modules"
          f" [{imp['status']}]")
    print(f"    heavy modules loaded by the import: {imp['heavy_modules_loaded'] or 'none'}")
    print("    first import of each package (-X importtime cumulative): " + ", ".join(
        f"{p['package']} {p['cumulative_s']:.3f}" for p in imp["packages"][:6]))
    fu = imp["first_use"]
    print(f"    first use ({fu['code']}): {fu['s_median']:.3f} s; " + ", ".join(
        f"{p['package']} {p['cumulative_s']:.3f}" for p in fu["packages"][:6]))
    print(f"  {mem['items']}-item simulated eval of {mem['graph']} (concurrency"
          f" {mem['concurrency']}): peak RSS {mem['peak_rss_mb']:.1f} MB (RUSAGE_CHILDREN in a"
          f" {mem['launcher_rss_mb']:.0f} MB launcher; the child's own VmHWM"
          f" {mem['child_vmhwm_mb']:.1f} MB), {mem['eval_wall_s']:.1f} s"
          f" ({mem['items_per_s']:.0f} items/s), results.jsonl {mem['results_lines']} lines,"
          f" streamed as items finish: {mem['streamed']} [{mem['status']}]")
    print(f"    RSS after imports {mem['rss_after_imports_mb']:.0f} MB, before the eval (pool and"
          f" entries built) {mem['rss_before_eval_mb']:.0f} MB;"
          " items done / lines on disk / RSS / peak RSS (MB) as it ran:")
    print(textwrap.fill(", ".join(
        f"{p['done']}/{p['lines_on_disk']}/{p['rss_mb']:.0f}/{p['peak_rss_mb']:.0f}"
        for p in mem["progress"]), 94, initial_indent="      ", subsequent_indent="      "))


# -- 4. local models -------------------------------------------------------------------------


def bench_local(quick: bool) -> dict[str, Any]:
    path = ROOT / "evals" / "bench_hf.py"
    if not path.exists():
        return {"skipped": "bench_hf not available"}
    try:
        module = _load(path, "_bench_hf")
    except ImportError as exc:  # e.g. the `local` extra (torch, transformers) not installed
        return {"skipped": f"bench_hf could not be imported: {exc}"}
    try:
        run = module.run
        params = inspect.signature(run).parameters
        kwargs = {"quick": quick} if "quick" in params else {}
        result = run(**kwargs)
    except ImportError as exc:
        return {"skipped": f"bench_hf needs a module that is not installed: {exc}"}
    except Exception as exc:  # report, keep the other sections
        return {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500]}
    return result if isinstance(result, dict) else {"result": result}


def print_local(sec: dict[str, Any]) -> None:
    print("\n== 4. Local models (evals/bench_hf.py run()) ==")
    if "skipped" in sec:
        print(f"  skipped: {sec['skipped'].removeprefix('skipped: ')}")
    elif "error" in sec and len(sec) == 1:
        print(f"  failed: {sec['error']}")
    else:
        print(textwrap.indent(json.dumps(sec, indent=2, default=str), "  "))


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test)")
    parser.add_argument("--json", metavar="FILE", help="write all figures as JSON")
    args = parser.parse_args(argv)
    quick = args.quick
    # Everything here is local: no tracing uploads (children inherit this too).
    for var in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        os.environ[var] = "false"

    report: dict[str, Any] = {"quick": quick, "machine": machine()}
    m = report["machine"]
    print(f"machine: {m['cpu_count']} cores ({m['usable_cores']} usable), {m['memory_gb']} GB,"
          f" {m['implementation']} {m['python']}, {m['platform']}; load average"
          f" {m['load_average']}")
    print(f"versions: {m['versions']}")

    report["orchestration"] = bench_orchestration(reps=3 if quick else 20, latency=0.02,
                                                  profile_runs=3 if quick else 20)
    print_orchestration(report["orchestration"])
    report["eval_throughput"] = bench_throughput(
        n_items=64 if quick else 200, concurrency=32, latency=0.05, reps=1 if quick else 3,
        n_sequential=20 if quick else 200, profile=True, bursts=3 if quick else 10)
    print_throughput(report["eval_throughput"])
    report["footprint"] = {"import": bench_import(reps=2 if quick else 5),
                           "memory": bench_memory(100 if quick else 1000, concurrency=16)}
    report["footprint"]["status"] = _status(all(
        report["footprint"][k]["status"] == "PASS" for k in ("import", "memory")))
    print_footprint(report["footprint"])
    report["local_models"] = bench_local(quick)
    print_local(report["local_models"])

    report["load_average_at_end"] = ([round(x, 2) for x in os.getloadavg()]
                                     if hasattr(os, "getloadavg") else None)
    print(f"\n== summary == (load average now {report['load_average_at_end']})")
    o, t = report["orchestration"], report["eval_throughput"]
    imp, mem = report["footprint"]["import"], report["footprint"]["memory"]
    print(f"  orchestration wall/critical (worst median) {o['worst_ratio']:.3f} <= 1.03"
          f"  {o['status']}")
    print(f"  eval throughput / ideal {t['ratio_to_ideal']:.3f} >= 0.9  {t['status']}"
          f"  (vs sequential invoke {t['ratio_to_sequential']:.1f}x)")
    print(f"  import colm_graph {imp['import_s_median']:.3f} s <= 0.5 s, torch"
          f" {'imported' if imp['torch_imported'] else 'not imported'}  {imp['status']}")
    print(f"  peak RSS {mem['peak_rss_mb']:.0f} MB < 500 MB  {mem['status']}")
    local = report["local_models"]
    print("  local models: " + (local["skipped"] if "skipped" in local else
                                local.get("error") or "see section 4"))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
