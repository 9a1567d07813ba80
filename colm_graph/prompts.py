"""Prompt files (``prompts/*.md``) and the fences that mark untrusted text as data.

A prompt file holds a system part and a user part separated by a line ``---``; both use
``{name}`` placeholders (``{{`` for a literal brace). Untrusted text (drafts, guidance, the
question) is put inside XML-like elements by :func:`data_block`; :func:`fence` neutralises
any of our element tags inside it so a draft cannot close its fence and speak as the prompt.
"""

from __future__ import annotations

import html
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ._resources import bundled_dir
from .errors import ColmGraphError

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from langchain_core.prompts import ChatPromptTemplate

__all__ = ["PromptSet", "load_prompts", "fence", "data_block", "read_blocks"]

PLACEHOLDERS: dict[str, set[str]] = {
    "client_draft": {"client_name", "client_domains", "question"},
    "server_guide": {"question", "drafts", "round", "rounds"},
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

PREFENCED = frozenset({"drafts", "clients", "answers"})
"""Values that are already sequences of fenced data elements."""

TAGS = ("question", "drafts", "draft", "guidance", "previous_answer", "clients", "client",
        "plan", "answers", "answer", "candidate")
_TAG_RE = re.compile(r"<(/?)\s*(" + "|".join(TAGS) + r")\b", re.IGNORECASE)


def fence(text: str) -> str:
    """Make ``text`` safe to put inside one of our data elements."""
    return _TAG_RE.sub(lambda m: "&lt;" + m.group(1) + m.group(2), text)


def data_block(tag: str, body: str, **attrs: str) -> str:
    """``<tag a="v">\\nbody\\n</tag>`` with ``body`` fenced and attribute values escaped."""
    attr = "".join(f' {k}="{html.escape(str(v), quote=True)}"' for k, v in attrs.items())
    return f"<{tag}{attr}>\n{fence(body)}\n</{tag}>"


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

    def messages(self, name: str, **values: object) -> list[BaseMessage]:
        """Format prompt ``name``; string values are fenced (see :func:`fence`) except those
        already built from :func:`data_block` elements (``drafts``, ``clients``)."""
        safe = {k: fence(v) if isinstance(v, str) and k not in PREFENCED else v
                for k, v in values.items()}
        return self.templates[name].format_messages(**safe)


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
