"""Performance figures of colm_graph, measured side by side in one run.

    python evals/bench.py [--quick] [--json FILE]

1. Orchestration overhead: wall time / critical path of CoLM (k=4, R=2, guidance every
   round) and COPE (3 samples, all three stages) on fake chat models with injected latency,
   for ``ainvoke`` and ``invoke``; also CoLM with the graph parameter ``fan_out: gather``
   where the graph has it ("n/a" otherwise). The critical path is the sum over steps of the
   longest call of the step, from the ledger (records grouped by node and round/stage).
   Where the target is missed, the gap is split into time before the first call, between
   steps, stagger inside a parallel step and after the last call, and a zero-latency run is
   profiled. Then CoLM's LangGraph super-steps and tasks per run (debug stream) and its CPU
   per run on zero-latency fakes against the same 14 calls in plain asyncio.
2. Eval throughput of the ``single`` graph against a local OpenAI-compatible server (the
   test suite's FakeOpenAIServer, run in its own process) at concurrency 32, next to the
   same requests made with raw httpx and with plain ``ChatOpenAI.ainvoke``, and a sequential
   ``ChatOpenAI.invoke`` loop. Then ``colm`` and ``single`` evals on the simulated pool with
   50 ms and 500 ms calls, ``workers`` 1 and 2 (where ``arun_eval`` takes ``workers=``),
   against the ideal (concurrency / mean critical path).
3. Footprint: ``import colm_graph`` time (and whether torch got imported); peak RSS of a
   simulated 1000-item eval of ``colm`` in a child process, and whether results stream to
   disk.
4. Local models: ``evals/bench_hf.py``'s ``run()`` (batched vs one-at-a-time generation),
   when that file exists.
5. Serve workers: ``evals/bench_serve.py`` (req/s, p50/p99 at 64 clients, ``--workers`` 1
   and 2, ``single`` and ``colm``); not run with ``--quick``.
6. Provider layer: ``evals/bench_provider.py`` (per call and per CoLM run: raw httpx, a
   thin ``BaseChatModel`` on httpx, ``ChatOpenAI``).

Last, every issue-15 figure against its reference, in one block. Timings depend on the
machine and its load; nothing here is a test assertion.
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


CLIENTS = [f"client{i}" for i in range(4)]


def _colm_models(latency: float) -> dict[str, Any]:
    """Four fake clients that never agree (so every round runs) and a fake server."""
    fakes = _load(SUPPORT / "fakes.py", "_bench_fakes")
    models = {name: fakes.ScriptedChatModel(reply=f"Answer: {i + 1}", latency_s=latency)
              for i, name in enumerate(CLIENTS)}
    models["server"] = fakes.ScriptedChatModel(reply="Guidance.\nAnswer: 9", latency_s=latency)
    return models


def _colm_pool(models: dict[str, Any]) -> Any:
    from colm_graph import ModelPool

    pool = ModelPool()
    for name in CLIENTS:
        pool.add(name, models[name], tier="local")
    pool.add("server", models["server"], tier="paid", price={"input": 1.0, "output": 1.0})
    return pool


def _colm_graph(latency: float, models: dict[str, Any] | None = None) -> Any:
    from colm_graph import create_colm_graph

    return create_colm_graph(pool=_colm_pool(models or _colm_models(latency)), clients=CLIENTS,
                             server="server", top_k=4, rounds=2,
                             skip_guidance_when_agreed=False)


def _colm_gather_graph(latency: float, models: dict[str, Any] | None = None) -> Any:
    """The same CoLM graph with the graph parameter ``fan_out: gather`` (one task per
    parallel step instead of one ``Send`` per client); ConfigError where it does not exist."""
    from colm_graph import load_graph

    return load_graph("colm", pool=_colm_pool(models or _colm_models(latency)),
                      params={"top_k": 4, "rounds": 2, "skip_guidance_when_agreed": False,
                              "fan_out": "gather"},
                      roles={"client": CLIENTS, "server": "server"})


async def plain_colm(call: Callable[[Any, str], Any], question: str, clients: int = 4,
                     rounds: int = 2) -> list[str]:
    """CoLM written in plain asyncio, the reference of the graph's CPU: ``clients`` drafts
    gathered, then per round one server call and ``clients`` revisions gathered.
    ``call(model, prompt)`` returns the reply text; ``model`` is a client's index or
    ``"server"``."""
    drafts = list(await asyncio.gather(*(call(i, f"Question: {question}")
                                         for i in range(clients))))
    for _ in range(rounds):
        guidance = await call("server", f"Question: {question}\n<drafts>\n"
                              + "\n".join(drafts) + "\n</drafts>\nGuide them.")
        drafts = list(await asyncio.gather(*(
            call(i, f"Question: {question}\n<guidance>{guidance}</guidance>\n"
                    f"<previous_answer>{d}</previous_answer>\nRevise.")
            for i, d in enumerate(drafts))))
    return drafts


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
    # measured where the option exists, left out of the worst ratio (not the default)
    "colm_gather": (_colm_gather_graph,
                    lambda out: out.get("rounds") == 2 and len(out["ledger"]) == 14),
}
OPTIONAL_GRAPHS = ("colm_gather",)
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
    from colm_graph.errors import ConfigError

    worst = 0.0
    for name, (build, all_ran) in GRAPHS.items():
        try:
            graph = build(latency)
            zero = build(0.0)
        except ConfigError as exc:  # an option this version does not have
            section["graphs"][name] = {"n/a": str(exc).splitlines()[0][:300]}
            continue
        per_mode: dict[str, Any] = {}
        for mode in ("ainvoke", "invoke"):
            _runs(graph, mode, 1)  # warm-up
            runs = _runs(graph, mode, reps)
            stats = [analyse_run(out["ledger"], t0, t1, wall) for out, t0, t1, wall in runs]
            _runs(zero, mode, 1)
            zero_walls = [wall for *_, wall in _runs(zero, mode, reps)]
            ratio = _median(s["ratio"] for s in stats)
            if name not in OPTIONAL_GRAPHS:
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
        if "n/a" in modes:
            print(f"  {name:5s} n/a: {modes['n/a']}")
            continue
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
    print(f"  => worst median ratio {sec['worst_ratio']:.3f} (colm, cope)  [{sec['status']}]")


def _count_steps(graph: Any) -> dict[str, Any]:
    """Super-steps and tasks of one ``ainvoke``-equivalent run (LangGraph's debug stream)."""
    async def go() -> dict[str, Any]:
        steps: set[int] = set()
        tasks: collections.Counter[str] = collections.Counter()
        async for event in graph.astream(dict(QUESTION), stream_mode="debug"):
            if event.get("type") == "task":
                steps.add(event["step"])
                tasks[event["payload"]["name"]] += 1
        return {"super_steps": len(steps), "tasks": sum(tasks.values()),
                "tasks_by_node": dict(tasks)}

    return asyncio.run(go())


def _cpu_per_run(run_once: Callable[[], Any], runs: int, reps: int, warm: bool = True
                 ) -> dict[str, Any]:
    """CPU (``process_time``) and wall per run of ``await run_once()``, ``runs`` runs on one
    event loop, after a warm-up (``warm``); median (and range) of ``reps`` repetitions."""
    async def many() -> None:
        for _ in range(runs):
            await run_once()

    if warm:
        asyncio.run(many())
    cpu, wall = [], []
    for _ in range(reps):
        c0, w0 = time.process_time(), time.perf_counter()
        asyncio.run(many())
        cpu.append((time.process_time() - c0) / runs * 1000)
        wall.append((time.perf_counter() - w0) / runs * 1000)
    return {"cpu_ms_per_run": round(_median(cpu), 2),
            "cpu_ms_range": [round(min(cpu), 2), round(max(cpu), 2)],
            "wall_ms_per_run": round(_median(wall), 2)}


def bench_colm_run(runs: int, reps: int) -> dict[str, Any]:
    """CoLM k=4 R=2 on zero-latency fakes: LangGraph super-steps and tasks per run, and CPU
    per run of the graph (``Send`` fan-out, and ``fan_out: gather`` where it exists) against
    plain asyncio over the same fake chat models (``ainvoke``)."""
    from colm_graph.errors import ConfigError

    models = _colm_models(0.0)
    graphs: dict[str, Any] = {"graph_send": _colm_graph(0.0, models)}
    section: dict[str, Any] = {"runs": runs, "reps": reps, "calls_per_run": 14}
    try:
        graphs["graph_gather"] = _colm_gather_graph(0.0, models)
    except ConfigError as exc:
        section["graph_gather"] = {"n/a": str(exc).splitlines()[0][:300]}
    for label, graph in graphs.items():
        section[label] = {**_count_steps(graph),
                          **_cpu_per_run(lambda g=graph: g.ainvoke(dict(QUESTION)), runs, reps)}

    async def call(model: Any, prompt: str) -> str:
        return (await models[CLIENTS[model] if model != "server" else "server"]
                .ainvoke(prompt)).text

    section["plain_asyncio"] = {"super_steps": 5, "tasks": 14,
                                **_cpu_per_run(lambda: plain_colm(call, QUESTION["question"]),
                                               runs, reps)}
    plain = section["plain_asyncio"]["cpu_ms_per_run"]
    for label in graphs:
        section[label]["cpu_over_plain"] = round(section[label]["cpu_ms_per_run"] / plain, 2)
    return section


def print_colm_run(sec: dict[str, Any]) -> None:
    print(f"  CoLM k=4 R=2 on zero-latency fakes, {sec['calls_per_run']} calls: CPU per run"
          f" (median of {sec['reps']} x {sec['runs']} runs) and LangGraph steps:")
    for label in ("graph_send", "graph_gather", "plain_asyncio"):
        m = sec.get(label, {})
        if "n/a" in m:
            print(f"    {label:14s} n/a: {m['n/a']}")
            continue
        ratio = f" = {m['cpu_over_plain']:.2f}x plain asyncio" if "cpu_over_plain" in m else ""
        steps = (f"{m['super_steps']} super-steps, {m['tasks']} tasks {m['tasks_by_node']}"
                 if "tasks_by_node" in m else
                 f"{m['super_steps']} awaits of {m['tasks']} calls (no graph)")
        print(f"    {label:14s} {m['cpu_ms_per_run']:6.2f} ms CPU"
              f" ({m['cpu_ms_range'][0]:.1f}-{m['cpu_ms_range'][1]:.1f}){ratio}; {steps}")


# -- 2. eval throughput ----------------------------------------------------------------------

SERVER_CHILD = textwrap.dedent("""
    import importlib.util, json, sys, time
    spec = importlib.util.spec_from_file_location("_bench_server", sys.argv[1])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["_bench_server"] = mod
    spec.loader.exec_module(mod)
    if int(sys.argv[3]):
        mod._Server.request_queue_size = int(sys.argv[3])
    kwargs = {}
    if sys.argv[4] == "distinct":  # every reply a different answer: CoLM clients never agree
        import itertools
        counter = itertools.count(1)
        kwargs["responder"] = lambda body: f"Answer: {next(counter)}"
    srv = mod.FakeOpenAIServer(latency_s=float(sys.argv[2]), **kwargs)
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
    """The test suite's FakeOpenAIServer in a child process (its own GIL and CPU time).
    ``replies``: ``default`` (the fake's own answer) or ``distinct`` (each reply another
    answer)."""

    def __init__(self, latency: float, backlog: int = 0, replies: str = "default") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_CHILD, str(SUPPORT / "openai_server.py"),
             str(latency), str(backlog), replies],
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
                     errors: list[str] | None = None, stream: bool = False,
                     client: Any = None) -> list[float]:
    """n POSTs with a plain httpx client (``client``, else a new one), each read into its
    text and usage (``stream``: Server-Sent Events with ``stream_options.include_usage``);
    with ``errors``, failures are collected there instead of raised (and leave no
    latency)."""
    import httpx

    body: dict[str, Any] = {"model": "fake",
                            "messages": [{"role": "user", "content": "What is 1 + 1?"}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []

    async def read(client: httpx.AsyncClient) -> tuple[str, Any]:
        if not stream:
            resp = await client.post(f"{base_url}/chat/completions", json=body)
            resp.raise_for_status()
            data = resp.json()
            return data["choices"][0]["message"]["content"] or "", data.get("usage")
        text, usage = [], None
        async with client.stream("POST", f"{base_url}/chat/completions", json=body) as resp:
            resp.raise_for_status()
            async for line in resp.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                usage = event.get("usage") or usage
                for choice in event.get("choices") or ():
                    text.append((choice.get("delta") or {}).get("content") or "")
        return "".join(text), usage

    async def one(client: httpx.AsyncClient) -> None:
        async with sem:
            start = time.perf_counter()
            try:
                await read(client)
            except httpx.HTTPError as exc:
                if errors is None:
                    raise
                errors.append(type(exc).__name__)
                return
            lat.append(time.perf_counter() - start)

    if client is not None:
        await asyncio.gather(*(one(client) for _ in range(n)))
        return lat
    async with httpx.AsyncClient(timeout=60) as own:
        await asyncio.gather(*(one(own) for _ in range(n)))
    return lat


async def _chat_openai(llm: Any, n: int, concurrency: int, stream: bool = False
                       ) -> list[float]:
    """n calls of a LangChain chat model: ``ainvoke``, or ``astream`` with the chunks added
    up into one message (``stream``)."""
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []

    async def one(i: int) -> None:
        async with sem:
            start = time.perf_counter()
            if stream:
                message = None
                async for chunk in llm.astream(f"What is {i} + 1?"):
                    message = chunk if message is None else message + chunk
            else:
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


def _sim_pool(latency: float) -> Any:
    """The built-in simulated pool with every model answering after ``latency`` seconds."""
    import yaml

    from colm_graph import ModelPool
    from colm_graph.pool import DEFAULT_POOL_FILE

    data = yaml.safe_load(Path(DEFAULT_POOL_FILE).read_text(encoding="utf-8"))
    for model in data["models"]:
        model["sim"] = {**model.get("sim", {}), "latency_s": latency}
    return ModelPool.from_dict(data, source=f"default pool, latency {latency} s")


def _sim_items(n: int) -> list[Any]:
    """n items of the bundled task set (cycled, with distinct ids)."""
    import dataclasses

    from colm_graph.evaluation import load_dataset

    base = load_dataset("colm_tasks")
    return [dataclasses.replace(base[i % len(base)], id=f"{base[i % len(base)].id}~{i}")
            for i in range(n)]


def _sim_eval(graph: str, pool: Any, items: list[Any], concurrency: int, workers: int,
              log_samples: bool = False, cache: Any = "default"
              ) -> tuple[float, list[dict[str, Any]], list[dict[str, Any]]]:
    """One eval (as ``colm-graph eval`` runs it): wall time, rows and logged samples."""
    from colm_graph.evaluation import arun_eval, resolve_graphs

    entries = resolve_graphs([graph], pool)
    kwargs = {"workers": workers} if workers != 1 else {}
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        path = asyncio.run(arun_eval(entries, items, pool, out, concurrency=concurrency,
                                     log_samples=log_samples, cache=cache, **kwargs))
        wall = time.perf_counter() - start
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        samples_file = Path(out) / "samples.jsonl"
        samples = [json.loads(line) for line in samples_file.read_text().splitlines()] \
            if log_samples and samples_file.exists() else []
    errors = [r["error"] for r in rows if r["error"]]
    if errors or len(rows) != len(items):
        raise RuntimeError(f"{graph} eval went wrong: {len(rows)} rows, errors {errors[:3]}")
    return wall, rows, samples


def bench_eval_workers(latencies: list[float], n_items: dict[float, int], concurrency: int,
                       graphs: tuple[str, ...] = ("single", "colm"),
                       workers: tuple[int, ...] = (1, 2), startup_check: bool = True
                       ) -> dict[str, Any]:
    """Eval throughput of ``colm`` and ``single`` on the simulated pool with every call taking
    ``latency``, for ``workers`` 1 and 2 (where ``arun_eval`` takes ``workers=``), against the
    ideal: ``concurrency`` items at a time, each taking its critical path (its sequential
    steps of calls x latency; steps counted from a zero-latency run's logged calls, the
    simulator being deterministic), i.e. ideal items/s = concurrency / mean critical path."""
    from colm_graph.evaluation import arun_eval

    has_workers = "workers" in inspect.signature(arun_eval).parameters
    section: dict[str, Any] = {"concurrency": concurrency, "pool": "default simulated",
                               "workers_supported": has_workers, "results": {}}
    if not has_workers:
        workers = (1,)
        section["workers_n/a"] = "arun_eval has no workers= parameter"
    startup = 0.0
    if startup_check and len(workers) > 1:
        # worker start-up: a 2-item eval at zero latency, workers=2 less workers=1
        pool, items = _sim_pool(0.0), _sim_items(2)
        walls = {w: _median(_sim_eval("single", pool, items, 2, w)[0] for _ in range(2))
                 for w in (1, 2)}
        startup = max(0.0, walls[2] - walls[1])
        section["worker_startup_s"] = round(startup, 3)
    for graph in graphs:
        per: dict[str, Any] = {}
        top = max(n_items.values())
        _, _, samples = _sim_eval(graph, _sim_pool(0.0), _sim_items(top), concurrency, 1,
                                  log_samples=True, cache=None)
        steps = {s["id"]: len({(c.get("node"), c.get("round"), c.get("stage"))
                               for c in s["calls"]}) for s in samples}
        for latency in latencies:
            items = _sim_items(n_items[latency])
            mean_steps = statistics.fmean(steps[it.id] for it in items)
            ideal = concurrency / (mean_steps * latency)
            row: dict[str, Any] = {"items": len(items), "latency_s": latency,
                                   "mean_steps": round(mean_steps, 3),
                                   "ideal_items_per_s": round(ideal, 2)}
            pool = _sim_pool(latency)
            for w in workers:
                c0 = time.process_time()
                wall, rows, _ = _sim_eval(graph, pool, items, concurrency, w)
                rate = len(items) / wall
                row[f"workers_{w}"] = {
                    "items_per_s": round(rate, 2), "ratio_to_ideal": round(rate / ideal, 4),
                    "wall_s": round(wall, 3),
                    "this_process_cpu_ms_per_item": round(
                        (time.process_time() - c0) / len(items) * 1000, 3),
                    "item_latency_p50_s": round(_median(r["latency_s"] for r in rows), 4)}
                if w > 1 and startup and wall > startup:
                    # an estimate: the same eval with its workers already started
                    row[f"workers_{w}"]["ratio_to_ideal_without_startup"] = round(
                        len(items) / (wall - startup) / ideal, 4)
            if len(workers) > 1:
                row["workers_2_over_1"] = round(row["workers_2"]["items_per_s"]
                                                / row["workers_1"]["items_per_s"], 3)
            per[f"{int(latency * 1000)}ms"] = row
        section["results"][graph] = per
    return section


def print_eval_workers(sec: dict[str, Any]) -> None:
    print(f"  eval throughput by workers (simulated pool, concurrency {sec['concurrency']} in"
          " all; ideal = concurrency / mean critical path; wall includes worker start-up):")
    if not sec["workers_supported"]:
        print(f"    workers=2: n/a ({sec['workers_n/a']})")
    if "worker_startup_s" in sec:
        print(f"    worker start-up (2-item eval, workers=2 less workers=1):"
              f" {sec['worker_startup_s']:.2f} s")
    for graph, per in sec["results"].items():
        for key, row in per.items():
            cells = []
            for w in (1, 2):
                m = row.get(f"workers_{w}")
                if m:
                    est = m.get("ratio_to_ideal_without_startup")
                    cells.append(f"workers={w} {m['items_per_s']:6.1f} items/s ="
                                 f" {m['ratio_to_ideal']:.3f} of ideal"
                                 + (f" ({est:.3f} less start-up)" if est else ""))
            ratio = f"; 2/1 workers {row['workers_2_over_1']:.2f}x" if "workers_2_over_1" in row \
                else ""
            print(f"    {graph:6s} {key:>5s} x{row['mean_steps']:.2f} steps, {row['items']} items,"
                  f" ideal {row['ideal_items_per_s']:6.1f}/s: " + "; ".join(cells) + ratio)


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
        kwargs: dict[str, Any] = {"quick": quick} if "quick" in params else {}
        if quick:  # the smoke-test size: the code path, not the figure
            kwargs.update({k: v for k, v in (("clients", 2), ("max_new_tokens", 4))
                           if k in params})
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


# -- 5. serve workers ------------------------------------------------------------------------

SERVE_COMMAND = "python evals/bench_serve.py --workers 1,2 --clients 64 --graphs single,colm"


def bench_serve(quick: bool) -> dict[str, Any]:
    """``evals/bench_serve.py`` in a child process (it starts ``colm-graph serve`` and runs
    its load generator there); ``--quick`` only points at it (it has its own smoke test)."""
    if quick:
        return {"skipped": f"not run with --quick; run: {SERVE_COMMAND} --seconds 10"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "serve.json"
        run = subprocess.run([sys.executable, str(ROOT / "evals" / "bench_serve.py"),
                              "--workers", "1,2", "--clients", "64", "--seconds", "6",
                              "--warmup", "2", "--graphs", "single,colm", "--json", str(out)],
                             capture_output=True, text=True, timeout=600)
        if run.returncode != 0 or not out.exists():
            return {"error": f"bench_serve failed ({run.returncode}): {run.stderr[-500:]}"}
        report: dict[str, Any] = json.loads(out.read_text())
    report["printed"] = run.stdout
    return report


def print_serve(sec: dict[str, Any]) -> None:
    print("\n== 5. Serve workers (evals/bench_serve.py: colm-graph serve --workers N on the"
          " simulator, 64 clients) ==")
    if "skipped" in sec or "error" in sec:
        print(f"  {sec.get('skipped') or sec.get('error')}")
        return
    print(textwrap.indent(sec["printed"].rstrip(), "  "))


# -- 6. provider layer -----------------------------------------------------------------------


def bench_provider(quick: bool) -> dict[str, Any]:
    sys.modules.setdefault("_bench", sys.modules[__name__])  # bench_provider's helpers
    path = ROOT / "evals" / "bench_provider.py"
    try:
        module = _load(path, "_bench_provider")
        result: dict[str, Any] = module.run(quick=quick)
    except Exception as exc:  # report, keep the other sections
        return {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500]}
    return result


def print_provider(sec: dict[str, Any]) -> None:
    print("\n== 6. Provider layer (evals/bench_provider.py): raw httpx vs a thin BaseChatModel"
          " on httpx vs ChatOpenAI, local fake server in its own process ==")
    if "error" in sec:
        print(f"  failed: {sec['error']}")
        return
    sys.modules["_bench_provider"].print_report(sec)


# -- issue 15 summary ------------------------------------------------------------------------


def issue15(report: dict[str, Any]) -> dict[str, Any]:
    """Every issue-15 figure as a ratio to its reference (``None`` where not measured)."""
    out: dict[str, Any] = {}
    graphs = report["orchestration"]["graphs"]
    for name in ("colm", "colm_gather"):
        g = graphs.get(name, {})
        out[f"{name}_wall_minus_critical_ms"] = None if "n/a" in g else {
            mode: g[mode]["overhead_ms_median"] for mode in ("ainvoke", "invoke")}
        out[f"{name}_wall_over_critical"] = None if "n/a" in g else {
            mode: g[mode]["ratio_median"] for mode in ("ainvoke", "invoke")}
    run = report["colm_run"]
    for label in ("graph_send", "graph_gather"):
        m = run.get(label, {})
        out[f"{label}_steps"] = None if "n/a" in m else {
            "super_steps": m["super_steps"], "tasks": m["tasks"]}
        out[f"{label}_cpu_over_plain_asyncio"] = m.get("cpu_over_plain")
    ew = report["eval_workers"]["results"]
    out["eval_ratio_to_ideal"] = {
        f"{graph} {key} workers={w}": row[f"workers_{w}"]["ratio_to_ideal"]
        for graph, per in ew.items() for key, row in per.items() for w in (1, 2)
        if f"workers_{w}" in row}
    out["eval_workers_2_over_1"] = {f"{graph} {key}": row.get("workers_2_over_1")
                                    for graph, per in ew.items() for key, row in per.items()}
    serve = report["serve_workers"]
    out["serve_workers_2_over_1"] = None if "ratios" not in serve else {
        g: {k: round(v, 3) for k, v in per.get("2", {}).items()}
        for g, per in serve["ratios"].items()}
    out["serve_workers_1_requests_per_s"] = None if "results" not in serve else {
        g: round(per["1"]["requests_per_s"], 1) for g, per in serve["results"].items()}
    prov = report["provider"]
    if "error" not in prov:
        out["provider_per_call"] = {f"{int(p['latency_s'] * 1000)}ms {mode}": p[mode]["ratios"]
                                    for p in prov["per_call"] for mode in ("json", "stream")}
        c = prov["colm_run"]
        out["colm_run_over_http_cpu_ms"] = {k: c[k]["cpu_ms_per_run"] for k in
                                            ("graph", "plain_chat_openai", "plain_thin",
                                             "plain_raw_httpx")}
        out["colm_run_over_http_ratios"] = c["ratios"]
    return out


def print_issue15(x: dict[str, Any]) -> None:
    def fmt(v: Any) -> str:
        if v is None:
            return "n/a"
        if isinstance(v, dict):
            return ", ".join(f"{k} {fmt(w)}" for k, w in v.items())
        return f"{v:g}" if isinstance(v, float) else str(v)

    print("\n== issue 15 (speed at scale): each figure against its reference ==")
    rows = [
        ("CoLM k=4 R=2, 20 ms calls: wall - critical path, ms (Send fan-out)",
         x["colm_wall_minus_critical_ms"]),
        ("  ... wall / critical path", x["colm_wall_over_critical"]),
        ("  ... with fan_out: gather: wall - critical, ms",
         x["colm_gather_wall_minus_critical_ms"]),
        ("  ... with fan_out: gather: wall / critical", x["colm_gather_wall_over_critical"]),
        ("CoLM super-steps / tasks per run (Send; plain asyncio: 5 awaits, 14 calls)",
         x["graph_send_steps"]),
        ("  ... with fan_out: gather", x["graph_gather_steps"]),
        ("CoLM CPU per run on fakes / plain asyncio, Send", x["graph_send_cpu_over_plain_asyncio"]),
        ("  ... fan_out: gather", x["graph_gather_cpu_over_plain_asyncio"]),
        ("CoLM client CPU per run over HTTP, ms (issue: 66-72 / 54-57 / - / 23-25)",
         x.get("colm_run_over_http_cpu_ms")),
        ("  ... ratios and the provider layer's share",
         x.get("colm_run_over_http_ratios")),
        ("eval items/s / ideal (simulated pool, concurrency 32)", x["eval_ratio_to_ideal"]),
        ("eval workers=2 / workers=1", x["eval_workers_2_over_1"]),
        ("serve req/s at 64 clients, 1 worker (issue: single 228, colm 87)",
         x["serve_workers_1_requests_per_s"]),
        ("serve 2 workers / 1 (issue: single 1.75x, colm 1.89x req/s)",
         x["serve_workers_2_over_1"]),
        ("provider per call at concurrency 32 (ChatOpenAI vs raw httpx / thin)",
         x.get("provider_per_call")),
    ]
    for label, value in rows:
        print(textwrap.fill(f"{label}: {fmt(value)}", 96, initial_indent="  ",
                            subsequent_indent="      "))


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

    seconds: dict[str, float] = {}

    def section(key: str, fn: Callable[[], Any], show: Callable[[Any], None]) -> None:
        start = time.perf_counter()
        report[key] = fn()
        seconds[key] = round(time.perf_counter() - start, 1)
        show(report[key])

    section("orchestration", lambda: bench_orchestration(
        reps=2 if quick else 20, latency=0.02, profile_runs=1 if quick else 20),
        print_orchestration)
    section("colm_run", lambda: bench_colm_run(runs=3 if quick else 20, reps=1 if quick else 5),
            print_colm_run)
    section("eval_throughput", lambda: bench_throughput(
        n_items=64 if quick else 200, concurrency=32, latency=0.05, reps=1 if quick else 3,
        n_sequential=10 if quick else 200, profile=True, bursts=1 if quick else 10),
        print_throughput)
    # --quick: the code path at a smoke-test size (worker start-up alone takes seconds)
    section("eval_workers", lambda: bench_eval_workers(
        [0.05], {0.05: 32}, 32, graphs=("single",), workers=(1,)) if quick else
        bench_eval_workers([0.05, 0.5], {0.05: 320, 0.5: 128}, 32), print_eval_workers)

    def footprint() -> dict[str, Any]:
        out = {"import": bench_import(reps=1 if quick else 5),
               "memory": bench_memory(50 if quick else 1000, concurrency=16)}
        out["status"] = _status(all(out[k]["status"] == "PASS" for k in ("import", "memory")))
        return out

    section("footprint", footprint, print_footprint)
    section("local_models", lambda: bench_local(quick), print_local)
    section("serve_workers", lambda: bench_serve(quick), print_serve)
    section("provider", lambda: bench_provider(quick), print_provider)
    report["section_seconds"] = seconds
    report["issue15"] = issue15(report)
    print_issue15(report["issue15"])

    report["load_average_at_end"] = ([round(x, 2) for x in os.getloadavg()]
                                     if hasattr(os, "getloadavg") else None)
    print(f"\n== summary == (load average now {report['load_average_at_end']}; seconds per"
          f" section {report['section_seconds']})")
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
