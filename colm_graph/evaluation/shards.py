"""An eval on every core: the parent's side of ``colm-graph eval --workers N``.

One event loop runs out of CPU long before the models do (the graphs, LangChain and the
HTTP clients are Python), so ``--workers N`` runs the (graph, item) pairs left to do on this
process's own event loop and on N - 1 worker processes, each with its own event loop and a
share of ``--concurrency``. The pairs are not fixed in shards: they are dealt on demand
from one queue here (:class:`~colm_graph.evaluation.runner.Dealer`), in the eval's order, a
few at a time, to whichever process has fewer than its share in flight; this process starts
on its share at once, while the workers import (2 to 4 s of CPU each), and a late or slow
worker leaves no one idle at the end. An item belongs to the first process dealt one of its
pairs, and its other graphs go there too. A worker asks with ``{"want": n}`` on its stdout
and is answered on its stdin (pairs and their items; none when all are dealt).
How the guarantees of a one-process eval are kept:

* **One writer.** Workers write no results: each finished pair goes to the parent over the
  worker's stdout (a pipe) as one message, its row and its samples line, and the parent
  writes and flushes them (samples first) to ``results.jsonl`` / ``samples.jsonl`` and moves
  the one progress bar. So the files have whole lines from one process only; a row is on
  disk exactly when the parent wrote it, and ``--resume`` (which reads ``results.jsonl``)
  redoes exactly the pairs without one, whoever was killed.
* **A worker dies** (SIGKILL, a crash): what it sent before is still in the pipe and is
  written; a message cut off by the death is dropped (its pair has no row). The pairs it
  had taken and not finished are not dealt again (no pair can run twice); the pairs kept
  for it and never sent are dealt to the others. The others finish; then one line says
  which worker died and how many pairs are left for ``--resume``, and the eval exits
  non-zero. (A worker that dies having taken nothing loses nothing: a note, not an error.)
* **The parent dies**: each worker reads its stdin (the parent holds the only write end)
  and, as a fallback, watches its parent's pid, and exits at once without another message; the
  rows it had not handed over are not on disk, so ``--resume`` redoes them. Workers run in
  a session of their own, so Ctrl-C reaches the parent only, which stops them.
* **One budget.** This process and the workers share ``DIR/paid.sqlite``
  (:class:`~colm_graph.run.spend.SQLiteSpendStore`): every paid call reserves its worst
  case against one cap for this part of the eval (the cap less what earlier parts spent) in
  one ``BEGIN IMMEDIATE`` transaction, so two workers can never both take the last dollar,
  and the reservation does not expire while the part runs (a dead worker's calls stay
  held). Each reservation and settlement is journaled to ``DIR/paid.jsonl`` as in one
  process (one line per write, appended), so a resumed eval counts what every process of
  the earlier parts spent, calls in flight at a kill at their worst case.
* **One call cache.** ``DIR/calls.sqlite`` is SQLite in WAL mode with a 30 s busy timeout
  (:func:`colm_graph.core.sqlite.thread_connection`): safe for the workers' readers and
  writers at once. An item's graphs share a process, so identical calls (the same prompt to
  the same model) still go one at a time on one event loop; a sweep's values are dealt one
  after another (a value once every pair of the one before has ended), so later values are
  answered from the cache.

Workers are plain subprocesses (``python -m colm_graph.evaluation.worker``), not
``multiprocessing`` children: nothing of the parent's ``__main__`` is imported again, and a
worker imports only what the eval needs (never torch unless a pool entry loads a local
model). Their job is JSON: the graphs' and the pool's settings (a worker rebuilds both),
the cache file, the cap, its share of the concurrency; then the pairs, on demand. Messages
are length-prefixed JSON frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import struct
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
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


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes from ``stream`` (fewer at its end), short reads of a raw pipe joined."""
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def read_frame_from(stream: BinaryIO) -> dict[str, Any] | None:
    """The next frame's message from a blocking stream (buffered or raw); ``None`` at its
    end."""
    head = _read_exactly(stream, _HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(head)
    data = _read_exactly(stream, size)
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


async def run_workers(job: Mapping[str, Any], shares: Sequence[int], dealer: Any,
                      local: Awaitable[None], deliver: Callable[[dict[str, Any]], None]
                      ) -> tuple[list[str], list[str]]:
    """Run ``local`` (this process's own share of the pairs, drawing from ``dealer``) while
    one worker process per entry of ``shares`` (its concurrency) starts and asks ``dealer``
    for pairs; hand each finished pair's message (``{"row": ..., "samples": ...}``) to
    ``deliver`` as it comes, and wait for them all (``dealer``: the
    :class:`~colm_graph.evaluation.runner.Dealer`, not imported here: runner imports this
    module). Returns one phrase per worker that died
    with pairs it had taken unfinished (none: every pair done), and one per worker that
    died without (its pairs all done elsewhere or by it). Whatever happens here (an error,
    a cancellation), no worker outlives the call."""
    from dataclasses import asdict

    procs: dict[int, asyncio.subprocess.Process] = {}
    env = _env()
    n = len(shares)
    dealt = [0] * n  # pairs dealt to each worker
    stopped = [False] * n  # stopped by us: never dealt a pair when there were none left

    async def serve(i: int, share: int) -> tuple[str | None, str | None]:
        proc = await asyncio.create_subprocess_exec(  # a session of its own: Ctrl-C is the
            sys.executable, "-m", WORKER, stdin=asyncio.subprocess.PIPE,  # parent's to handle
            stdout=asyncio.subprocess.PIPE, env=env, start_new_session=True)
        procs[i] = proc
        stdin, stdout = proc.stdin, proc.stdout
        assert stdin is not None and stdout is not None
        taken: dict[tuple[str, str], Any] = {}  # dealt to it, no row back yet
        answering: asyncio.Task[None] | None = None

        def send(message: Mapping[str, Any]) -> bool:
            try:
                stdin.write(frame(message))
            except (BrokenPipeError, ConnectionResetError, RuntimeError):
                return False
            return True

        async def answer(want: int) -> None:
            batch = await dealer.take(want, i + 1)
            for entry, item in batch:  # taken from here on, whether it arrives or not
                taken[(entry.label, item.id)] = entry
            dealt[i] += len(batch)
            items = {it.id: asdict(it) for _, it in batch}
            if send({"pairs": [[e.label, it.id] for e, it in batch],
                     "items": list(items.values())}):
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    await stdin.drain()

        send({**job, "worker": i + 1, "workers": n + 1, "concurrency": share})
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await stdin.drain()
        finished, fatal = False, None
        try:
            while True:
                try:
                    message = await read_frame(stdout)
                except (asyncio.IncompleteReadError, ValueError):  # the end, or a torn frame
                    break
                if "row" in message:
                    row = json.loads(message["row"])
                    entry = taken.pop((row["graph"], row["id"]), None)
                    deliver(message)
                    if entry is not None:
                        dealer.ended(entry)
                elif "want" in message:
                    answering = asyncio.ensure_future(answer(int(message["want"])))
                elif "fatal" in message:
                    fatal = str(message["fatal"])
                elif message.get("done"):
                    finished = True
        finally:
            if answering is not None and not answering.done():
                answering.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await answering
            for entry in taken.values():  # not dealt again: --resume does them
                dealer.ended(entry)
            dealer.release(i + 1)  # what was kept for it and never taken: for the others
        code = await proc.wait()
        if stopped[i] or (finished and code == 0 and not taken):
            return None, None
        phrase = (f"worker {i + 1} of {n} (pid {proc.pid}) {_how(code, fatal)} with"
                  f" {len(taken)} of the {dealt[i]} (graph, item) pairs it had taken unfinished")
        return (phrase, None) if taken else (None, phrase)

    async def mine() -> tuple[None, None]:
        await local
        # every pair is dealt: a worker still starting, never dealt one, is not waited for
        for i, proc in procs.items():
            if dealt[i] == 0 and proc.returncode is None:
                stopped[i] = True
                proc.kill()
        return None, None

    serving: list[asyncio.Future[tuple[str | None, str | None]]] = []
    try:
        serving = [asyncio.ensure_future(serve(i, share)) for i, share in enumerate(shares)]
        await asyncio.sleep(0)  # the workers' processes are asked for before the local run
        outcomes = await asyncio.gather(mine(), *serving)
    finally:
        for task in serving:
            task.cancel()
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            if proc.stdin is not None:
                proc.stdin.close()
    return [f for f, _ in outcomes if f], [d for _, d in outcomes if d]
