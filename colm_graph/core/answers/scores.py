"""Scores written by verifiers and routers: ``Confidence: 0.9``, ``90%``, ``**0.9**``,
``9/10``, ``Confidence: high``, ``Difficulty: 3/5``, ``**Difficulty:** 3``.

:func:`parse_score` returns a value in [0, 1], or ``None`` when the reply states no readable
score (*unknown*): the node that asked decides what unknown means (its ``unknown`` option).
"""

from __future__ import annotations

import re
from functools import lru_cache

from colm_graph.core.answers.extract import strip_reasoning

__all__ = ["SCALES", "WORDS", "parse_score"]

SCALES = {"confidence": 1.0, "difficulty": 10.0, "score": 1.0}
"""Default scale of a bare number by field: confidence 0-1, difficulty 0-10."""
WORDS = {"very low": 0.1, "very unlikely": 0.1, "low": 0.25, "unlikely": 0.25,
         "medium": 0.5, "moderate": 0.5, "uncertain": 0.5, "likely": 0.75, "high": 0.85,
         "very high": 0.95, "very likely": 0.9, "certain": 1.0, "none": 0.0,
         "easy": 0.2, "very easy": 0.1, "hard": 0.8, "very hard": 0.95, "trivial": 0.0}
_VALUE = (r"(?P<v>(?:very )?(?:low|medium|moderate|high|likely|unlikely|certain|uncertain|"
          r"easy|hard|trivial)\b|[-+]?\d+(?:\.\d+)?(?: ?%| ?/ ?\d+(?:\.\d+)?| out of \d+)?|"
          r"[-+]?\.\d+ ?%?)")
_BARE = re.compile(r"^[ \t*_>#-]*" + _VALUE + r"[ \t*_.]*$", re.IGNORECASE | re.MULTILINE)


@lru_cache(maxsize=16)
def _labelled(field: str) -> re.Pattern[str]:
    return re.compile(rf"\b{field}(?: (?:score|level|rating))?(?:\*\*|__)?[\"']?[ \t]*"
                      rf"(?:[:=：]|\bis\b|\bof\b)[ \t]*(?:(?:\*\*|__)[ \t]*)?"
                      rf"(?:(?:about|around|roughly) |~)?" + _VALUE, re.IGNORECASE)


def _value(raw: str, scale: float) -> float | None:
    t = raw.strip().lower()
    if t in WORDS or re.sub(r"\s+", " ", t) in WORDS:
        return WORDS[re.sub(r"\s+", " ", t)]
    m = re.match(r"^([-+]?\d*\.?\d+)\s*(%|/\s*(\d+(?:\.\d+)?)|out\s+of\s+(\d+))?$", t)
    if not m:
        return None
    number = float(m.group(1))
    if m.group(2) == "%":
        value = number / 100
    elif m.group(3) or m.group(4):
        denominator = float(m.group(3) or m.group(4))
        if denominator <= 0:
            return None
        value = number / denominator
    elif scale == 1.0 and 1 < number <= 10 and number == int(number):
        value = number / 10  # "Confidence: 9" on a 0-10 scale
    elif scale == 1.0 and 10 < number <= 100:
        value = number / 100  # "Confidence: 85" meaning percent
    else:
        value = number / scale
    return value if 0.0 <= value <= 1.0 else None


def parse_score(text: str | None, *, field: str = "confidence",
                scale: float | None = None) -> float | None:
    """The last score for ``field`` stated in ``text``, in [0, 1]; ``None`` when unknown.

    A bare number is read on the field's scale (``SCALES``: difficulty 0-10, confidence
    0-1); ``%``, ``a/b`` and ``a out of b`` carry their own. A reply whose only content is
    a value (``0.9``, ``**90%**``) counts as the score."""
    if not text or not isinstance(text, str):
        return None
    visible = strip_reasoning(text[-100_000:])
    s = scale if scale is not None else SCALES.get(field.lower(), 1.0)
    found = list(_labelled(re.escape(field)).finditer(visible))
    if found:
        return _value(found[-1].group("v"), s)
    bare = list(_BARE.finditer(visible))
    if bare and not visible[bare[-1].end():].strip():
        return _value(bare[-1].group("v"), s)
    return None
