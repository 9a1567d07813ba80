"""Throughput of ``colm-graph serve`` by number of workers, on the built-in simulator.

    python evals/bench_serve.py [--workers 1,2,4] [--clients 64] [--seconds 10]
                                [--graphs single,colm] [--json FILE]

For each worker count, one ``colm-graph serve --workers N`` process (the simulated pool, no
network beyond 127.0.0.1) and ``--clients`` concurrent HTTP clients that send chat requests
back to back for ``--seconds`` after a short warm-up. Prints requests/s and p50/p99 latency
per graph and worker count, and the ratios to one worker. Timings depend on the machine (its
cores above all); nothing here is a test assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

QUESTION = "Compute 32 times 15, plus 60."


def start(workers: int, graphs: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "colm_graph.cli", "serve", "--workers", str(workers),
         "--port", "0", "--graphs", graphs],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if " at " not in line:
        proc.kill()
        raise SystemExit(f"bench_serve: the server did not start: {line!r}")
    url = line.split(" at ")[1].split()[0]
    # keep reading its output (uvicorn's access log): a full pipe would stop the server
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url.removesuffix("/v1") + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("bench_serve: the server did not answer /health")


def stop(proc: subprocess.Popen[str]) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:  # not stopped gracefully: say so, and stop it
        sys.stderr.write("bench_serve: the server did not stop on SIGTERM in 30 s\n")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    if proc.stdout is not None:
        proc.stdout.close()


async def load(url: str, graph: str, clients: int, seconds: float, warmup: float
               ) -> dict[str, float]:
    body = {"model": graph, "messages": [{"role": "user", "content": QUESTION}]}
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        begin = time.perf_counter()
        measure_from, end = begin + warmup, begin + warmup + seconds

        async def one_client() -> None:
            nonlocal errors
            while (now := time.perf_counter()) < end:
                try:
                    r = await client.post("/chat/completions", json=body)
                    ok = r.status_code == 200
                except httpx.HTTPError:  # counted, not fatal: the figures say how many
                    ok = False
                done = time.perf_counter()
                if now >= measure_from:
                    if ok:
                        latencies.append(done - now)
                    else:
                        errors += 1

        await asyncio.gather(*(one_client() for _ in range(clients)))
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 \
        else latencies * 99
    return {"requests_per_s": len(latencies) / seconds, "p50_s": q[49], "p99_s": q[98],
            "requests": len(latencies), "errors": errors}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--graphs", default="single,colm")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    graphs = [g.strip() for g in args.graphs.split(",")]
    results: dict[str, dict[int, dict[str, float]]] = {g: {} for g in graphs}
    for n in counts:
        proc, url = start(n, args.graphs)
        try:
            for g in graphs:
                results[g][n] = asyncio.run(load(url, g, args.clients, args.seconds,
                                                 args.warmup))
        finally:
            stop(proc)
    cores = os.cpu_count()
    sys.stdout.write(f"colm-graph serve on the simulator: {args.clients} clients,"
                     f" {args.seconds:g} s each, {cores} cores\n")
    sys.stdout.write(f"{'graph':<8} {'workers':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
                     f" {'x req/s':>8} {'x p99':>7} {'errors':>6}\n")
    for g in graphs:
        base = results[g][counts[0]]
        for n in counts:
            r = results[g][n]
            sys.stdout.write(
                f"{g:<8} {n:>7} {r['requests_per_s']:>8.1f} {1000 * r['p50_s']:>8.1f}"
                f" {1000 * r['p99_s']:>8.1f}"
                f" {r['requests_per_s'] / max(base['requests_per_s'], 1e-9):>8.2f}"
                f" {r['p99_s'] / max(base['p99_s'], 1e-9):>7.2f} {int(r['errors']):>6}\n")
    if args.json:
        Path(args.json).write_text(json.dumps({"clients": args.clients, "cores": cores,
                                               "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
