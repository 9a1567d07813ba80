"""Agreement of a set of answers: groups of equivalent answers, the majority, and ties.

Answers are grouped with :func:`~colm_graph.core.answers.equivalence.equivalent` (so ``1,234``
and ``1{,}234`` are one group). The majority is the largest group; when several groups are
equally large the result says so (``tied``) instead of picking one silently: callers break
a tie by a documented rule (see :func:`colm_graph.nodes.aggregate.finish`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from colm_graph.core.answers.equivalence import equivalent, normalize_answer

__all__ = ["Agreement", "agreement", "group_answers"]


@dataclass(frozen=True)
class Agreement:
    """How far a set of answers agree.

    Attributes:
        majority: canonical form of the largest group's answer (``None``: nobody answered).
            In a tie, the tied group whose answer was stated first; see ``tied``.
        share: fraction of *all* answers (no-answers included) in the majority group.
        count: number of answers considered.
        unanimous: at least two answers, all present and equivalent.
        tied: the raw answers of the groups tied for the majority (empty when one group is
            largest).
        groups: number of distinct answers.
    """

    majority: str | None
    share: float
    count: int
    unanimous: bool
    tied: tuple[str, ...] = ()
    groups: int = 0


def group_answers(answers: Sequence[str | None], *, kind: str = "auto",
                  choices: Sequence[str] | None = None) -> list[list[int]]:
    """Indices of ``answers`` grouped by equivalence (no-answers left out), in order of
    each group's first member."""
    groups: list[list[int]] = []
    opts = tuple(choices) if choices else None
    for i, a in enumerate(answers):
        if a is None or normalize_answer(a, kind, opts) is None:
            continue
        for g in groups:
            if equivalent(answers[g[0]], a, kind=kind, choices=opts):
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


def agreement(answers: Iterable[str | None], *, order: Sequence[str] | None = None,
              kind: str = "auto", choices: Sequence[str] | None = None) -> Agreement:
    """Majority and agreement share of raw answers.

    ``order`` (answers in order of preference) breaks a tie when given; otherwise the tie
    is reported in ``tied`` and ``majority`` is the tied answer stated first."""
    values = list(answers)
    opts = tuple(choices) if choices else None
    groups = group_answers(values, kind=kind, choices=opts)
    if not groups:
        return Agreement(None, 0.0, len(values), False)
    best = max(len(g) for g in groups)
    top = [g for g in groups if len(g) == best]
    pick = top[0]
    if len(top) > 1 and order:
        for preferred in order:
            hit = next((g for g in top if equivalent(values[g[0]], preferred, kind=kind,
                                                     choices=opts)), None)
            if hit is not None:
                pick = hit
                break
        top = [pick]
    raw = values[pick[0]]
    assert raw is not None
    present = sum(len(g) for g in groups)
    unanimous = len(values) >= 2 and present == len(values) and len(groups) == 1
    tied = tuple(str(values[g[0]]) for g in top) if len(top) > 1 else ()
    return Agreement(normalize_answer(raw, kind, opts), best / len(values), len(values),
                     unanimous, tied, len(groups))
