"""Micro-batching for a Hugging Face text-generation pipeline.

A :class:`PipelineBatcher` owns one pipeline and one worker thread. Callers (threads, or
asyncio tasks through :meth:`PipelineBatcher.agenerate`) submit one prompt each; the worker
takes the oldest waiting request, collects the requests that arrive within ``wait_s`` of it
(or until ``max_batch`` are waiting), and runs them as ONE pipeline call with
``batch_size=len(prompts)``. The window opens when the oldest request arrives or, if a batch
is running then, when that batch ends; so a lone request on an idle worker waits at most
``wait_s``, and callers that come straight back after a batch can join the next one.

Each caller gets its own text; an exception raised by the batch is delivered to every caller
in it. Requests only share a batch when their extra pipeline keyword arguments are equal; the
others wait for a later batch, in arrival order.

``max_batch=1`` disables batching (one call per request, in arrival order, no waiting). The
worker is the only thread that calls the pipeline, so the pipeline never runs concurrently
with itself. It starts on the first request and exits after ``idle_exit_s`` without any (or
on :meth:`PipelineBatcher.stop`): a thread that has run torch keeps its own OpenMP team, and
an idle team was measured to slow torch on other threads (about 1.6x on 2 cores).

Batched generation with a decoder-only model needs left padding and a pad token
(:func:`prepare_tokenizer`). With left padding, ``generate`` derives ``position_ids`` from
the attention mask (transformers 5: ``GenerationMixin._prepare_position_ids_for_generation``),
so greedy output is the same batched or alone, up to floating-point ties.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PipelineBatcher", "prepare_tokenizer"]


def prepare_tokenizer(tokenizer: Any) -> None:
    """Set left padding and, when missing, a pad token (the EOS token) for batched generation."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token


@dataclass
class _Request:
    prompt: str
    kwargs: dict[str, Any]
    key: str
    future: Future[str] = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


class PipelineBatcher:
    """Serialises and batches calls to one text-generation pipeline.

    Args:
        pipeline: A ``transformers`` text-generation pipeline (called as
            ``pipeline(prompts, batch_size=n, **kwargs)``; it must return, per prompt, a list
            of ``{"generated_text": str}``).
        max_batch: Most prompts per pipeline call; 1 disables batching.
        wait_s: How long the oldest waiting request waits for company before its batch runs.
        idle_exit_s: The worker thread exits after this long without requests (a later
            request starts a new one).

    Attributes:
        calls: Pipeline calls made so far.
        requests: Requests served so far (successfully or not).
        largest_batch: Size of the largest batch so far.
        busy_s: Seconds spent in pipeline calls so far.
        before_call: Optional hook run by the worker with the batch's prompts just before the
            pipeline call; an exception it raises fails the batch (for tests and tracing).
    """

    def __init__(self, pipeline: Any, *, max_batch: int = 8, wait_s: float = 0.005,
                 idle_exit_s: float = 2.0) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if wait_s < 0:
            raise ValueError(f"wait_s must not be negative, got {wait_s}")
        self.pipeline = pipeline
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.idle_exit_s = idle_exit_s
        self.calls = 0
        self.requests = 0
        self.largest_batch = 0
        self.busy_s = 0.0
        self.before_call: Callable[[list[str]], None] | None = None
        self._queue: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._stopping = False

    # -- callers ------------------------------------------------------------------
    def submit(self, prompt: str, **pipeline_kwargs: Any) -> Future[str]:
        """Queue one prompt; the future resolves to its generated text (or its batch's error)."""
        key = repr(sorted(pipeline_kwargs.items()))
        req = _Request(prompt, dict(pipeline_kwargs), key)
        with self._cond:
            self._queue.append(req)
            self._stopping = False
            if self._worker is None:
                self._start_worker()
            self._cond.notify_all()
        return req.future

    def generate(self, prompt: str, **pipeline_kwargs: Any) -> str:
        """Generate for one prompt, blocking the calling thread."""
        return self.submit(prompt, **pipeline_kwargs).result()

    async def agenerate(self, prompt: str, **pipeline_kwargs: Any) -> str:
        """Generate for one prompt without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(prompt, **pipeline_kwargs))

    def stop(self, timeout: float | None = None) -> None:
        """Let the worker thread exit once no request is waiting, and wait up to ``timeout``
        seconds for it (None: until it has). A later request starts a new worker."""
        with self._cond:
            self._stopping = True
            worker = self._worker
            self._cond.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    # -- worker -------------------------------------------------------------------
    def _start_worker(self) -> None:  # called with self._cond held
        self._worker = threading.Thread(target=self._run, daemon=True,
                                        name=f"hf-batcher-{id(self):x}")
        self._worker.start()

    def _run(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                self._execute(batch)
        except BaseException:  # keep serving the queue after an abnormal exit
            with self._cond:
                self._worker = None
                if self._queue:
                    self._start_worker()
            raise

    def _next_batch(self) -> list[_Request] | None:
        """Wait for the oldest request's window to close (or a full batch); None when idle."""
        with self._cond:
            free_since = time.monotonic()
            idle_until = free_since + self.idle_exit_s
            while not self._queue:
                left = idle_until - time.monotonic()
                if left <= 0 or self._stopping:
                    self._worker = None
                    return None
                self._cond.wait(left)
            first = self._queue[0]
            # The window opens when the oldest request arrives or, if the worker was busy
            # then, when it is free: callers of the batch just served can join this one.
            deadline = max(first.arrived, free_since) + self.wait_s
            while self._count(first.key) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = [r for r in self._queue if r.key == first.key][: self.max_batch]
            for r in batch:
                self._queue.remove(r)
        return [r for r in batch if r.future.set_running_or_notify_cancel()]

    def _count(self, key: str) -> int:
        return sum(1 for r in self._queue if r.key == key)

    def _execute(self, batch: list[_Request]) -> None:
        if not batch:
            return
        prompts = [r.prompt for r in batch]
        self.calls += 1
        self.requests += len(batch)
        self.largest_batch = max(self.largest_batch, len(batch))
        start = time.perf_counter()
        try:
            if self.before_call is not None:
                self.before_call(prompts)
            outputs = self.pipeline(prompts, batch_size=len(prompts), **batch[0].kwargs)
            texts = [_text(out) for out in outputs]
            if len(texts) != len(batch):
                raise RuntimeError(f"pipeline returned {len(texts)} results for"
                                   f" {len(batch)} prompts")
        except BaseException as exc:  # delivered to every caller of the batch
            self.busy_s += time.perf_counter() - start
            for r in batch:
                r.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.busy_s += time.perf_counter() - start
        for r, text in zip(batch, texts, strict=True):
            r.future.set_result(text)


def _text(output: Any) -> str:
    """The generated text of one pipeline result (the first when it holds several)."""
    if isinstance(output, list):
        output = output[0]
    return str(output["generated_text"])
