"""Limits, literal types and the allowed-value type :class:`Option` shared by the node
registry, the spec checks, the factories and the CLI (kept free of heavy imports)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ANSWER_TYPES", "MAX_COUNT", "MAX_ROUNDS", "MAX_SAMPLES", "MAX_STAGE", "MAX_TOP_K",
           "OUTPUT_POLICIES", "Option", "OutputPolicy", "VERIFY_METHODS", "show_value"]

OutputPolicy = Literal["auto", "home", "majority"]
OUTPUT_POLICIES: tuple[str, ...] = ("auto", "home", "majority")
VERIFY_METHODS: tuple[str, ...] = ("agreement", "self_check")
ANSWER_TYPES: tuple[str, ...] = ("auto", "number", "choice", "math", "text")
MAX_TOP_K = 64
MAX_ROUNDS = 20
"""Rounds at most: ``--rounds``, the ``rounds`` parameter and the argument of the
``rounds_at_least`` / ``rounds_left`` predicates."""
MAX_SAMPLES = 64
MAX_STAGE = 64
MAX_COUNT = 64
"""Participants of one role at most (a role's ``count``)."""

OptionKind = Literal["enum", "int", "float", "bool", "str", "role", "any"]


def show_value(value: Any) -> str:
    """``repr`` of a value for an error message, cut short when long."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return f"an integer of {value.bit_length()} bits"
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


@dataclass(frozen=True)
class Option:
    """The values a node option or a graph parameter may take.

    ``enum``: one of ``values``; ``int`` / ``float``: a number from ``low`` to ``high``
    (either may be ``None``: unbounded; a float accepts integers; booleans are never
    numbers); ``bool``; ``str`` (a non-empty string); ``role`` (a role name of the spec:
    turned into an ``enum`` of the spec's roles when checked); ``any``. ``nullable`` also
    allows ``None``."""

    kind: OptionKind
    values: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    nullable: bool = False
    doc: str = ""

    def describe(self) -> str:
        """``one of a, b`` / ``an integer from 1 to 64`` / ``true or false`` / ..."""
        if self.kind == "enum":
            text = "one of " + ", ".join(self.values)
        elif self.kind in ("int", "float"):
            noun = "an integer" if self.kind == "int" else "a number"
            text = noun + _span(self.low, self.high)
        else:
            text = {"bool": "true or false", "str": "a non-empty string",
                    "role": "a role name", "any": "a value"}[self.kind]
        return text + (" or null" if self.nullable and self.kind != "any" else "")

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable or self.kind == "any"
        if self.kind == "any":
            return True
        if self.kind in ("enum", "role"):
            return isinstance(value, str) and (self.kind == "role" or value in self.values)
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "str":
            return isinstance(value, str) and bool(value.strip())
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return (self.low is None or value >= self.low) and \
            (self.high is None or value <= self.high)

    def check(self, value: Any) -> str | None:
        """Why ``value`` is refused (``expected ..., got ...``), or ``None``."""
        if self.accepts(value):
            return None
        return f"expected {self.describe()}, got {show_value(value)}"

    def merge(self, other: Option) -> Option | None:
        """The values both allow, or ``None`` when they disagree (different kinds, or no
        value in common)."""
        a, b = self, other
        if a.kind == "any":
            return b
        if b.kind == "any":
            return a
        if a.kind == "str" and b.kind == "enum":
            a, b = b, a
        nullable = a.nullable and b.nullable
        if a.kind == "enum" and b.kind in ("enum", "str"):
            values = a.values if b.kind == "str" else tuple(v for v in a.values
                                                            if v in b.values)
            return Option("enum", values, nullable=nullable, doc=a.doc) if values else None
        if a.kind != b.kind:
            return None
        if a.kind in ("int", "float"):
            lows = [x for x in (a.low, b.low) if x is not None]
            highs = [x for x in (a.high, b.high) if x is not None]
            low = max(lows) if lows else None
            high = min(highs) if highs else None
            if low is not None and high is not None and low > high:
                return None
            return Option(a.kind, low=low, high=high, nullable=nullable, doc=a.doc)
        return Option(a.kind, a.values, nullable=nullable, doc=a.doc)


def _span(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f" of at least {low:g}"
    if high is not None:
        return f" of at most {high:g}"
    return ""
