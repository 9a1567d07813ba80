"""Scoring a protocol's answer against the gold one, with the same equivalence the protocols
use to agree (:func:`colm_graph.core.answers.equivalent`): numbers by value whatever their
writing, math symbolically, multiple choice by letter or option text, free text normalised.
A missing answer is "no answer", counted apart from wrong answers."""

from __future__ import annotations

from dataclasses import dataclass

from colm_graph.core.answers import equivalent, normalize_answer
from colm_graph.evaluation.datasets import Item

__all__ = ["Score", "score_answer"]


@dataclass(frozen=True)
class Score:
    correct: bool
    no_answer: bool


def score_answer(answer: str | None, item: Item) -> Score:
    """Compare a protocol's extracted answer with the item's gold answer."""
    if answer is None or normalize_answer(answer, item.answer_type, item.choices) is None:
        return Score(False, True)
    return Score(equivalent(item.answer, answer, kind=item.answer_type, choices=item.choices),
                 False)
