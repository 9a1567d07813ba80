"""Scorers: numeric exact match (normalised), multiple-choice letter, normalised string.
A missing answer is "no answer", counted apart from wrong answers."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..answers import normalize_answer
from .datasets import LETTERS, Item

__all__ = ["Score", "score_answer"]


@dataclass(frozen=True)
class Score:
    correct: bool
    no_answer: bool


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def score_answer(answer: str | None, item: Item) -> Score:
    """Compare a protocol's extracted answer with the item's gold answer."""
    pred = normalize_answer(answer)
    if pred is None:
        return Score(False, True)
    gold = normalize_answer(item.answer)
    if item.kind == "choice":
        if item.choices and pred not in LETTERS[: len(item.choices)]:  # option text, not letter
            texts = [normalize_answer(c) for c in item.choices]
            if pred in texts:
                pred = LETTERS[texts.index(pred)]
        return Score(pred == gold, False)
    if item.kind == "numeric":
        a, b = _number(pred), _number(gold)
        if a is not None and b is not None:
            return Score(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), False)
    return Score(pred == gold, False)
