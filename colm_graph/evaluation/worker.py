"""One worker process of an eval on several cores (``python -m colm_graph.evaluation.worker``,
started by :mod:`colm_graph.evaluation.shards`, which says how the parts fit together).

It reads its job (one frame on stdin), rebuilds the pool and the graphs from their
settings, runs its shard with :func:`colm_graph.evaluation.runner.run_pairs` on its own
event loop, and sends each finished pair to the parent (one frame on its stdout); it writes
no result itself. Anything printed goes to stderr, never into the parent's channel. It
exits at once, without another message, when the parent is gone (its stdin at an end, or
another parent pid); Ctrl-C is left to the parent, which stops its workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from colm_graph.evaluation.shards import frame, read_frame_from

__all__ = ["ORPHANED", "main"]

ORPHANED = 3
"""Exit code of a worker whose parent went away."""


def _watch_parent(fd: int) -> None:
    """Exit the process at once when the parent is gone: ``fd`` (the parent's only pipe to
    us, which it never writes to again) at its end, or this process given another parent."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if (ready and not os.read(fd, 1 << 16)) or os.getppid() != parent:
                os._exit(ORPHANED)

    threading.Thread(target=watch, name="colm-eval-parent-watch", daemon=True).start()


async def _work(job: dict[str, Any], send: Callable[[dict[str, Any]], None],
                secrets: list[str]) -> None:
    from colm_graph.core.secrets import pool_secrets
    from colm_graph.evaluation.account import SharedEvalAccount
    from colm_graph.evaluation.datasets import Item
    from colm_graph.evaluation.runner import GraphEntry, run_pairs
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
    items = {d["id"]: Item(**{**d, "choices": None if d.get("choices") is None
                              else tuple(d["choices"])}) for d in job["items"]}
    todo = [(by_label[label], items[item]) for label, item in job["pairs"]]
    needed = {e.label for e, _ in todo}
    graphs = {e.label: load_graph(e.spec, pool=pool, params=e.params, roles=e.roles)
              for e in entries if e.label in needed}
    cache = SQLiteCallCache(job["cache"]) if job["cache"] else None
    budget = job["budget"]
    account = SharedEvalAccount(Path(job["out"]), Cap(**budget["cap"]), part=budget["part"]) \
        if budget else None
    try:
        await run_pairs(todo, entries, graphs,
                        lambda row, samples, _: send({"row": row, "samples": samples}),
                        concurrency=job["concurrency"], account=account, cache=cache,
                        log_samples=job["log_samples"], secrets=secrets)
    finally:
        if account is not None:
            account.close()


def main(stdin: BinaryIO | None = None) -> int:
    """Run the job read from ``stdin`` (the process's own by default); the exit code."""
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, never into the channel
    with contextlib.suppress(ValueError):  # not the main thread: nothing to ignore
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    source = stdin if stdin is not None else sys.stdin.buffer
    job = read_frame_from(source)
    if job is None:  # the parent went away before sending it
        return ORPHANED
    _watch_parent(source.fileno())

    def send(message: dict[str, Any]) -> None:
        channel.write(frame(message))
        channel.flush()

    secrets: list[str] = []
    try:
        asyncio.run(_work(job, send, secrets))
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
