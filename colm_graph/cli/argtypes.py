"""argparse value types and flags shared by the subcommands (argparse names the flag in the
error)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["add_constraint_flags", "constraint_settings", "integer", "number", "positive"]

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


def positive(what: str = "a positive number") -> Callable[[str], float]:
    """A finite number greater than 0 (``what`` names it in the error, e.g. "a positive
    number of seconds")."""
    def parse(value: str) -> float:
        try:
            x = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}") from None
        if not math.isfinite(x) or x <= 0:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}")
        return x

    return parse


def add_constraint_flags(parser: argparse.ArgumentParser, what: str) -> None:
    """``--deadline``, ``--private``, ``--detect-private`` and ``--max-upload-bytes`` (see
    :mod:`colm_graph.run.constraints`); ``what`` names what they apply to in the help."""
    parser.add_argument("--deadline", type=positive("a positive number of seconds"),
                        metavar="SECONDS",
                        help=f"seconds {what} may take, from its start: a paid step that does"
                             " not fit is skipped for the local path, one still running then"
                             " is cancelled (degraded: deadline)")
    parser.add_argument("--private", action="store_true",
                        help=f"no byte of {what} reaches a model not allowed private data"
                             " (a pool entry's residency; by default only local-tier models"
                             " in this process or at a loopback or private address)")
    parser.add_argument("--detect-private", action="store_true",
                        help="private when the question holds private data (e-mail"
                             " addresses, phone, card, IBAN or SSN numbers)")
    parser.add_argument("--max-upload-bytes", type=integer(0), metavar="N",
                        help=f"request bytes {what} may send to paid models, in all")


def constraint_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The flags of :func:`add_constraint_flags` as keyword arguments of
    :func:`colm_graph.run.constraints.with_constraints` (only those given)."""
    given = {"deadline_s": args.deadline, "private": True if args.private else None,
             "private_detect": True if args.detect_private else None,
             "max_upload_bytes": args.max_upload_bytes}
    return {k: v for k, v in given.items() if v is not None}
