"""Client selectors: pick the top-k clients for a question by their specialisation.

One-method interface plus a registry, like the routers of RouteLLM: a selector has
``select(question, candidates, k, ask) -> Selection``. ``ask`` lets a selector consult a
model (the server) through the node that runs it, so the call lands in the ledger.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from colm_graph.core.prompts import data_block
from colm_graph.errors import ConfigError

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from colm_graph.core.prompts import PromptSet
    from colm_graph.pool import PoolEntry

__all__ = ["EmbeddingSelector", "LexicalSelector", "LLMSelector", "SELECTORS", "Selection",
           "Selector", "make_selector"]

Ask = Callable[[str, dict[str, object]], str]
"""``ask(prompt_name, values) -> reply text``: one model call made on the selector's behalf."""


@dataclass
class Selection:
    names: list[str]
    scores: dict[str, float] = field(default_factory=dict)
    note: str = ""


class Selector(Protocol):
    name: str

    def select(self, question: str, candidates: Sequence[PoolEntry], k: int,
               ask: Ask | None = None) -> Selection: ...


_STOP = frozenset("a an and are as at be by for from has how in is it its of on or that the "
                  "this to was what which who will with you your does do many much if".split())
_SYMBOLS = {"+": "arithmetic", "*": "arithmetic", "×": "arithmetic", "÷": "arithmetic",
            "/": "arithmetic", "%": "percent", "=": "equation"}
_WORD = re.compile(r"[a-z]+|[+*×÷/%=]")


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s"):
        if len(word) > 4 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _terms(text: str) -> list[str]:
    out = []
    for tok in _WORD.findall(text.lower().replace("_", " ")):
        tok = _SYMBOLS.get(tok, tok)
        if tok not in _STOP and len(tok) > 1:
            out.append(_stem(tok))
    return out


def _rank(scores: dict[str, float], order: Sequence[str], k: int) -> list[str]:
    """Top-k by score, ties in pool order."""
    return sorted(order, key=lambda n: (-scores[n], order.index(n)))[:k]


class LexicalSelector:
    """Overlap between the question's words and each client's domains and description,
    weighted by how rare a word is among the candidates (no model needed)."""

    name = "lexical"
    pure = True
    """Pure Python on the question and the pool's descriptions: runs without a thread."""

    def scores(self, question: str, candidates: Sequence[PoolEntry]) -> dict[str, float]:
        docs = {c.name: set(_terms(" ".join(c.domains) + " " + c.description)) for c in candidates}
        domain_terms = {c.name: set(_terms(" ".join(c.domains))) for c in candidates}
        n = len(candidates)
        query = _terms(question)
        scores = {}
        for name, doc in docs.items():
            s = 0.0
            for term in query:
                if term in doc:
                    df = sum(term in d for d in docs.values())
                    s += math.log(1 + n / df) * (2.0 if term in domain_terms[name] else 1.0)
            scores[name] = round(s, 6)
        return scores

    def select(self, question: str, candidates: Sequence[PoolEntry], k: int,
               ask: Ask | None = None) -> Selection:
        scores = self.scores(question, candidates)
        return Selection(_rank(scores, [c.name for c in candidates], k), scores)


class EmbeddingSelector:
    """Cosine similarity between the question and each client's profile, with any
    LangChain ``Embeddings``. Profile vectors are computed once per profile text."""

    name = "embedding"

    def __init__(self, embeddings: Embeddings) -> None:
        self.embeddings = embeddings
        self._cache: dict[str, list[float]] = {}

    def select(self, question: str, candidates: Sequence[PoolEntry], k: int,
               ask: Ask | None = None) -> Selection:
        missing = [c.profile() for c in candidates if c.profile() not in self._cache]
        if missing:
            for text, vec in zip(missing, self.embeddings.embed_documents(missing), strict=True):
                self._cache[text] = list(vec)
        q = self.embeddings.embed_query(question)
        scores = {c.name: round(cosine(q, self._cache[c.profile()]), 6) for c in candidates}
        return Selection(_rank(scores, [c.name for c in candidates], k), scores)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class LLMSelector:
    """The server reads the clients' descriptions and names the k best (what the CoLM
    authors' code does). Unknown or missing names are filled from the lexical ranking."""

    name = "llm"

    def __init__(self, prompts: PromptSet | None = None) -> None:
        self.prompts = prompts

    def select(self, question: str, candidates: Sequence[PoolEntry], k: int,
               ask: Ask | None = None) -> Selection:
        if ask is None:
            raise ConfigError("selector 'llm' needs a model to ask")
        listing = "\n".join(data_block("client", c.profile(), name=c.name) for c in candidates)
        reply = ask("select_clients", {"question": question, "clients": listing, "k": k})
        names = [c.name for c in candidates]
        picked: list[str] = []
        line = re.findall(r"clients?\s*:\s*(.+)", reply, flags=re.IGNORECASE)
        for raw in re.split(r"[,\s]+", line[-1] if line else ""):
            token = raw.strip(" .`'\"*")
            if token in names and token not in picked:
                picked.append(token)
        picked = picked[:k]
        note = ""
        if len(picked) < k:
            fill = LexicalSelector().select(question, candidates, len(candidates)).names
            picked += [n for n in fill if n not in picked][: k - len(picked)]
            note = "the server named fewer valid clients than asked; filled by lexical overlap"
        return Selection(picked, {n: float(k - i) for i, n in enumerate(picked)}, note)


SELECTORS: dict[str, Callable[..., Selector]] = {
    "lexical": lambda **_: LexicalSelector(),
    "embedding": lambda embeddings=None, **_: _embedding(embeddings),
    "llm": lambda **_: LLMSelector(),
}


def _embedding(embeddings: Embeddings | None) -> Selector:
    if embeddings is None:
        raise ConfigError("selector 'embedding' needs embeddings= (any LangChain Embeddings)")
    return EmbeddingSelector(embeddings)


def make_selector(selector: str | Selector, *, embeddings: Embeddings | None = None) -> Selector:
    """A selector from its registry name, or the object itself."""
    if not isinstance(selector, str):
        return selector
    if selector not in SELECTORS:
        raise ConfigError(f"selector: expected one of {', '.join(SELECTORS)}, got {selector!r}")
    return SELECTORS[selector](embeddings=embeddings)
