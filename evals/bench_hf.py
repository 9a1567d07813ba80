"""Throughput of the ``huggingface`` provider with and without micro-batching.

    python evals/bench_hf.py [--clients 8] [--prompts 32] [--max-new-tokens 16] [--repeats 3]
                             [--quick]

Builds the tiny random GPT-2 chat model of ``tests/support/tiny_hf.py`` in a temporary
directory, then ``clients`` pool entries over that one directory each generate, one after
the other, for the same ``prompts`` prompts, all clients at once (one thread per client, as
parallel graph branches under ``invoke``). Measured twice on the same machine: with batching
(``max_batch`` 8, ``batch_wait_s`` 5 ms) and one call at a time (``max_batch`` 1), ``repeats``
times each, interleaved. Prints generations per second for both (median run), their ratio,
the pipeline calls made, the time spent inside them, and the machine.

``run(...)`` returns the same figures as a dict (``evals/bench.py`` imports this file by
path). The tiny model's cost is mostly per-call overhead, so the ratio here is an upper
bound of what batching gives a real model on the same CPU. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _tiny_hf() -> ModuleType:
    path = ROOT / "tests" / "support" / "tiny_hf.py"
    spec = importlib.util.spec_from_file_location("_bench_tiny_hf", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prompts(n: int) -> list[str]:
    """``n`` short questions of varied length (so batches are padded)."""
    tails = ["", " Think step by step.", " Give the final answer on the last line.",
             " Read the question carefully, then check each step before you answer."]
    return [f"Question {i}: what is {i} + {3 * i}?{tails[i % len(tails)]}" for i in range(n)]


def _measure(model_dir: Path, *, clients: int, items: list[str], max_new_tokens: int,
             max_batch: int, batch_wait_s: float) -> dict[str, Any]:
    from colm_graph.pool import ModelSpec
    from colm_graph.pool.providers.huggingface import build

    chats = [build(ModelSpec(name=f"client-{i}", provider="huggingface", model=str(model_dir),
                             tier="local", max_tokens=max_new_tokens),
                   max_batch=max_batch, batch_wait_s=batch_wait_s) for i in range(clients)]
    batcher = chats[0]._batcher
    chats[0].invoke(items[0])  # warm-up
    calls, requests, busy = batcher.calls, batcher.requests, batcher.busy_s
    batcher.largest_batch = 0  # of this run only

    def client(chat: Any) -> list[str]:
        return [chat.invoke(q).text for q in items]

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        texts = list(pool.map(client, chats))
    seconds = time.perf_counter() - start
    # An idle worker thread that has run torch slows torch on other threads: let it go.
    batcher.stop()
    generations = clients * len(items)
    return {"max_batch": max_batch, "batch_wait_ms": batch_wait_s * 1000,
            "generations": generations, "seconds": round(seconds, 3),
            "generations_per_s": round(generations / seconds, 1),
            "pipeline_calls": batcher.calls - calls,
            "requests": batcher.requests - requests,
            "largest_batch": batcher.largest_batch,
            "pipeline_busy_s": round(batcher.busy_s - busy, 3), "_texts": texts}


def run(*, clients: int = 8, n_prompts: int = 32, max_new_tokens: int = 16,
        max_batch: int = 8, batch_wait_s: float = 0.005, repeats: int = 3,
        quick: bool = False) -> dict[str, Any]:
    """Measure batched and one-at-a-time throughput; returns the figures (prints nothing).

    Args:
        clients: Pool entries over the one model directory, generating at the same time.
        n_prompts: Prompts each client generates for (the same set for every client).
        max_new_tokens: Tokens generated per prompt (at most; EOS may stop earlier).
        max_batch: ``max_batch`` of the batched run (the other run uses 1).
        batch_wait_s: ``batch_wait_s`` of the batched run.
        repeats: Runs of each setting, interleaved; the run with the median throughput is
            reported, with every run's throughput.
        quick: A smoke-test size (8 prompts per client, one run).
    """
    import torch

    from colm_graph.pool.providers.huggingface import clear_pipeline_cache

    items = prompts(8 if quick else n_prompts)
    repeats = 1 if quick else max(1, repeats)
    runs: dict[str, list[dict[str, Any]]] = {"batched": [], "one_at_a_time": []}
    with tempfile.TemporaryDirectory(prefix="bench_hf_") as tmp:
        model_dir = _tiny_hf().build_tiny_chat_model(Path(tmp) / "tiny")
        common: dict[str, Any] = {"clients": clients, "items": items,
                                  "max_new_tokens": max_new_tokens}
        try:
            for _ in range(repeats):
                runs["batched"].append(_measure(model_dir, max_batch=max_batch,
                                                batch_wait_s=batch_wait_s, **common))
                runs["one_at_a_time"].append(_measure(model_dir, max_batch=1,
                                                      batch_wait_s=0.0, **common))
        finally:
            clear_pipeline_cache(model_dir)
    texts = [r.pop("_texts") for rs in runs.values() for r in rs]
    median = {label: _median_run(rs) for label, rs in runs.items()}
    return {
        "machine": {"cpu_count": os.cpu_count(), "usable_cores": _usable_cores(),
                    "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "model": "tiny random GPT-2 (tests/support/tiny_hf.py), CPU",
        "clients": clients, "prompts_per_client": len(items), "max_new_tokens": max_new_tokens,
        "repeats": repeats, **median,
        "ratio": round(median["batched"]["generations_per_s"]
                       / median["one_at_a_time"]["generations_per_s"], 2),
        "same_outputs": all(t == texts[0] for t in texts),
    }


def _usable_cores() -> int | None:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


def _median_run(rs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(rs, key=lambda r: r["generations_per_s"])
    return {**ordered[len(ordered) // 2],
            "all_generations_per_s": [r["generations_per_s"] for r in rs]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="8 prompts per client, one run")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    r = run(clients=args.clients, n_prompts=args.prompts, max_new_tokens=args.max_new_tokens,
            repeats=args.repeats, quick=args.quick)
    m = r["machine"]
    print(f"machine: {m['cpu_count']} cores ({m['usable_cores']} usable, torch threads"
          f" {m['torch_threads']}), {m['platform']}, python {m['python']}, torch {m['torch']}")
    print(f"model: {r['model']}; {r['clients']} clients x {r['prompts_per_client']} prompts,"
          f" max_new_tokens {r['max_new_tokens']}; median of {r['repeats']} runs")
    for label, f in (("batched", r["batched"]), ("one at a time", r["one_at_a_time"])):
        print(f"  {label:<14} max_batch {f['max_batch']}, wait {f['batch_wait_ms']:.1f} ms:"
              f" {f['generations']} generations in {f['seconds']:.2f} s ="
              f" {f['generations_per_s']:.1f}/s ({f['pipeline_calls']} pipeline calls,"
              f" largest batch {f['largest_batch']}, {f['pipeline_busy_s']:.2f} s in them);"
              f" all runs: {f['all_generations_per_s']}")
    print(f"  ratio batched / one at a time: {r['ratio']:.2f}x;"
          f" same greedy outputs: {r['same_outputs']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
