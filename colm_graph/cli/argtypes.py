"""argparse value types shared by the subcommands (argparse names the flag in the error)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

__all__ = ["integer", "number"]

N = TypeVar("N", int, float)


def _ranged(cast: Callable[[str], N], what: str, low: N, high: N | None,
            show: Callable[[N], str], got: Callable[[str, N], str]) -> Callable[[str], N]:
    def parse(value: str) -> N:
        try:
            x = cast(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}") from None
        if not math.isfinite(x) or x < low or (high is not None and x > high):
            span = f"from {show(low)} to {show(high)}" if high is not None \
                else f"of at least {show(low)}"
            raise argparse.ArgumentTypeError(f"expected {what} {span}, got {got(value, x)}")
        return x

    return parse


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer from ``low`` to ``high`` (no upper bound when ``None``)."""
    return _ranged(int, "an integer", low, high, str, lambda _, n: str(n))


def number(low: float, high: float | None = None) -> Callable[[str], float]:
    """A finite number from ``low`` to ``high`` (no upper bound when ``None``)."""
    return _ranged(float, "a number", low, high, lambda x: f"{x:g}", lambda v, _: repr(v))
