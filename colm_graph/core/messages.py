"""Chat messages in, protocol input out; protocol result in, reply text out. Shared by the
chat-model wrapper and the OpenAI-compatible server so both read conversations the same way.

One size limit holds for every way a question comes in (``colm-graph run``, eval datasets,
the chat model, the tool, ``colm-graph serve``): :data:`MAX_QUESTION_CHARS` characters of
question text as the graph receives it (for a conversation, the last user message with the
earlier messages as its context), checked by :func:`check_question` with one message."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage

from colm_graph.core.images import check_image_url
from colm_graph.errors import ColmGraphError, ConfigError

__all__ = ["MAX_QUESTION_CHARS", "Conversation", "Turn", "check_question", "messages_to_input",
           "question_too_long", "reply_response", "result_text", "tool_calls_text"]

MAX_QUESTION_CHARS = 20_000
"""Most characters a question may have (a conversation: with its context)."""

_WHO = {"system": "Instructions", "human": "User", "ai": "Assistant", "tool": "Tool result"}


def question_too_long(where: str, size: int, *, at_least: bool = False) -> ConfigError:
    """The one error for a question over :data:`MAX_QUESTION_CHARS`."""
    return ConfigError(f"{where}: {'at least ' if at_least else ''}{size} characters,"
                       f" expected at most {MAX_QUESTION_CHARS}")


def check_question(question: Any, where: str = "question") -> str:
    """``question`` stripped; a :class:`ConfigError` naming ``where`` when it is not a string,
    is empty or has more than :data:`MAX_QUESTION_CHARS` characters."""
    if not isinstance(question, str):
        raise ConfigError(f"{where}: expected a question string, got"
                          f" {type(question).__name__}")
    text = question.strip()
    if not text:
        raise ConfigError(f"{where}: expected a non-empty question")
    if len(text) > MAX_QUESTION_CHARS:
        raise question_too_long(where, len(text))
    return text


@dataclass(frozen=True)
class Turn:
    """One message as a question is built from it: its kind (``system``, ``human``, ``ai``,
    ``tool``, ...), its text and its images (``image_url`` blocks)."""

    kind: str
    text: str
    images: tuple[dict[str, Any], ...] = ()


class Conversation:
    """Builds the protocol input from turns fed one at a time, and stops as soon as the
    question is sure to be too long (a huge conversation is never read to its end): once
    the context before a user message passes the limit, the last user message (this one or
    a later one) has at least that much context."""

    def __init__(self, where: str = "messages") -> None:
        self.where = where
        self.context: list[str] = []  # the lines before the latest user message
        self.size = 0  # len("\n".join(self.context))
        self.pending: list[str] = []  # lines after it (context only if a user message follows)
        self.latest: Turn | None = None
        self.count = 0

    def add(self, turn: Turn) -> None:
        self.count += 1
        if turn.kind != "human":
            text = turn.text.strip()
            if text:
                self.pending.append(f"{_WHO.get(turn.kind, turn.kind)}: {text}")
            return
        if self.latest is not None:
            text = self.latest.text.strip()
            lines = ([f"User: {text}"] if text else []) + self.pending
        else:
            lines = self.pending
        for line in lines:
            self.size += len(line) + (1 if self.context else 0)
            self.context.append(line)
        self.pending = []
        self.latest = turn
        if self.size > MAX_QUESTION_CHARS:
            raise question_too_long(self.where, self.size, at_least=True)

    def result(self, trailing: bool = False) -> dict[str, Any]:
        """``{"question": ..., "images"?: [...]}`` for the turns added; ``trailing``: the
        turns after the last user message (an agent's tool calls and their results) end
        the question."""
        if not self.count:
            raise ColmGraphError(f"{self.where}: expected at least one message")
        if self.latest is None:
            raise ColmGraphError(f"{self.where}: expected a user (human) message to answer")
        question, images = self.latest.text.strip(), list(self.latest.images)
        if not question and not images:
            raise ColmGraphError(f"{self.where}: the last user message is empty")
        if self.context:
            question = ("\n".join(self.context) + "\n\nUser: " + question).strip()
        if trailing and self.pending:
            question = question + "\n\n" + "\n".join(self.pending)
        if len(question) > MAX_QUESTION_CHARS:
            raise question_too_long(self.where, len(question))
        out: dict[str, Any] = {"question": question}
        if images:
            out["images"] = images
        return out


def _image_block(block: Mapping[str, Any], where: str, allow_hosts: Sequence[str],
                 flag: str) -> dict[str, Any] | None:
    """The ``image_url`` block for an image content block (OpenAI ``image_url`` with a URL
    string or ``{"url": ...}``, LangChain ``image`` with ``url``, ``base64`` or ``data``),
    its URL checked; ``None`` when the block is no image."""
    kind = block.get("type")
    if kind == "image_url":
        inner = block.get("image_url")
        if isinstance(inner, Mapping):
            url = check_image_url(inner.get("url"), f"{where}.image_url.url", allow_hosts,
                                  flag=flag)
            return {"type": "image_url", "image_url": {**inner, "url": url}}
        url = check_image_url(inner, f"{where}.image_url", allow_hosts, flag=flag)
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "image":  # LangChain standard blocks (v1, and v0.3 with source_type)
        data = block.get("base64") or (block.get("data") if block.get("source_type") ==
                                       "base64" else None)
        if data:
            mime = block.get("mime_type") or "image/png"
            url = check_image_url(f"data:{mime};base64,{data}", f"{where}.base64", flag=flag)
            return {"type": "image_url", "image_url": {"url": url}}
        url = check_image_url(block.get("url"), f"{where}.url", allow_hosts, flag=flag)
        return {"type": "image_url", "image_url": {"url": url}}
    return None


def _turn(kind: str, content: Any, where: str, allow_hosts: Sequence[str], flag: str) -> Turn:
    if isinstance(content, str):
        return Turn(kind, content)
    texts, images = [], []
    for j, block in enumerate(content or []):
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, Mapping):
            if block.get("type") == "text":
                texts.append(str(block.get("text", "")))
            else:
                image = _image_block(block, f"{where}.content[{j}]", allow_hosts, flag)
                if image is not None:
                    images.append(image)
    return Turn(kind, "\n".join(t for t in texts if t), tuple(images))


def tool_calls_text(calls: Sequence[Mapping[str, Any]]) -> str:
    """An assistant message's tool calls (``name``, ``args``) as the question's text shows
    them: ``called f({"x": 1})``, one per line."""
    import json

    return "\n".join(f"called {c['name']}({json.dumps(c.get('args') or {}, sort_keys=True)})"
                     for c in calls)


def messages_to_input(messages: Sequence[BaseMessage], *, allow_image_hosts: Iterable[str] = (),
                      flag: str = "allow_image_hosts", trailing: bool = False
                      ) -> dict[str, Any]:
    """Protocol input for a conversation: the last user message is the question; system
    messages and earlier turns come before it as context; images of the last user message
    go to vision-language clients. Every image must be a ``data:`` URL or an ``http(s)`` URL
    on one of ``allow_image_hosts`` (see :func:`~colm_graph.core.images.check_image_url`; ``flag``
    names that setting in the error), and the question with its context at most
    :data:`MAX_QUESTION_CHARS` characters. An assistant's tool calls are written as
    ``called name({...})`` and tool results as ``Tool result: ...``; ``trailing``: the turns
    after the last user message end the question (an agent turn, whose router and verifier
    must see the tools' results)."""
    hosts = list(allow_image_hosts)
    conversation = Conversation()
    for i, m in enumerate(messages):
        turn = _turn(m.type, m.content, f"messages[{i}]", hosts, flag)
        calls = tool_calls_text(getattr(m, "tool_calls", None) or []) if m.type == "ai" else ""
        if calls:
            turn = Turn(turn.kind, f"{turn.text}\n{calls}".strip(), turn.images)
        conversation.add(turn)
    return conversation.result(trailing)


def reply_response(state: Mapping[str, Any], *, latest: bool = False
                   ) -> Mapping[str, Any] | None:
    """The response that carries a finished run's output answer (the latest such);
    ``latest``: when none does, the run's last response (an agent turn replies with what the
    model wrote, even when it did not check out)."""
    from colm_graph.core.answers import answers_match

    answer = state.get("answer")
    kind = str(state.get("answer_type") or "auto")
    responses = state.get("responses", [])
    for r in reversed(responses):
        if answer is not None and answers_match(r.get("answer"), answer, kind=kind):
            return r
    return responses[-1] if latest and responses else None


def result_text(state: Mapping[str, Any]) -> str:
    """The reply for a finished run: the full response that carries the output answer (it
    ends with its ``Answer:`` line), else the bare answer, else an explicit no-answer."""
    r = reply_response(state)
    if r is not None:
        return str(r["text"])
    answer = state.get("answer")
    return f"Answer: {answer}" if answer is not None else "Answer: cannot answer"
