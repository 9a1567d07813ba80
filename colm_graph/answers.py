"""Answer extraction, normalisation and agreement: the one piece every protocol shares.

A response's answer is its last ``Answer: ...`` line (``**Answer:**`` and ``\\boxed{...}``
are accepted too). Numbers are normalised (``1,000`` = ``1000.0`` = ``1e3``), multiple-choice
letters reduced to the letter, free text compared lower-cased without punctuation. A response
without an extractable answer is "no answer" (``None``); it never raises.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Agreement",
    "agreement",
    "answers_match",
    "extract_answer",
    "normalize_answer",
]

_ANSWER_LINE = re.compile(
    r"^[\s>*_#-]*(?:final\s+)?answer\s*[*_]*\s*[:：]\s*[*_]*\s*(?P<ans>.*?)\s*[*_]*\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_BOXED = re.compile(r"\\boxed\{")
_NUMBER = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?$")
_FRACTION = re.compile(r"^([-+]?\d{1,300})\s*/\s*(\d{1,300})$")
_LETTER = re.compile(r"^\(?([A-Ja-j])\)?(?:[.):]|\s|$)")
_UNITS = re.compile(r"^(?P<num>[-+]?[\d.,eE+-]+)\s*(?:%|percent|[a-zA-Z²³°]{1,12}\.?)$")
_LATEX_FRAC = re.compile(r"^\\[dt]?frac\{\s*([-+]?\d+)\s*\}\{\s*(\d+)\s*\}$")
_NO_ANSWER = {"", "none", "n/a", "unknown", "cannot answer", "no answer", "i don't know"}


def _boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}``, braces balanced."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    if not starts:
        return None
    i = start = starts[-1]
    depth = 1
    while i < len(text):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
        i += 1
    return None


def extract_answer(text: str | None) -> str | None:
    """Return the raw answer of a response, or ``None`` when it states none."""
    if not text:
        return None
    lines = _ANSWER_LINE.findall(text)
    raw = lines[-1] if lines else _boxed(text)
    if raw is None:
        return None
    raw = raw.strip().strip("`").strip()
    boxed = _boxed(raw)
    if boxed is not None:
        raw = boxed.strip()
    raw = raw.rstrip(".").strip()
    if raw.lower() in _NO_ANSWER:
        return None
    return raw


def _format_number(value: float) -> str:
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(round(value, 9))


def _as_number(text: str) -> str | None:
    t = text.replace("$", "").replace("\u2212", "-").strip()
    t = _LATEX_FRAC.sub(r"\1/\2", t)
    frac = _FRACTION.match(t)
    if frac and int(frac.group(2)) != 0:
        return _format_number(int(frac.group(1)) / int(frac.group(2)))
    unit = _UNITS.match(t)
    if unit:
        t = unit.group("num")
    if t and _NUMBER.match(t) and any(c.isdigit() for c in t):
        try:
            return _format_number(float(t.replace(",", "")))
        except ValueError:
            return None
    return None


def normalize_answer(answer: str | None) -> str | None:
    """Canonical form of an extracted answer, for comparison; ``None`` stays ``None``."""
    if answer is None:
        return None
    text = answer.strip().rstrip(".").strip()
    if not text:
        return None
    number = _as_number(text)
    if number is not None:
        return number
    letter = _LETTER.match(text)
    if letter and (len(text) <= 3 or text[1:2] in {")", ".", ":"} or text[0] == "("):
        return letter.group(1).upper()
    words = re.sub(r"[^\w\s]", " ", text.lower())
    words = " ".join(w for w in words.split() if w not in {"the", "a", "an"})
    return words or None


def answers_match(a: str | None, b: str | None) -> bool:
    """True when both answers exist and normalise to the same thing."""
    na, nb = normalize_answer(a), normalize_answer(b)
    return na is not None and na == nb


@dataclass(frozen=True)
class Agreement:
    """How far a set of answers agree.

    Attributes:
        majority: the most common normalised answer (``None`` if nobody answered).
        share: fraction of *all* answers (no-answers included) equal to the majority.
        count: number of answers considered.
        unanimous: at least two answers, all present and equal.
    """

    majority: str | None
    share: float
    count: int
    unanimous: bool


def agreement(answers: Iterable[str | None], *, order: Sequence[str] | None = None) -> Agreement:
    """Majority and agreement share of raw answers (normalised before counting).

    Ties go to the answer that appears first (or first in ``order`` when given).
    """
    normed = [normalize_answer(a) for a in answers]
    present = [n for n in normed if n is not None]
    if not present:
        return Agreement(None, 0.0, len(normed), False)
    counts = Counter(present)
    best = max(counts.values())
    candidates = [n for n in (order or present) if counts.get(normalize_answer(n) or "", 0) == best]
    majority = normalize_answer(candidates[0]) if candidates else present[0]
    share = best / len(normed)
    unanimous = len(normed) >= 2 and len(present) == len(normed) and len(counts) == 1
    return Agreement(majority, share, len(normed), unanimous)
