"""A small detector of private data in a question: e-mail addresses, phone numbers, payment
card numbers (checked with the Luhn sum), IBANs (checked mod 97) and US social security
numbers. ``private_detect: true`` makes a run whose question holds one private
(:mod:`colm_graph.run.constraints`).

It is a regex set, tuned against false alarms on the arithmetic the evals ask:

* a bare run of digits is a number, not a phone (``+`` and a country code make one);
* a number with ``=`` right beside it, or an arithmetic operator with a number on its other
  side (``415 555 2671 + 1``, ``x = 123-45-6789``), is a calculation's operand, not a phone,
  a card or an SSN;
* a 10-digit number without a country code is a phone only in the US formats
  (``(415) 555-2671``, ``415-555-2671``, ``415.555.2671``, ``415 555 2671``) with a valid area
  code and exchange (neither starts with 0 or 1), or in groups after a trunk 0
  (``020 7946 0958``);
* a card number (one run of 13 to 19 digits, groups of four, or 4-6-5) starts with 2 to 6,
  the card networks' ranges, and passes the Luhn check; an IBAN passes its mod-97 check;
* ``ddd-dd-dddd`` on its own is an SSN, even where it was meant as a subtraction.

It finds what is written in these formats and misses the rest. Pass any callable of the
question (``private_detect=my_detector``) for a stronger one, such as a named-entity model.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["PATTERNS", "Finding", "find_private", "looks_private"]


class Finding(NamedTuple):
    """One private item: its ``kind`` (a key of :data:`PATTERNS`) and where it is."""

    kind: str
    start: int
    end: int


PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    # +CC then groups (+44 20 7946 0958, +33 1 23 45 67 89, +49 (0)30 123456) or +CC and the
    # number in one run (+14155552671); US formats; national formats with a trunk 0
    "phone": re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}"
                        r"(?:[ .-]\d{2,8}){1,5}"
                        r"|\+\d{10,15}"
                        r"|\([2-9]\d\d\)[ .-]?[2-9]\d\d[ .-]\d{4}"
                        r"|[2-9]\d\d([.-])[2-9]\d\d\1\d{4}"
                        r"|[2-9]\d\d [2-9]\d\d \d{4}"
                        r"|0[1-9]\d{1,3}[ .-]\d{3,4}[ .-]\d{3,4})(?!\d|[.,]\d)"),
    # one run of 13-19 digits, or groups of four (the last of 1-4, a fifth of 1-3), or
    # American Express's 4-6-5
    "card": re.compile(r"(?<![\d.])(?:[2-6]\d{12,18}"
                       r"|[2-6]\d{3}(?P<sep>[ -])\d{4}(?P=sep)\d{4}(?P=sep)\d{1,4}"
                       r"(?:(?P=sep)\d{1,3})?"
                       r"|3\d{3}[ -]\d{6}[ -]\d{5})(?!\d|[.,]\d)"),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
    "ssn": re.compile(r"(?<!\d)(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\d)"),
}
"""What each kind looks like (cards and IBANs are then checked by their check digits)."""

_PRIORITY = ("iban", "card", "email", "ssn", "phone")
"""Of two findings that overlap (an IBAN's digits read as a phone), the earlier kind here
is kept."""

_BEFORE = re.compile(r"(?:[\d)]\s*[-+*/×÷^<>]|=)\s*$")
_AFTER = re.compile(r"\s*(?:[-+*/×÷^<>]\s*[\d(]|=)")
_CALCULATION = frozenset({"phone", "card", "ssn"})
"""Kinds a number in a calculation is not (an operator right beside it)."""


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(text: str) -> bool:
    s = text.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def _in_calculation(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is an operand: ``=`` right before or after it, or an
    arithmetic operator with a number on its other side (``3 + 4111…``, ``… - 1``)."""
    return bool(_BEFORE.search(text, max(0, start - 40), start)) or \
        bool(_AFTER.match(text, end))


def _checked(kind: str, text: str) -> bool:
    if kind == "card":
        digits = re.sub(r"\D", "", text)
        return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn(digits)
    if kind == "iban":
        return _iban_ok(text)
    if kind == "phone":
        return 9 <= len(re.sub(r"\D", "", text)) <= 15
    return True


def _verified(kind: str, text: str, start: int, end: int) -> int | None:
    """The end of the private item matched at ``text[start:end]`` (``None``: none). An IBAN
    match may have taken a word after it for its last group: it is tried without it too."""
    if kind in _CALCULATION and _in_calculation(text, start, end):
        return None
    if _checked(kind, text[start:end]):
        return end
    if kind == "iban":
        shorter = text.rfind(" ", start, end)
        if shorter > start and _checked(kind, text[start:shorter]):
            return shorter
    return None


def find_private(text: str) -> list[Finding]:
    """Every private item found in ``text``, in order (where two overlap, the one of the
    kind checked more strictly: :data:`_PRIORITY`)."""
    kept: list[Finding] = []
    for kind in _PRIORITY:
        for m in PATTERNS[kind].finditer(text):
            end = _verified(kind, text, m.start(), m.end())
            if end is not None and not any(f.start < end and m.start() < f.end for f in kept):
                kept.append(Finding(kind, m.start(), end))
    return sorted(kept, key=lambda f: (f.start, f.kind))


def looks_private(text: str) -> bool:
    """Whether ``text`` holds anything :func:`find_private` finds."""
    return any(_verified(kind, text, m.start(), m.end()) is not None
               for kind, pattern in PATTERNS.items() for m in pattern.finditer(text))
