"""Paid-tier budgets that hold: ``max_paid_usd`` and ``max_paid_tokens`` are checked before
every paid call against that call's WORST-CASE cost (its prompt tokens, with a margin, plus
the output tokens it may produce), and the call's output is capped to what the budget left
allows. A call the budget cannot cover is not made: the node falls back to a local model
and the run is marked degraded.

Parallel paid calls of one step each get an equal share of what is left, so their sum
cannot exceed it either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .ledger import estimate_tokens, ledger_totals

if TYPE_CHECKING:
    from .pool import PoolEntry

__all__ = ["Allowance", "caps", "plan_paid_call", "remaining"]

PROMPT_MARGIN = 1.25
"""Our token estimate of a prompt times this (plus 8) bounds the provider's count."""
DEFAULT_MAX_OUTPUT = 4096
"""Worst-case output of a model whose output cannot be capped per call."""
MIN_OUTPUT = 16
"""A paid call allowed fewer output tokens than this is not worth making."""
CAPPABLE = ("openai", "sim")
"""Providers that honour a per-call ``max_tokens``."""


@dataclass(frozen=True)
class Allowance:
    """Paid USD and paid tokens a call (or a step) may still use; ``None``: no limit."""

    usd: float | None = None
    tokens: int | None = None
    down: tuple[str, ...] = ()
    """Paid models that already failed in this run (after the client's retries): calls to
    them go straight to the local tier instead of paying for the retries again."""

    @property
    def unlimited(self) -> bool:
        return self.usd is None and self.tokens is None

    def share(self, n: int) -> Allowance:
        """One of ``n`` equal shares (for parallel calls of one step)."""
        if n <= 1:
            return self
        return Allowance(None if self.usd is None else self.usd / n,
                         None if self.tokens is None else self.tokens // n, self.down)

    def minus(self, usd: float, tokens: int) -> Allowance:
        return Allowance(None if self.usd is None else self.usd - usd,
                         None if self.tokens is None else self.tokens - tokens, self.down)

    def as_dict(self) -> dict[str, Any]:
        return {"usd": self.usd, "tokens": self.tokens, "down": list(self.down)}

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> Allowance:
        if not data:
            return cls()
        return cls(data.get("usd"), data.get("tokens"), tuple(data.get("down") or ()))


def caps(state: Mapping[str, Any], params: Mapping[str, Any]) -> Allowance:
    """The run's caps: set at its start (per-invocation overrides), else the parameters."""
    budget = state.get("budget")
    if budget:
        return Allowance.of(budget)
    return Allowance(params.get("max_paid_usd"), params.get("max_paid_tokens"))


def spent(records: Any) -> tuple[float, int]:
    t = ledger_totals(records)
    return t["paid_usd"], t["paid_input_tokens"] + t["paid_output_tokens"]


FAILED = "paid model "
"""How the reason of a fallback for a failed paid call starts (see ``calls``)."""


def failed_models(records: Any) -> tuple[str, ...]:
    """Paid models whose calls failed in these records (and were made locally instead)."""
    return tuple(sorted({r["fallback_for"] for r in records if r.get("fallback_for")
                         and str(r.get("degraded", "")).startswith(FAILED)}))


def remaining(state: Mapping[str, Any], params: Mapping[str, Any]) -> Allowance:
    """What the run may still spend on the paid tier, and which paid models are down."""
    cap = caps(state, params)
    records = state.get("ledger", [])
    down = failed_models(records)
    if cap.unlimited:
        return Allowance(down=down)
    usd, tokens = spent(records)
    return Allowance(cap.usd, cap.tokens, down).minus(usd, tokens)


def plan_paid_call(entry: PoolEntry, prompt: str, allowance: Allowance | None
                   ) -> tuple[int | None, str | None]:
    """``(max_tokens, refusal)`` for a paid call: the output cap to pass (``None``: none
    needed), or why the call must not be made."""
    if allowance is not None and entry.name in allowance.down:
        return None, f"{FAILED}{entry.name} failed earlier in this run; not retried"
    if allowance is None or allowance.unlimited:
        return None, None
    worst_in = math.ceil(estimate_tokens(prompt) * PROMPT_MARGIN) + 8
    known = entry.spec.max_tokens if entry.spec is not None else None
    cappable = entry.provider in CAPPABLE
    limit: float = known if known is not None else (math.inf if cappable
                                                    else DEFAULT_MAX_OUTPUT)
    if allowance.usd is not None:
        price_in, price_out = entry.price.input, entry.price.output
        left = allowance.usd - worst_in * price_in / 1e6
        if left < 0:
            return None, (f"paid budget: {entry.name} needs up to ${worst_in * price_in / 1e6:.6f}"
                          f" for its prompt, ${max(allowance.usd, 0):.6f} left")
        if price_out > 0:
            affordable = left * 1e6 / price_out  # may be inf for a tiny price
            if affordable < limit:
                if not cappable:
                    return None, (f"paid budget: {entry.name} may write {int(limit)} tokens,"
                                  f" the ${max(allowance.usd, 0):.6f} left pays for"
                                  f" {math.floor(affordable)}")
                limit = math.floor(affordable)
    if allowance.tokens is not None:
        left_tokens = allowance.tokens - worst_in
        if not cappable and left_tokens < limit:
            return None, (f"paid token budget: {entry.name} may use {worst_in + int(limit)}"
                          f" tokens, {max(allowance.tokens, 0)} left")
        limit = min(limit, left_tokens)
    if limit < MIN_OUTPUT:
        return None, (f"paid budget spent: {entry.name} could write at most {max(int(limit), 0)}"
                      " tokens with what is left")
    return (int(limit) if cappable and limit != math.inf else None), None
