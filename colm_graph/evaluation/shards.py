"""An eval on every core: the parent's side of ``colm-graph eval --workers N``.

One event loop runs out of CPU long before the models do (the graphs, LangChain and the
HTTP clients are Python), so the runner shards the (graph, item) pairs left to do across
worker processes, by item, each with its own event loop and a share of ``--concurrency``.
How the guarantees of a one-process eval are kept:

* **One writer.** Workers write no results: each finished pair goes to the parent over the
  worker's stdout (a pipe) as one message, its row and its samples line, and the parent
  writes and flushes them (samples first) to ``results.jsonl`` / ``samples.jsonl`` and moves
  the one progress bar. So the files have whole lines from one process only; a row is on
  disk exactly when the parent wrote it, and ``--resume`` (which reads ``results.jsonl``)
  redoes exactly the pairs without one, whoever was killed.
* **A worker dies** (SIGKILL, a crash): what it sent before is still in the pipe and is
  written; a message cut off by the death is dropped (its pair has no row). The others
  finish; then one line says which worker died and how many pairs are left for
  ``--resume``, and the eval exits non-zero.
* **The parent dies**: each worker watches its stdin (the parent holds the only write end)
  and, as a fallback, its parent's pid, and exits at once without another message; the
  rows it had not handed over are not on disk, so ``--resume`` redoes them. Workers run in
  a session of their own, so Ctrl-C reaches the parent only, which stops them.
* **One budget.** Workers share ``DIR/paid.sqlite``
  (:class:`~colm_graph.run.spend.SQLiteSpendStore`): every paid call reserves its worst
  case against one cap for this part of the eval (the cap less what earlier parts spent) in
  one ``BEGIN IMMEDIATE`` transaction, so two workers can never both take the last dollar,
  and the reservation does not expire while the part runs (a dead worker's calls stay
  held). Each reservation and settlement is journaled to ``DIR/paid.jsonl`` as in one
  process (one line per write, appended), so a resumed eval counts what every process of
  the earlier parts spent, calls in flight at a kill at their worst case.
* **One call cache.** ``DIR/calls.sqlite`` is SQLite in WAL mode with a 30 s busy timeout
  (:func:`colm_graph.core.sqlite.thread_connection`): safe for the workers' readers and
  writers at once. An item's graphs share a worker, so identical calls (the same prompt to
  the same model) still go one at a time on one event loop and a sweep's later values are
  answered from the cache.

Workers are plain subprocesses (``python -m colm_graph.evaluation.worker``), not
``multiprocessing`` children: nothing of the parent's ``__main__`` is imported again, and a
worker imports only what the eval needs (never torch unless a pool entry loads a local
model). Their job is JSON: the shard, the graphs' and the pool's settings (a worker
rebuilds both), the cache file, the cap. Messages are length-prefixed JSON frames.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["WORKER", "frame", "read_frame", "read_frame_from", "run_workers"]

WORKER = "colm_graph.evaluation.worker"
"""The module a worker process runs."""
_HEADER = struct.Struct(">Q")
_ROOT = Path(__file__).resolve().parents[2]  # the folder holding this colm_graph


def frame(message: Mapping[str, Any]) -> bytes:
    """``message`` as one frame: its length (8 bytes, big-endian), then its JSON."""
    data = json.dumps(message).encode("utf-8")
    return _HEADER.pack(len(data)) + data


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any]:
    """The next frame's message; :class:`asyncio.IncompleteReadError` at the end of the
    stream, a frame cut off included."""
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    message: dict[str, Any] = json.loads(await reader.readexactly(size))
    return message


def read_frame_from(stream: BinaryIO) -> dict[str, Any] | None:
    """The next frame's message from a blocking stream; ``None`` at its end."""
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        return None
    message: dict[str, Any] = json.loads(data)
    return message


def _env() -> dict[str, str]:
    """The workers' environment: this one, with this colm_graph first on the path (so that
    the workers run the parent's code, installed or not)."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(_ROOT) + (os.pathsep + path if path else "")}


def _how(code: int, fatal: str | None) -> str:
    if fatal:
        return f"failed ({fatal})"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


async def run_workers(jobs: Sequence[Mapping[str, Any]],
                      deliver: Callable[[dict[str, Any]], None]) -> list[str]:
    """Start one worker process per job, hand each finished pair's message
    (``{"row": ..., "samples": ...}``) to ``deliver`` as it comes, and wait for them all.
    Returns one phrase per worker that did not finish its shard (none: every pair done).
    Whatever happens here (an error, a cancellation), no worker outlives the call."""
    procs: list[asyncio.subprocess.Process] = []
    env = _env()

    async def serve(i: int, job: Mapping[str, Any]) -> str | None:
        proc = await asyncio.create_subprocess_exec(  # a session of its own: Ctrl-C is the
            sys.executable, "-m", WORKER, stdin=asyncio.subprocess.PIPE,  # parent's to handle
            stdout=asyncio.subprocess.PIPE, env=env, start_new_session=True)
        procs.append(proc)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(frame(job))
        try:
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):  # it died before reading: below
            pass
        rows, finished, fatal = 0, False, None
        while True:
            try:
                message = await read_frame(proc.stdout)
            except (asyncio.IncompleteReadError, ValueError):  # the end, or a torn frame
                break
            if "row" in message:
                deliver(message)
                rows += 1
            elif "fatal" in message:
                fatal = str(message["fatal"])
            elif message.get("done"):
                finished = True
        code = await proc.wait()
        if finished and code == 0:
            return None
        left = len(job["pairs"]) - rows
        return (f"worker {i + 1} of {len(jobs)} (pid {proc.pid}) {_how(code, fatal)} with"
                f" {left} of its {len(job['pairs'])} (graph, item) pairs unfinished")

    try:
        outcomes = await asyncio.gather(*(serve(i, job) for i, job in enumerate(jobs)))
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            if proc.stdin is not None:
                proc.stdin.close()
    return [o for o in outcomes if o]
