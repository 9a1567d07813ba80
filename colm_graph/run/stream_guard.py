"""Reading a paid call's stream with a hand on the tap: the reply's tokens are counted as
they arrive (an upper bound, :mod:`colm_graph.core.tokens`), and once they pass what the call
may write the client stops reading and closes the request, so a provider that ignores
``max_tokens`` cannot spend past the call's share of the budget. A stream that ends
without its finish (no ``finish_reason``: a proxy cut it, the connection dropped) is a
fault, :class:`IncompleteStream`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, closing
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk

from colm_graph.core.tokens import Counter

__all__ = ["IncompleteStream", "OutputGuard", "astream_guarded", "stream_guarded"]


class IncompleteStream(Exception):
    """A streamed reply that ended before its finish; ``partial`` is what arrived."""

    def __init__(self, partial: AIMessage | None, tokens: int) -> None:
        self.partial, self.tokens = partial, tokens
        super().__init__(f"the stream ended without its finish after {tokens} output"
                         " tokens (bound)" if tokens else
                         "the stream ended without its finish: no reply came (empty)")


def _piece(chunk: AIMessageChunk) -> str:
    """Every text a chunk carries that a provider bills as output."""
    parts = [chunk.content if isinstance(chunk.content, str) else str(chunk.content or "")]
    reasoning = chunk.additional_kwargs.get("reasoning_content")
    if isinstance(reasoning, str):
        parts.append(reasoning)
    for call in chunk.tool_call_chunks or []:
        parts.append(str(call.get("name") or "") + str(call.get("args") or ""))
    return "".join(parts)


class OutputGuard:
    """Counts a stream's output; :meth:`feed` says when to stop reading.

    ``stop_after`` is the most output tokens the call may be counted for (``None``: no
    limit). The exact count is only taken when the cheap bound (the last exact count plus
    the bytes since) could have passed the limit, so a long stream is not re-tokenised at
    every chunk."""

    def __init__(self, stop_after: int | None, count: Counter) -> None:
        self.stop_after, self.count = stop_after, count
        self.parts: list[str] = []
        self.size = self._checked_size = self._checked_tokens = 0
        self.finished = self.stopped = False
        self.abandoned = False
        """Set by a caller that stopped waiting (a deadline): reading stops at the next
        chunk, which closes the request."""

    def feed(self, chunk: AIMessageChunk) -> bool:
        if self.abandoned:
            return True
        if chunk.response_metadata.get("finish_reason"):
            self.finished = True
        piece = _piece(chunk)
        if not piece:
            return False
        self.parts.append(piece)
        self.size += len(piece.encode("utf-8", "replace"))
        if self.stop_after is None:
            return False
        if self._checked_tokens + (self.size - self._checked_size) <= self.stop_after:
            return False  # tokens <= bytes: cannot have passed the limit yet
        self._checked_tokens, self._checked_size = self.tokens(), self.size
        if self._checked_tokens > self.stop_after:
            self.stopped = True
        return self.stopped

    def tokens(self) -> int:
        """Output tokens received so far (upper bound)."""
        return self.count("".join(self.parts))


def _join(acc: AIMessageChunk | None, chunk: Any) -> AIMessageChunk:
    return chunk if acc is None else acc + chunk


def _message(acc: AIMessageChunk | None, guard: OutputGuard) -> AIMessage:
    if acc is None:
        raise IncompleteStream(None, 0)
    reply = AIMessage(content=acc.content, additional_kwargs=acc.additional_kwargs,
                      response_metadata=acc.response_metadata, id=acc.id,
                      tool_calls=acc.tool_calls, invalid_tool_calls=acc.invalid_tool_calls,
                      usage_metadata=acc.usage_metadata)
    if guard.stopped:
        reply.response_metadata["finish_reason"] = "length"
        reply.response_metadata["colm_stopped"] = guard.tokens()
        return reply
    if not guard.finished:
        raise IncompleteStream(reply, guard.tokens())
    return reply


def stream_guarded(stream: Iterator[Any], guard: OutputGuard) -> AIMessage:
    """The reply of a ``model.stream(...)`` iterator read under ``guard``."""
    acc: AIMessageChunk | None = None
    with closing(stream) as chunks:  # type: ignore[type-var]  # closes the HTTP response
        for chunk in chunks:
            acc = _join(acc, chunk)
            if guard.feed(chunk):
                break
    return _message(acc, guard)


async def astream_guarded(stream: AsyncIterator[Any], guard: OutputGuard) -> AIMessage:
    """Async :func:`stream_guarded` (the async generator is closed explicitly)."""
    acc: AIMessageChunk | None = None
    async with aclosing(stream) as chunks:  # type: ignore[type-var]
        async for chunk in chunks:
            acc = _join(acc, chunk)
            if guard.feed(chunk):
                break
    return _message(acc, guard)
