"""Router scorers for the ``route`` variant: ``score(question, ask) -> float`` in [0, 1],
higher meaning the paid tier is more likely to help. One-method interface plus a registry,
like RouteLLM's routers; :func:`calibrate_threshold` picks the threshold that sends a target
share of a labelled set to the paid tier.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from colm_graph.errors import ColmGraphError, ConfigError
from colm_graph.routing.selectors import cosine

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

__all__ = ["Calibration", "EmbeddingKNNScorer", "HeuristicScorer", "LLMDifficultyScorer",
           "calibrate_scorer",
           "SCORERS", "Scorer", "calibrate_threshold", "load_labelled", "make_scorer"]

Ask = Callable[[str, dict[str, object]], str]


class Scorer(Protocol):
    name: str

    def score(self, question: str, ask: Ask | None = None) -> float | None:
        """Predicted benefit of the paid tier in [0, 1]; ``None``: unknown (the score node's
        ``unknown`` option decides)."""
        ...


_HARD_WORDS = re.compile(r"\b(prove|derive|explain why|justify|optimi[sz]e|integral|"
                         r"probability|system of|simultaneous|consecutive|remainder|"
                         r"prime|hypotenuse|interest|percent)\w*", re.IGNORECASE)


class HeuristicScorer:
    """Length, count of numbers and operations, and words that signal multi-step work."""

    name = "heuristic"
    pure = True
    """Pure Python on the question: runs without a thread."""

    def score(self, question: str, ask: Ask | None = None) -> float:
        words = len(question.split())
        numbers = len(re.findall(r"\d+(?:\.\d+)?", question))
        steps = len(re.findall(r"\b(then|after|before|each|total|per)\b", question, re.I))
        hard = len(_HARD_WORDS.findall(question))
        raw = 0.02 * words + 0.08 * numbers + 0.12 * steps + 0.25 * hard
        return round(1 - math.exp(-raw), 6)


@dataclass
class Labelled:
    question: str
    label: float
    """1.0: the paid tier was needed (or better); 0.0: the local tier sufficed."""


def load_labelled(path: str | Path) -> list[Labelled]:
    """Read a labelled JSONL file: ``{"question": str, "label": 0|1}`` per line
    (``paid_better: bool`` is accepted for ``label``)."""
    rows = []
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ColmGraphError(f"{path}: labelled file is not UTF-8 text") from None
    except OSError as exc:
        raise ColmGraphError(f"{path}: cannot read labelled file: {exc.strerror}") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ColmGraphError(f"{path}:{i}: invalid JSON: {exc.msg}") from None
        except (RecursionError, ValueError) as exc:
            raise ColmGraphError(f"{path}:{i}: cannot read this line: {exc}"[:300]) from None
        if not isinstance(row, dict) or not isinstance(row.get("question"), str):
            raise ColmGraphError(f"{path}:{i}: expected an object with a 'question' string")
        label = row.get("label", row.get("paid_better"))
        if isinstance(label, bool):
            label = float(label)
        if not isinstance(label, int | float) or not 0 <= label <= 1:
            raise ColmGraphError(f"{path}:{i}: 'label' must be 0 or 1 (or 'paid_better'"
                                 f" true/false), got {label!r}")
        rows.append(Labelled(row["question"], float(label)))
    if not rows:
        raise ColmGraphError(f"{path}: no labelled examples")
    return rows


class EmbeddingKNNScorer:
    """Mean label of the k nearest labelled examples (cosine over any LangChain
    ``Embeddings``), weighted by similarity."""

    name = "embedding"

    def __init__(self, embeddings: Embeddings, examples: Sequence[Labelled], k: int = 5) -> None:
        if not examples:
            raise ConfigError("embedding scorer: needs labelled examples")
        self.embeddings, self.examples, self.k = embeddings, list(examples), k
        self._vectors = embeddings.embed_documents([e.question for e in self.examples])

    def score(self, question: str, ask: Ask | None = None) -> float:
        q = self.embeddings.embed_query(question)
        sims = sorted(((cosine(q, v), e.label) for v, e in zip(self._vectors, self.examples,
                                                               strict=True)), reverse=True)
        top = sims[: self.k]
        weight = sum(max(s, 0.0) for s, _ in top)
        if weight == 0:
            return sum(label for _, label in top) / len(top)
        return round(sum(max(s, 0.0) * label for s, label in top) / weight, 6)


class LLMDifficultyScorer:
    """A (small) model rates the question's difficulty from 0 to 10 (``Difficulty: 3``,
    ``**Difficulty:** 3/10``, ``30%``, ``hard``...); score = rating / 10. An unreadable
    reply is unknown (``None``): the score node's ``unknown`` option decides (default 1.0,
    the paid tier)."""

    name = "llm"

    def score(self, question: str, ask: Ask | None = None) -> float | None:
        from colm_graph.core.answers import parse_score

        if ask is None:
            raise ConfigError("scorer 'llm' needs a model: bind the route's 'router' role")
        return parse_score(ask("difficulty", {"question": question}), field="difficulty")


SCORERS: dict[str, Callable[..., Scorer]] = {
    "heuristic": lambda **_: HeuristicScorer(),
    "llm": lambda **_: LLMDifficultyScorer(),
    "embedding": lambda embeddings=None, examples=None, **_: _knn(embeddings, examples),
}


def _knn(embeddings: Embeddings | None, examples: Sequence[Labelled] | None) -> Scorer:
    if embeddings is None or not examples:
        raise ConfigError("scorer 'embedding' needs embeddings= and labelled examples"
                          " (pass EmbeddingKNNScorer(embeddings, load_labelled(path)))")
    return EmbeddingKNNScorer(embeddings, examples)


def make_scorer(scorer: str | Scorer, **kwargs: Any) -> Scorer:
    """A scorer from its registry name, or the object itself."""
    if not isinstance(scorer, str):
        return scorer
    if scorer not in SCORERS:
        raise ConfigError(f"scorer: expected one of {', '.join(SCORERS)}, got {scorer!r}")
    return SCORERS[scorer](**kwargs)


@dataclass(frozen=True)
class Calibration:
    threshold: float
    target_share: float
    achieved_share: float
    """Share of the calibration questions scoring above the threshold."""
    n: int


def calibrate_threshold(scores: Iterable[float], target_share: float) -> Calibration:
    """The threshold that sends about ``target_share`` of queries to the paid tier
    (``score > threshold``), from scores of a calibration set."""
    values = sorted(scores)
    if not values:
        raise ConfigError("calibration: no scores")
    if not 0 <= target_share <= 1:
        raise ConfigError(f"calibration: target share must be in [0, 1], got {target_share}")
    n = len(values)
    keep = n - round(target_share * n)  # number of queries at or below the threshold
    if keep <= 0:
        threshold = values[0] - 1e-9
    elif keep >= n:
        threshold = values[-1]
    else:
        threshold = (values[keep - 1] + values[keep]) / 2
    # Round for readability only where the rounded threshold splits the scores the same way
    # (scores closer than 1e-9, or the top score with target 0, would otherwise move across).
    low = values[keep - 1] if keep > 0 else -math.inf
    high = values[keep] if keep < n else math.inf
    if low <= round(threshold, 9) < high:
        threshold = round(threshold, 9)
    elif not low <= threshold < high:  # adjacent floats: the midpoint rounded up to `high`
        threshold = low
    achieved = sum(v > threshold for v in values) / n
    return Calibration(threshold, target_share, achieved, n)


def calibrate_scorer(scorer: Scorer, questions: Iterable[str], target_share: float,
                     ask: Ask | None = None) -> Calibration:
    """Score a calibration set with ``scorer`` and pick the threshold for ``target_share``
    (an unknown score counts as 1.0, as the ``route`` graph's score node treats it)."""
    scores = (scorer.score(q, ask) for q in questions)
    return calibrate_threshold((1.0 if s is None else s for s in scores), target_share)
