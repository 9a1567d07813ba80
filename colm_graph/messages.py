"""Chat messages in, protocol input out; protocol result in, reply text out. Shared by the
chat-model wrapper and the OpenAI-compatible server so both read conversations the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from .errors import ColmGraphError

__all__ = ["messages_to_input", "result_text"]


def _text_and_images(content: Any) -> tuple[str, list[Any]]:
    if isinstance(content, str):
        return content, []
    texts, images = [], []
    for block in content or []:
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, Mapping):
            kind = block.get("type")
            if kind == "text":
                texts.append(str(block.get("text", "")))
            elif kind == "image_url":
                images.append(dict(block))
            elif kind == "image":  # LangChain v1 standard block
                if block.get("url"):
                    images.append({"type": "image_url", "image_url": {"url": block["url"]}})
                elif block.get("base64"):
                    mime = block.get("mime_type", "image/png")
                    images.append({"type": "image_url", "image_url": {
                        "url": f"data:{mime};base64,{block['base64']}"}})
    return "\n".join(t for t in texts if t), images


def messages_to_input(messages: Sequence[BaseMessage]) -> dict[str, Any]:
    """Protocol input for a conversation: the last user message is the question; system
    messages and earlier turns come before it as context; images of the last user message
    go to vision-language clients."""
    if not messages:
        raise ColmGraphError("messages: expected at least one message")
    last = max((i for i, m in enumerate(messages) if m.type == "human"), default=None)
    if last is None:
        raise ColmGraphError("messages: expected a user (human) message to answer")
    question, images = _text_and_images(messages[last].content)
    context = []
    for m in messages[:last]:
        text, _ = _text_and_images(m.content)
        if text.strip():
            who = {"system": "Instructions", "human": "User", "ai": "Assistant"}.get(m.type,
                                                                                     m.type)
            context.append(f"{who}: {text.strip()}")
    if not question.strip() and not images:
        raise ColmGraphError("messages: the last user message is empty")
    if context:
        question = "\n".join(context) + "\n\nUser: " + question.strip()
    out: dict[str, Any] = {"question": question.strip()}
    if images:
        out["images"] = images
    return out


def result_text(state: Mapping[str, Any]) -> str:
    """The reply for a finished run: the full response that carries the output answer (it
    ends with its ``Answer:`` line), else the bare answer, else an explicit no-answer."""
    from .answers import answers_match

    answer = state.get("answer")
    for r in reversed(state.get("responses", [])):
        if answer is not None and answers_match(r.get("answer"), answer):
            return str(r["text"])
    return f"Answer: {answer}" if answer is not None else "Answer: cannot answer"
