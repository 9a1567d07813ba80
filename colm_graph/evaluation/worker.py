"""One worker process of an eval on several cores (``python -m colm_graph.evaluation.worker``,
started by :mod:`colm_graph.evaluation.shards`, which says how the parts fit together).

It reads its job (one frame on stdin), rebuilds the pool and the graphs from their
settings, and runs pairs with :func:`colm_graph.evaluation.runner.run_fed` on its own event
loop: whenever fewer than its share of the concurrency are in flight it asks the parent for
more (``{"want": n}`` on its stdout; the answer, whole items, comes on its stdin, none when
all are dealt), and it sends each finished pair to the parent (one frame on its stdout); it
writes no result itself. Anything printed goes to stderr, never into the parent's channel. It
exits at once, without another message, when the parent is gone (its stdin at an end, or
another parent pid); Ctrl-C is left to the parent, which stops its workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from colm_graph.evaluation.shards import frame, read_frame_from

__all__ = ["ORPHANED", "main"]

ORPHANED = 3
"""Exit code of a worker whose parent went away."""


def _watch_parent() -> None:
    """Exit the process at once when it is given another parent (the parent killed)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(ORPHANED)

    threading.Thread(target=watch, name="colm-eval-parent-watch", daemon=True).start()


class _Inbox:
    """The parent's answers (batches of pairs), read from stdin by a thread of their own
    from the moment the job is read, so that the parent's end is seen at once, imports
    included; the process exits at once at that end (only the parent holds the pipe's
    write end: the parent is gone, or stopped this worker)."""

    def __init__(self, source: BinaryIO) -> None:
        self._lock = threading.Lock()
        self._early: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        threading.Thread(target=self._read, args=(source,), name="colm-eval-batches",
                         daemon=True).start()

    def _read(self, source: BinaryIO) -> None:
        while True:
            message = read_frame_from(source)
            if message is None:
                os._exit(ORPHANED)
            with self._lock:
                if self._loop is None or self._queue is None:
                    self._early.append(message)
                else:
                    self._loop.call_soon_threadsafe(self._queue.put_nowait, message)

    def attach(self) -> asyncio.Queue[dict[str, Any]]:
        """The answers as a queue of the running event loop."""
        with self._lock:
            self._queue = asyncio.Queue()
            for message in self._early:
                self._queue.put_nowait(message)
            self._early.clear()
            self._loop = asyncio.get_running_loop()
            return self._queue


async def _work(job: dict[str, Any], inbox: _Inbox, send: Callable[[dict[str, Any]], None],
                secrets: list[str]) -> None:
    from colm_graph.core.secrets import pool_secrets
    from colm_graph.evaluation.account import SharedEvalAccount
    from colm_graph.evaluation.datasets import Item
    from colm_graph.evaluation.runner import GraphEntry, run_fed
    from colm_graph.pool import ModelPool, ModelSpec
    from colm_graph.run.cache import SQLiteCallCache
    from colm_graph.run.spend import Cap
    from colm_graph.spec import load_graph

    spec = job["pool"]
    pool = ModelPool([ModelSpec.model_validate(m) for m in spec["models"]],
                     server=spec["server"], source=spec["source"])
    secrets += pool_secrets(pool)
    entries = [GraphEntry(**e) for e in job["entries"]]
    by_label = {e.label: e for e in entries}
    needed = set(job["labels"])
    graphs = {e.label: load_graph(e.spec, pool=pool, params=e.params, roles=e.roles)
              for e in entries if e.label in needed}
    cache = SQLiteCallCache(job["cache"]) if job["cache"] else None
    pool.warm_clients()  # before any item's deadline starts counting
    budget = job["budget"]
    account = SharedEvalAccount(Path(job["out"]), Cap(**budget["cap"]), part=budget["part"]) \
        if budget else None
    batches = inbox.attach()

    async def take(want: int) -> list[tuple[GraphEntry, Item]]:
        send({"want": want})
        answer = await batches.get()
        items = {d["id"]: Item(**{**d, "choices": None if d.get("choices") is None
                                  else tuple(d["choices"])}) for d in answer["items"]}
        return [(by_label[label], items[item]) for label, item in answer["pairs"]]

    try:
        await run_fed(take, graphs,
                      lambda row, samples, _: send({"row": row, "samples": samples}),
                      concurrency=job["concurrency"], account=account, cache=cache,
                      log_samples=job["log_samples"], secrets=secrets,
                      constraints=job.get("constraints"))
    finally:
        if account is not None:
            account.close()


def main(stdin: BinaryIO | None = None) -> int:
    """Run the job read from ``stdin`` (the process's own by default); the exit code."""
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, never into the channel
    with contextlib.suppress(ValueError):  # not the main thread: nothing to ignore
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    # unbuffered: the thread that reads the batches blocks in a read that holds no lock the
    # interpreter's shutdown waits for
    source = stdin if stdin is not None else os.fdopen(os.dup(0), "rb", buffering=0)
    job = read_frame_from(source)
    if job is None:  # the parent went away before sending it
        return ORPHANED
    inbox = _Inbox(source)
    _watch_parent()

    def send(message: dict[str, Any]) -> None:
        channel.write(frame(message))
        channel.flush()

    secrets: list[str] = []
    try:
        asyncio.run(_work(job, inbox, send, secrets))
        send({"done": True})
    except BrokenPipeError:  # the parent is gone
        return ORPHANED
    except BaseException as exc:  # said to the parent in one line, which reports it
        from colm_graph.core.secrets import scrub

        line = scrub(f"{type(exc).__name__}: {exc}", secrets).splitlines()
        with contextlib.suppress(OSError):
            send({"fatal": (line[0] if line else type(exc).__name__)[:500]})
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
