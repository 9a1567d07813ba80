"""argparse value types shared by the subcommands (argparse names the flag in the error)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["integer", "number"]


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer from ``low`` to ``high`` (no upper bound when ``None``)."""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
        if n < low or (high is not None and n > high):
            span = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"expected an integer {span}, got {n}")
        return n

    return parse


def number(low: float, high: float | None = None) -> Callable[[str], float]:
    """A finite number from ``low`` to ``high`` (no upper bound when ``None``)."""

    def parse(value: str) -> float:
        try:
            x = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
        if not math.isfinite(x) or x < low or (high is not None and x > high):
            span = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
            raise argparse.ArgumentTypeError(f"expected a number {span}, got {value!r}")
        return x

    return parse
