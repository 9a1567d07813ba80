"""A run's reply as its model writes it: the tokens of the one model call that writes the
reply (made in a *reply node*, :mod:`colm_graph.spec.reply`), read from LangGraph's
``messages`` stream, scrubbed of secrets, for ``colm-graph serve``'s streams and
:class:`~colm_graph.integrations.chat_model.CollaborativeChatModel`'s ``astream``.

Only the first call made in a reply node streams; a later one (a retry after a cut-off
stream, the fallback model) does not, and what was sent is never taken back:
:meth:`ReplyTokens.rest` says what follows once the run is done, the part of the reply not
yet sent, or, when the reply does not go on from what was streamed, a blank line and the
whole reply. With secrets to scrub, a word is released once the whitespace after it has
arrived, so a key split across two deltas is never sent in part.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Collection, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.runnables import RunnableConfig

from colm_graph.core.secrets import scrub

__all__ = ["ReplyTokens", "deltas", "cancel_and_wait", "stream_graph"]

_WS = re.compile(r"\s")


class ReplyTokens:
    """The tokens of one run's reply call as they arrive, scrubbed of ``secrets``; wakes
    the request's stream when there is something to send."""

    def __init__(self, secrets: Sequence[str] = ()) -> None:
        self.secrets = list(secrets)
        self.call: str | None = None
        self.restarted = False
        self._raw = ""
        self._released = 0  # characters of _raw handed out (scrubbed)
        self._ready: list[str] = []
        self.sent = ""
        self.changed = asyncio.Event()

    @property
    def live(self) -> bool:
        """Some of the reply was streamed as it was written."""
        return bool(self.sent or self._ready)

    def feed(self, call: str, text: str) -> None:
        """A delta of the call ``call`` (a message id); a later call's are not streamed."""
        if self.call is None:
            self.call = call
        elif call != self.call:
            self.restarted = True
            return
        if not text:
            return
        self._raw += text
        cut = len(self._raw)
        if self.secrets:  # only whole words: a secret is never split by the cut
            last = max((m.start() for m in _WS.finditer(self._raw, self._released)),
                       default=-1)
            cut = last + 1 if last >= 0 else self._released
        if cut > self._released:
            self._ready.append(scrub(self._raw[self._released:cut], self.secrets)
                               if self.secrets else self._raw[self._released:cut])
            self._released = cut
            self.changed.set()

    def message(self, chunk: tuple[Any, Mapping[str, Any]], nodes: Collection[str]) -> None:
        """Feed one item of LangGraph's ``messages`` stream when it comes from ``nodes``."""
        message, meta = chunk
        node = meta.get("colm_node") or meta.get("langgraph_node")
        if node not in nodes or not isinstance(message, AIMessage):
            return
        if isinstance(message, AIMessageChunk) or message.id != self.call:
            self.feed(str(message.id), message.text)

    def take(self) -> str:
        """What is ready to send (and is now counted as sent)."""
        self.changed.clear()
        out = "".join(self._ready)
        self._ready.clear()
        self.sent += out
        return out

    def rest(self, reply: str) -> tuple[str, bool]:
        """What to send after the run for its (scrubbed) ``reply``, and whether it is a
        replacement of what was streamed rather than its continuation (what was ready but
        not sent is in either)."""
        self._ready.clear()
        if reply.startswith(self.sent):
            return reply[len(self.sent):], False
        return "\n\n" + reply, True


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved: a failure after the cancel is not logged as lost


async def cancel_and_wait(work: asyncio.Future[Any]) -> None:
    """Cancel ``work`` once and wait for it to end. A cancellation of the caller meanwhile
    is not passed on: LangGraph's clean-up of a cancelled run (cancelling its node tasks,
    which closes their model streams) must not itself be cancelled, and anyio's cancel
    scopes (Starlette's, when a streaming client leaves) cancel the waiting task again and
    again, which ``asyncio.gather`` would forward to the run each time."""
    if work.done():
        return
    work.cancel()
    work.add_done_callback(_retrieve)
    await asyncio.wait({work})


async def stream_graph(graph: Any, inputs: Mapping[str, Any], config: RunnableConfig,
                       nodes: Collection[str], tokens: ReplyTokens) -> Any:
    """Run ``graph`` and return its final state, feeding ``tokens`` with the deltas of
    the model calls made in ``nodes``."""
    state = None
    async for mode, chunk in graph.astream(inputs, config, stream_mode=["messages", "values"]):
        if mode == "values":
            state = chunk
        else:
            tokens.message(chunk, nodes)
    return state


async def deltas(work: asyncio.Future[Any], tokens: ReplyTokens | None,
                 every_s: float | None = None) -> AsyncGenerator[str, None]:
    """The reply's text as ``tokens`` gets it while ``work`` runs, and ``""`` after each
    ``every_s`` without any (a tick for keep-alives); ends when ``work`` is done (its
    result is not read here)."""
    woken: asyncio.Future[Any] | None = None
    try:
        while not work.done():
            waits: set[asyncio.Future[Any]] = {work}
            if tokens is not None:
                woken = asyncio.ensure_future(tokens.changed.wait())
                waits.add(woken)
            done, _ = await asyncio.wait(waits, timeout=every_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            if woken is not None:
                woken.cancel()
            text = tokens.take() if tokens is not None else ""
            if text or not done:
                yield text
    finally:
        if woken is not None:
            woken.cancel()
