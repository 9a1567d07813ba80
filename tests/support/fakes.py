"""Scripted fake chat models and embeddings for protocol tests.

``ScriptedChatModel`` is a real LangChain ``BaseChatModel`` whose replies come from a
function of the prompt; it reports usage metadata, can sleep to simulate latency, and
records every call (prompt text, start and end times) so tests can check what each node
sent and whether calls overlapped.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr


def prompt_text(messages: list[BaseMessage]) -> str:
    return "\n".join(m.text for m in messages)


class ScriptedChatModel(BaseChatModel):
    """Replies with ``script(prompt_text) -> str`` (or a fixed ``reply``)."""

    reply: str = "Answer: 1"
    script: Callable[[str], str] | None = None
    latency_s: float = 0.0
    input_tokens: int = 10
    output_tokens: int = 5
    report_usage: bool = True
    _calls: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    @property
    def calls(self) -> list[dict[str, Any]]:
        return list(self._calls)

    @property
    def prompts(self) -> list[str]:
        return [c["prompt"] for c in self._calls]

    def _answer(self, messages: list[BaseMessage], start: float, end: float) -> ChatResult:
        prompt = prompt_text(messages)
        text = self.script(prompt) if self.script else self.reply
        with self._lock:
            self._calls.append({"prompt": prompt, "start": start, "end": end, "reply": text})
        usage = ({"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                  "total_tokens": self.input_tokens + self.output_tokens}
                 if self.report_usage else None)
        msg = AIMessage(content=text, usage_metadata=usage)  # type: ignore[arg-type]
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        start = time.perf_counter()
        if self.latency_s:
            time.sleep(self.latency_s)
        return self._answer(messages, start, time.perf_counter())

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        start = time.perf_counter()
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return self._answer(messages, start, time.perf_counter())


def intervals_overlap(calls: list[dict[str, Any]]) -> bool:
    """True when every pair of the given calls overlapped in time."""
    return all(a["start"] < b["end"] and b["start"] < a["end"]
               for i, a in enumerate(calls) for b in calls[i + 1:])


class BagOfWordsEmbeddings(Embeddings):
    """Deterministic embeddings over a fixed vocabulary (word counts)."""

    def __init__(self, vocabulary: list[str]) -> None:
        self.vocabulary = vocabulary

    def _vec(self, text: str) -> list[float]:
        words = re.findall(r"[a-z]+", text.lower())
        return [float(sum(w.startswith(v) for w in words)) for v in self.vocabulary]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)
