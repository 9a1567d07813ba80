"""Server-Sent Events for ``colm-graph serve``: the reply's tokens as they arrive.

A streamed request whose graph has reply nodes (:mod:`colm_graph.spec.reply`: ``single``,
``route``, ``cascade``'s escalation, COPE's last stage, MoA's aggregator) runs with
LangGraph's ``messages`` stream mode, and the tokens of the first model call made in a reply
node are sent as content deltas while that call writes them
(:mod:`colm_graph.integrations.reply_stream`). Other graphs (and a cascade or COPE run that
stops before its answering stage) send ``: colm-graph: working`` comments while they work,
then the reply.

What was sent is never taken back. When the run ends, the rest of the reply follows: the
part not yet sent, or, when the reply does not go on from what was streamed (the streamed
call was cut off and another call or model answered), a blank line and the whole reply; the
last chunk's ``colm.stream`` says which (``{"live": true, "replaced": false}``).

An agent turn's reply (tools or a response format) is checked before it goes out, so it is
not streamed live: comments while the run works, then its content, then its tool calls as
OpenAI streams them (per call a delta with its ``index``, ``id``, ``type`` and name, then
its arguments in pieces), and ``finish_reason`` ``tool_calls``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

from colm_graph.integrations.reply_stream import ReplyTokens, cancel_and_wait, deltas

__all__ = ["sse", "sse_reply", "tool_call_deltas"]


def sse(data: Mapping[str, Any] | str) -> str:
    """One SSE ``data:`` event (JSON unless a string)."""
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


def _pieces(text: str, words: int = 8) -> list[str]:
    """A reply cut into a few content deltas (whitespace kept)."""
    tokens = re.findall(r"\s*\S+|\s+", text)
    return ["".join(tokens[i:i + words]) for i in range(0, len(tokens), words)]


def tool_call_deltas(calls: Sequence[Mapping[str, Any]], size: int = 32
                     ) -> list[dict[str, Any]]:
    """OpenAI-format tool calls (``id``, ``type``, ``function.name``/``arguments``) as the
    deltas of a stream: per call (``index`` k) one with its id, type, name and empty
    arguments, then its arguments in pieces of ``size`` characters."""
    out: list[dict[str, Any]] = []
    for k, call in enumerate(calls):
        fn = call["function"]
        out.append({"tool_calls": [{"index": k, "id": call["id"],
                                    "type": call.get("type", "function"),
                                    "function": {"name": fn["name"], "arguments": ""}}]})
        args = str(fn.get("arguments") or "")
        out.extend({"tool_calls": [{"index": k, "function": {"arguments": args[i:i + size]}}]}
                   for i in range(0, len(args), size))
    return out


async def sse_reply(head: Mapping[str, Any], work: asyncio.Future[Any],
                    tokens: ReplyTokens | None, every_s: float, include_usage: bool,
                    error_event: Callable[[BaseException], Mapping[str, Any] | None]
                    ) -> AsyncIterator[str]:
    """The events of a streamed reply: a role chunk, the reply's tokens as ``tokens`` gets
    them (comments every ``every_s`` while nothing arrives), then the rest of the reply
    once ``work`` (a future of the reply dict: ``text``, ``usage``, ``colm``, and for an
    agent turn ``tool_calls`` and ``finish_reason``) is done, its tool calls, the finish
    chunk, the usage chunk with ``include_usage``, and ``[DONE]``. A failure of
    ``work`` that ``error_event`` turns into an OpenAI-shaped error ends the stream with
    it. Closing the generator (the client left) cancels ``work``."""
    head = {**head, "object": "chat.completion.chunk"}
    if include_usage:
        head = {**head, "usage": None}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                     "finish_reason": finish}]}

    try:
        yield sse(chunk({"role": "assistant", "content": ""}))
        async with aclosing(deltas(work, tokens, every_s)) as texts:
            async for text in texts:
                yield sse(chunk({"content": text})) if text else ": colm-graph: working\n\n"
        try:
            reply = work.result()
        except Exception as exc:
            event = error_event(exc)
            if event is None:
                raise
            yield sse(event)
            return
        rest, replaced = (tokens.rest(reply["text"]) if tokens is not None
                          else (reply["text"], False))
        for piece in _pieces(rest):
            yield sse(chunk({"content": piece}))
        calls = reply.get("tool_calls") or []
        for delta in tool_call_deltas(calls):
            yield sse(chunk(delta))
        colm = {**reply["colm"], "stream": {"live": tokens is not None and tokens.live,
                                            "replaced": replaced}}
        finish = reply.get("finish_reason") or ("tool_calls" if calls else "stop")
        yield sse({**chunk({}, finish), "colm": colm})
        if include_usage:
            yield sse({**head, "choices": [], "usage": reply["usage"]})
        yield sse("[DONE]")
    finally:
        await cancel_and_wait(work)
