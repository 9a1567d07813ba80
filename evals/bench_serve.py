"""Throughput of ``colm-graph serve`` by number of workers, on the built-in simulator.

    python evals/bench_serve.py [--workers 1,2] [--clients 64] [--seconds 10]
                                [--graphs single,colm] [--json FILE]

For each worker count, one ``colm-graph serve --workers N`` process (the simulated pool, no
network beyond 127.0.0.1, a free port, a bearer token from an environment variable) and
``--clients`` concurrent HTTP clients in this process (one httpx client, one asyncio task
per client) that send chat requests back to back for ``--seconds`` after a ``--warmup``.
Prints requests/s and p50/p99 latency per graph and worker count, the ratios to the first
worker count, and, over the measured window, the CPU per request of the server (all its
processes) and of this load generator, and the cores both kept busy: with the load
generator on the same machine, the two compete for its cores. Timings depend on the machine
(its cores above all); nothing here is a test assertion. ``run()`` returns the figures as a
dict (``evals/bench.py`` calls this file).
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
from typing import Any
from urllib.parse import urlsplit

import httpx

QUESTION = "Compute 32 times 15, plus 60."
TOKEN_ENV = "COLM_BENCH_SERVE_TOKEN"
#: Earlier figures (issue 15): req/s at 64 clients with one worker; 2 workers / 1.
ISSUE_FIGURES = {"single": (228.0, 1.75), "colm": (87.0, 1.89)}
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes of process group ``pgid`` (the
    server and its workers, started in their own session), from /proc; 0 elsewhere."""
    total = 0
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def _token() -> str:
    return os.environ.setdefault(TOKEN_ENV, "bench-serve-local-token")


def start(workers: int, graphs: str) -> tuple[subprocess.Popen[str], str]:
    _token()
    proc = subprocess.Popen(
        [sys.executable, "-m", "colm_graph.cli", "serve", "--workers", str(workers),
         "--port", "0", "--graphs", graphs, "--token-env", TOKEN_ENV],
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


class RawConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams, sending one fixed POST: a load
    generator that costs far less CPU per request than an httpx client, so that on a small
    machine the server, not the generator, gets the cores."""

    def __init__(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        parsed = urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        head = [f"POST {parsed.path}/chat/completions HTTP/1.1", f"Host: {parsed.netloc}",
                "Content-Type: application/json", f"Content-Length: {len(body)}",
                *(f"{k}: {v}" for k, v in headers.items())]
        self.request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self) -> int:
        """Send the request, read the whole response; its status."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.request)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length, chunked, close = None, False, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                close = value == "close"
        if chunked:
            while (size := int((await self.reader.readline()).split(b";")[0], 16)):
                await self.reader.readexactly(size + 2)
            await self.reader.readline()
        elif length is not None:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def load(url: str, graph: str, clients: int, seconds: float, warmup: float,
               server_pgid: int | None = None, generator: str = "raw") -> dict[str, float]:
    """``clients`` clients sending requests back to back for ``warmup`` + ``seconds``;
    requests started in the measured window count. ``generator``: ``raw``
    (:class:`RawConnection`, one connection per client) or ``httpx`` (one AsyncClient)."""
    body = {"model": graph, "messages": [{"role": "user", "content": QUESTION}]}
    headers = {"Authorization": f"Bearer {_token()}"}
    latencies: list[float] = []
    errors = 0
    cpu: dict[str, float] = {}
    first = httpx.post(url + "/chat/completions", json=body, headers=headers, timeout=120)
    first.raise_for_status()  # the request works, and its reply is a chat completion
    if not first.json()["choices"][0]["message"]["content"]:
        raise SystemExit(f"bench_serve: {graph}: an empty reply")
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits,
                                 headers=headers) as client:
        begin = time.perf_counter()
        measure_from, end = begin + warmup, begin + warmup + seconds

        async def sample() -> None:  # CPU of both sides over the measured window
            await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
            cpu["server0"] = group_cpu_s(server_pgid) if server_pgid else 0.0
            cpu["client0"] = time.process_time()
            await asyncio.sleep(max(0.0, end - time.perf_counter()))
            cpu["server"] = (group_cpu_s(server_pgid) if server_pgid else 0.0) - cpu["server0"]
            cpu["client"] = time.process_time() - cpu["client0"]

        async def one_client() -> None:
            nonlocal errors
            conn = RawConnection(url, json.dumps(body).encode(), headers)
            while (now := time.perf_counter()) < end:
                try:
                    async with asyncio.timeout(120):
                        if generator == "raw":
                            ok = await conn.post() == 200
                        else:
                            ok = (await client.post("/chat/completions", json=body)
                                  ).status_code == 200
                except (OSError, TimeoutError, ValueError, IndexError,
                        asyncio.IncompleteReadError, httpx.HTTPError):
                    ok = False  # counted, not fatal: the figures say how many
                    conn.close()
                done = time.perf_counter()
                if now >= measure_from:
                    if ok:
                        latencies.append(done - now)
                    else:
                        errors += 1
            conn.close()

        sampler = asyncio.create_task(sample())
        await asyncio.gather(*(one_client() for _ in range(clients)))
        await sampler
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 \
        else latencies * 99
    n = max(len(latencies), 1)
    return {"requests_per_s": len(latencies) / seconds, "p50_s": q[49], "p99_s": q[98],
            "requests": len(latencies), "errors": errors,
            "server_cpu_ms_per_request": 1000 * cpu["server"] / n,
            "client_cpu_ms_per_request": 1000 * cpu["client"] / n,
            "cores_busy": (cpu["server"] + cpu["client"]) / seconds,
            "server_cores_busy": cpu["server"] / seconds}


def run(workers: list[int], graphs: list[str], clients: int = 64, seconds: float = 10.0,
        warmup: float = 2.0, generator: str = "raw") -> dict[str, Any]:
    """The figures, per graph and worker count (prints nothing): ``results[graph][workers]``
    and, per graph, ``ratios[graph][workers]`` of req/s and p50/p99 to ``workers[0]``."""
    results: dict[str, dict[int, dict[str, float]]] = {g: {} for g in graphs}
    for n in workers:
        proc, url = start(n, ",".join(graphs))
        try:
            for g in graphs:
                results[g][n] = asyncio.run(load(url, g, clients, seconds, warmup,
                                                 server_pgid=proc.pid, generator=generator))
        finally:
            stop(proc)
    ratios = {g: {n: {k: results[g][n][k] / max(results[g][workers[0]][k], 1e-9)
                      for k in ("requests_per_s", "p50_s", "p99_s")} for n in workers}
              for g in graphs}
    return {"clients": clients, "seconds": seconds, "warmup": warmup, "generator": generator,
            "cores": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()]
            if hasattr(os, "getloadavg") else None,
            "results": results, "ratios": ratios,
            "issue_figures": {g: {"workers_1_requests_per_s": v[0], "workers_2_over_1": v[1]}
                              for g, v in ISSUE_FIGURES.items()}}


def print_report(report: dict[str, Any], out: Any = None) -> None:
    out = out or sys.stdout
    results, ratios = report["results"], report["ratios"]
    out.write(f"colm-graph serve on the simulator: {report['clients']} clients,"
              f" {report['seconds']:g} s each after {report['warmup']:g} s warm-up,"
              f" {report['generator']} load generator,"
              f" {report['cores']} cores, load average {report['load_average']}\n")
    out.write(f"{'graph':<8} {'workers':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
              f" {'x req/s':>8} {'x p99':>7} {'errors':>6} {'x p50':>6} {'srv ms/r':>8}"
              f" {'gen ms/r':>8} {'cores':>5} {'srv cores':>9}\n")
    for g, per in results.items():
        for n, r in per.items():
            x = ratios[g][n]
            out.write(
                f"{g:<8} {n:>7} {r['requests_per_s']:>8.1f} {1000 * r['p50_s']:>8.1f}"
                f" {1000 * r['p99_s']:>8.1f} {x['requests_per_s']:>8.2f} {x['p99_s']:>7.2f}"
                f" {int(r['errors']):>6} {x['p50_s']:>6.2f}"
                f" {r['server_cpu_ms_per_request']:>8.2f} {r['client_cpu_ms_per_request']:>8.2f}"
                f" {r['cores_busy']:>5.2f} {r['server_cores_busy']:>9.2f}\n")
    issue = ", ".join(f"{g} {v['workers_1_requests_per_s']:.0f} req/s, 2 workers"
                      f" {v['workers_2_over_1']:.2f}x" for g, v in report["issue_figures"].items())
    out.write(f"(issue 15, 64 clients, 1 worker: {issue}; srv/gen ms/r: CPU per request of the"
              " server's processes / of this load generator; cores, srv cores: the cores both /"
              " the server kept busy over the window: below the worker count, the machine's"
              " other load took the rest)\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--graphs", default="single,colm")
    ap.add_argument("--generator", choices=("raw", "httpx"), default="raw",
                    help="load generator: keep-alive connections on asyncio streams (raw,"
                         " cheap) or one httpx AsyncClient")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    report = run([int(w) for w in args.workers.split(",")],
                 [g.strip() for g in args.graphs.split(",")], clients=args.clients,
                 seconds=args.seconds, warmup=args.warmup, generator=args.generator)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
