"""Prompt files (``prompts/*.md``) and the fences that mark untrusted text as data.

A prompt file holds a system part and a user part separated by a line ``---``; both use
``{name}`` placeholders (``{{`` for a literal brace). Untrusted text (drafts, guidance, the
question) is put inside XML-like elements by :func:`data_block`; :func:`fence` neutralises
any of our element tags inside it so a draft cannot close its fence and speak as the prompt.

The bundled prompts are written for small instruction-tuned models as well as large ones:
each answering prompt asks for brief reasoning and a last line ``Answer: <final value only>``
and repeats that rule as the last line of the user turn. :func:`clip_middle` caps the length
of a draft before it enters a paid prompt; :func:`fold_system` merges the system part into
the user turn for chat templates without a system role (pool option ``system_prompt: fold``).
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colm_graph.core.resources import bundled_dir
from colm_graph.errors import ColmGraphError

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from langchain_core.prompts import ChatPromptTemplate

__all__ = ["PromptSet", "load_prompts", "fence", "data_block", "read_blocks", "clip_middle",
           "fold_system"]

PLACEHOLDERS: dict[str, set[str]] = {
    "client_draft": {"client_name", "client_domains", "question"},
    "server_guide": {"question", "drafts", "round", "rounds", "previous_guidance",
                     "answers_so_far"},
    "client_revise": {"client_name", "client_domains", "question", "previous", "guidance"},
    "select_clients": {"question", "clients", "k"},
    "peer_revise": {"client_name", "client_domains", "question", "previous", "answers"},
    "planner": {"question"},
    "executor": {"question", "plan"},
    "aggregator": {"question", "answers"},
    "verifier": {"question", "candidate"},
    "difficulty": {"question"},
}
"""Prompt name -> placeholders it may use."""

DEFAULTS: dict[str, str] = {"previous_guidance": "", "answers_so_far": "(none: first round)"}
"""Values of placeholders a caller may leave out (the first round's)."""

PREFENCED = frozenset({"drafts", "clients", "answers", "previous_guidance"})
"""Values that are already sequences of fenced data elements."""

TAGS = ("question", "drafts", "draft", "guidance", "previous_answer", "clients", "client",
        "plan", "answers", "answer", "candidate", "previous_guidance", "answers_so_far")
_TAG_RE = re.compile(r"<(/?)\s*(" + "|".join(TAGS) + r")\b", re.IGNORECASE)


def fence(text: str) -> str:
    """Make ``text`` safe to put inside one of our data elements."""
    return _TAG_RE.sub(lambda m: "&lt;" + m.group(1) + m.group(2), text)


def data_block(tag: str, body: str, **attrs: str) -> str:
    """``<tag a="v">\\nbody\\n</tag>`` with ``body`` fenced and attribute values escaped."""
    attr = "".join(f' {k}="{html.escape(str(v), quote=True)}"' for k, v in attrs.items())
    return f"<{tag}{attr}>\n{fence(body)}\n</{tag}>"


def clip_middle(text: str, limit: int | None) -> str:
    """``text`` cut to at most ``limit`` characters, keeping its head and its tail (where a
    final answer sits) around a marker ``[... N characters omitted ...]``.

    A third of what is kept is the head, the rest the tail. ``limit`` ``None`` means no cap;
    a limit too small to hold the marker keeps the last ``limit`` characters only."""
    if limit is None or len(text) <= limit:
        return text
    if limit < 1:
        raise ValueError(f"limit must be a positive number of characters, got {limit}")
    marker = "\n[... {} characters omitted ...]\n"
    keep = limit - len(marker.format(len(text)))
    if keep < 2:
        return text[len(text) - limit:]
    head = keep // 3
    tail = keep - head
    return text[:head] + marker.format(len(text) - head - tail) + text[len(text) - tail:]


def _block_text(block: object) -> str | None:
    if isinstance(block, str):
        return block
    if isinstance(block, dict) and block.get("type") == "text":
        return str(block.get("text", ""))
    return None


def fold_system(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The same conversation with no system message: the text of every system message is
    put in front of the first human message (system text, a blank line, user text).

    A human message made of content blocks keeps every block (images included); the system
    text joins its first text block, or comes first as a text block of its own. Without a
    human message the system text becomes one, where the first system message was."""
    from langchain_core.messages import HumanMessage, SystemMessage

    systems = [m for m in messages if isinstance(m, SystemMessage)]
    if not systems:
        return list(messages)
    prefix = "\n\n".join(t for t in (m.text for m in systems) if t)
    rest = [m for m in messages if not isinstance(m, SystemMessage)]
    first = next((i for i, m in enumerate(rest) if isinstance(m, HumanMessage)), None)
    if first is None:
        at = messages.index(systems[0])
        return [*rest[:at], HumanMessage(content=prefix), *rest[at:]] if prefix else rest
    if not prefix:
        return rest
    human = rest[first]
    content: str | list[str | dict[Any, Any]]
    if isinstance(human.content, str):
        content = f"{prefix}\n\n{human.content}" if human.content else prefix
    else:
        blocks = list(human.content)
        i = next((j for j, b in enumerate(blocks) if _block_text(b) is not None), None)
        if i is None:
            blocks.insert(0, {"type": "text", "text": prefix})
        else:
            block = blocks[i]
            old = _block_text(block) or ""
            text = f"{prefix}\n\n{old}" if old else prefix
            blocks[i] = {**block, "text": text} if isinstance(block, dict) else text
        content = blocks
    rest[first] = human.model_copy(update={"content": content})
    return rest


_ATTR = re.compile(r'(\w+)="([^"]*)"')


def read_blocks(text: str, tag: str) -> list[tuple[dict[str, str], str]]:
    """The ``(attributes, body)`` of every ``<tag ...>body</tag>`` element in ``text``."""
    pattern = re.compile(rf"<{tag}((?:\s+\w+=\"[^\"]*\")*)\s*>\n?(.*?)\n?</{tag}>", re.DOTALL)
    return [({k: html.unescape(v) for k, v in _ATTR.findall(m.group(1))}, m.group(2))
            for m in pattern.finditer(text)]


@dataclass(frozen=True)
class PromptSet:
    """The prompt templates a graph uses, by name."""

    templates: dict[str, ChatPromptTemplate]
    directory: Path
    _plain: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def messages(self, name: str, **values: object) -> list[BaseMessage]:
        """Format prompt ``name``; string values are fenced (see :func:`fence`) except those
        already built from :func:`data_block` elements (``drafts``, ``clients``). Placeholders
        of :data:`DEFAULTS` left out get their first-round value."""
        given = {**{k: v for k, v in DEFAULTS.items() if k in PLACEHOLDERS.get(name, ())},
                 **values}
        safe = {k: fence(v) if isinstance(v, str) and k not in PREFENCED else v
                for k, v in given.items()}
        plain = self._plain.get(name)
        if plain is None:
            plain = self._plain[name] = _plain_parts(self.templates[name])
        if not plain:  # not plain f-string messages: the template formats itself
            return self.templates[name].format_messages(**safe)
        return [cls(content=text.format(**safe)) for cls, text in plain]


def _plain_parts(template: ChatPromptTemplate) -> list[tuple[type[BaseMessage], str]]:
    """The (message class, f-string) of each part of ``template`` when every part is a
    plain system or human f-string template (what :func:`_parse` builds), else ``[]``.
    Formatting those with ``str.format`` gives what ``format_messages`` gives, without
    its per-call validation (0.072 vs 0.026 ms a prompt, fencing included, measured)."""
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_core.prompts import (
        HumanMessagePromptTemplate,
        PromptTemplate,
        SystemMessagePromptTemplate,
    )

    kinds: dict[type, type[BaseMessage]] = {SystemMessagePromptTemplate: SystemMessage,
                                            HumanMessagePromptTemplate: HumanMessage}
    out: list[tuple[type[BaseMessage], str]] = []
    for part in template.messages:
        kind = kinds.get(type(part))
        prompt = getattr(part, "prompt", None)
        if kind is None or type(prompt) is not PromptTemplate \
                or prompt.template_format != "f-string" or prompt.partial_variables:
            return []
        out.append((kind, prompt.template))
    return out


def _parse(path: Path, name: str) -> ChatPromptTemplate:
    from langchain_core.prompts import ChatPromptTemplate

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ColmGraphError(f"{path}: prompt file not found") from None
    parts = re.split(r"^---[ \t]*$", text, maxsplit=1, flags=re.MULTILINE)
    if len(parts) != 2:
        raise ColmGraphError(f"{path}: expected a system part and a user part separated by"
                             " a line '---'")
    system, user = (p.strip("\n") for p in parts)
    allowed = PLACEHOLDERS[name]
    for part in (system, user):
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(part) if f is not None}
        except ValueError as exc:
            raise ColmGraphError(f"{path}: bad placeholder syntax: {exc}"
                                 " (write {{ and }} for literal braces)") from None
        unknown = fields - allowed
        if unknown:
            raise ColmGraphError(f"{path}: unknown placeholder {{{sorted(unknown)[0]}}}"
                                 f" (expected some of: {', '.join(sorted(allowed))})")
    return ChatPromptTemplate.from_messages([("system", system), ("human", user)])


@lru_cache(maxsize=8)
def _load(directory: Path) -> PromptSet:
    return PromptSet({name: _parse(directory / f"{name}.md", name) for name in PLACEHOLDERS},
                     directory)


def load_prompts(directory: str | Path | None = None) -> PromptSet:
    """Load every prompt from ``directory`` (default: the bundled ``prompts/``)."""
    path = Path(directory) if directory is not None else bundled_dir("prompts")
    if not path.is_dir():
        raise ColmGraphError(f"{path}: prompts directory not found")
    return _load(path.resolve())
