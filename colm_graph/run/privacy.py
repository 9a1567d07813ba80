"""A small detector of private data in a question: e-mail addresses, phone numbers, payment
card numbers (checked with the Luhn sum), IBANs (checked mod 97) and US social security
numbers. ``private_detect: true`` makes a run whose question holds one private
(:mod:`colm_graph.run.constraints`).

It is a regex set, tuned against false alarms on the arithmetic the evals ask (a bare run
of digits is a number, not a phone): it finds what is written in the usual formats and
misses the rest. Pass any callable of the question (``private_detect=my_detector``) for a
stronger one, such as a named-entity model.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = ["PATTERNS", "Finding", "find_private", "looks_private"]


class Finding(NamedTuple):
    kind: str
    start: int
    end: int


PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    # +CC then groups; or (ddd) ddd-dddd / ddd-ddd-dddd / ddd.ddd.dddd / ddd ddd dddd
    "phone": re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}"
                        r"(?:[ .-]\d{2,4}){1,4}"
                        r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}"
                        r"|\d{3}([.-])\d{3}\1\d{4}"
                        r"|\d{3} \d{3} \d{4})(?!\d)"),
    "card": re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)"),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
    "ssn": re.compile(r"(?<!\d)(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\d)"),
}
"""What each kind looks like (cards and IBANs are then checked by their check digits)."""


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


def _checked(kind: str, text: str) -> bool:
    if kind == "card":
        digits = re.sub(r"\D", "", text)
        return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn(digits)
    if kind == "iban":
        return _iban_ok(text)
    if kind == "phone":
        return len(re.sub(r"\D", "", text)) >= 9
    return True


def find_private(text: str) -> list[Finding]:
    """Every private item found in ``text``, in order."""
    found = [Finding(kind, m.start(), m.end()) for kind, pattern in PATTERNS.items()
             for m in pattern.finditer(text) if _checked(kind, m.group(0))]
    return sorted(found, key=lambda f: (f.start, f.kind))


def looks_private(text: str) -> bool:
    """Whether ``text`` holds anything :func:`find_private` finds."""
    return any(_checked(kind, m.group(0)) for kind, pattern in PATTERNS.items()
               for m in pattern.finditer(text))
