"""Paid-tier budgets that hold: ``max_paid_usd`` and ``max_paid_tokens`` are checked before
every paid call against that call's WORST-CASE cost (an upper bound of its prompt tokens,
:mod:`colm_graph.core.tokens`, plus the output tokens it may produce), and the call's output is
capped to what the budget left allows (and, for streamed calls, stopped there by the client
if the provider writes on, see :mod:`colm_graph.run.calls`). A call the budget cannot cover
is not made: the node falls back to a local model and the run is marked degraded.

Parallel paid calls of one step each get an equal share of what is left, so their sum
cannot exceed it either; runs that share one budget (an eval's items) share a
:class:`PaidAccount`, from which each paid call reserves its own worst case.

A budget has one shape, :class:`Allowance` (USD, tokens, paid models down): the run's caps
(:func:`run_caps`, kept in the state's ``budget``), what is left (:func:`remaining`), a
fan-out task's share (its ``allowance``), each kept in state as :meth:`Allowance.as_dict`.
Why a paid call is made locally instead is a :class:`Fallback` with a typed ``kind``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from colm_graph.core.ledger import FallbackKind, ledger_totals
from colm_graph.run.constraints import deadline_of, private_of, upload_cap_of
from colm_graph.run.links import still_down

if TYPE_CHECKING:
    from colm_graph.pool import PoolEntry

__all__ = ["Allowance", "Fallback", "PaidAccount", "PaidPlan", "Reservation", "caps",
           "failed_models", "plan_paid_call", "remaining", "run_caps", "sent_bytes"]

DEFAULT_MAX_OUTPUT = 4096
"""Output cap of a budgeted paid call to a model whose entry sets no ``max_tokens`` (and
the worst case assumed for one whose output cannot be capped per call)."""
STREAM_FACTOR = 4
"""A streamed paid reply counted by the byte bound (no tokenizer for its model) may run to
this many bytes a token of its ``max_tokens``, budget permitting, before the client stops
reading: real tokens average about four bytes of English, so an honest reply is not cut,
and tokens <= bytes keeps the count an upper bound. With the model's own tokenizer the
reply is stopped just past ``max_tokens``."""
STREAM_SLACK = 64
"""Output tokens of a streamed call's budget kept for the chunk it is stopped in
(providers send one or a few tokens a chunk)."""
MIN_OUTPUT = 16
"""A paid call allowed fewer output tokens than this is not worth making."""
CAPPABLE = ("openai", "sim")
"""Providers that honour a per-call ``max_tokens``."""


@dataclass(frozen=True)
class Allowance:
    """Paid USD and paid tokens a call (or a step) may still use; ``None``: no limit. Also
    the run's other constraints (:mod:`colm_graph.run.constraints`) as they stand."""

    usd: float | None = None
    tokens: int | None = None
    down: tuple[str, ...] = ()
    """Paid models that failed in this run (after the client's retries) and were not seen
    back since: calls to them go straight to the local tier until their back-off is over
    (:mod:`colm_graph.run.links`)."""
    upload: int | None = None
    """Request bytes paid calls may still send (``max_upload_bytes`` less what was sent)."""
    deadline: float | None = None
    """The run's deadline, a Unix time."""
    private: bool = False
    """The run's data may reach only models that may hold private data."""

    @property
    def unlimited(self) -> bool:
        return self.usd is None and self.tokens is None

    @property
    def constrained(self) -> bool:
        """Some limit other than money holds: a deadline, privacy, an upload cap."""
        return self.upload is not None or self.deadline is not None or self.private

    def time_left(self) -> float | None:
        """Seconds to the deadline (``None``: no deadline; may be negative)."""
        import time

        return None if self.deadline is None else self.deadline - time.time()

    def share(self, n: int) -> Allowance:
        """One of ``n`` equal shares (for parallel calls of one step)."""
        if n <= 1:
            return self
        return replace(self, usd=None if self.usd is None else self.usd / n,
                       tokens=None if self.tokens is None else self.tokens // n,
                       upload=None if self.upload is None else self.upload // n)

    def minus(self, usd: float, tokens: int, upload: int = 0) -> Allowance:
        return replace(self, usd=None if self.usd is None else self.usd - usd,
                       tokens=None if self.tokens is None else self.tokens - tokens,
                       upload=None if self.upload is None else self.upload - upload)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"usd": self.usd, "tokens": self.tokens, "down": list(self.down)}
        if self.upload is not None:
            out["upload"] = self.upload
        if self.deadline is not None:
            out["deadline"] = self.deadline
        if self.private:
            out["private"] = True
        return out

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> Allowance:
        if not data:
            return cls()
        return cls(data.get("usd"), data.get("tokens"), tuple(data.get("down") or ()),
                   data.get("upload"), data.get("deadline"), bool(data.get("private")))


@dataclass(frozen=True)
class Reservation:
    """What one paid call holds of a :class:`PaidAccount` until it is settled."""

    usd: float
    tokens: int


class PaidAccount:
    """A paid budget shared by concurrent runs (an eval's items, a server's requests).

    Before each paid call, :mod:`colm_graph.run.calls` reserves that call's worst-case cost
    (its prompt's token bound plus the output it may write, capped to what is available)
    and settles with the real cost once the call is over, so that calls in flight together
    never exceed the cap, however many run at once: a cap that affords N worst-case calls
    runs N calls at any concurrency. Found by calls at ``configurable["colm_account"]``.
    Thread- and asyncio-safe (reservations are taken under a lock and never await).
    """

    def __init__(self, usd: float | None = None, tokens: int | None = None,
                 spent_usd: float = 0.0, spent_tokens: int = 0) -> None:
        self.cap_usd, self.cap_tokens = usd, tokens
        self.spent_usd, self.spent_tokens = float(spent_usd), int(spent_tokens)
        self.reserved_usd, self.reserved_tokens = 0.0, 0
        self.calls = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"PaidAccount(usd={self.cap_usd}, tokens={self.cap_tokens}, spent_usd="
                f"{self.spent_usd:.6f}, spent_tokens={self.spent_tokens}, reserved_usd="
                f"{self.reserved_usd:.6f})")

    def available(self) -> Allowance:
        """What is left after what was spent and what calls in flight hold."""
        with self._lock:
            return self._available()

    def _available(self) -> Allowance:
        return Allowance(
            None if self.cap_usd is None else self.cap_usd - self.spent_usd - self.reserved_usd,
            None if self.cap_tokens is None else
            self.cap_tokens - self.spent_tokens - self.reserved_tokens)

    def reserve(self, usd: float, tokens: int) -> Reservation | None:
        """Hold ``usd`` and ``tokens`` for one call; ``None`` when what is left cannot."""
        with self._lock:
            left = self._available()
            if (left.usd is not None and usd > left.usd + 1e-12) or \
                    (left.tokens is not None and tokens > left.tokens):
                return None
            self.reserved_usd += usd
            self.reserved_tokens += tokens
            return Reservation(usd, tokens)

    def settle(self, reservation: Reservation | None, usd: float, tokens: int) -> None:
        """Release ``reservation`` and count what the call really cost."""
        with self._lock:
            if reservation is not None:
                self.reserved_usd = max(self.reserved_usd - reservation.usd, 0.0)
                self.reserved_tokens = max(self.reserved_tokens - reservation.tokens, 0)
            self.spent_usd += usd
            self.spent_tokens += tokens
            self.calls += 1


def run_caps(configurable: Mapping[str, Any], params: Mapping[str, Any]) -> Allowance:
    """A run's paid caps, fixed by its first step: a per-invocation ``configurable``
    ``max_paid_usd`` / ``max_paid_tokens`` (how an eval shares its budget), else the graph's
    parameters. Kept in the state's ``budget`` as :meth:`Allowance.as_dict`."""
    return Allowance(configurable.get("max_paid_usd", params.get("max_paid_usd")),
                     configurable.get("max_paid_tokens", params.get("max_paid_tokens")))


def caps(state: Mapping[str, Any], params: Mapping[str, Any]) -> Allowance:
    """The run's caps: as its first step fixed them (see :func:`run_caps`), else from the
    config of the run in progress (a fresh run skips that step), else the parameters."""
    budget = state.get("budget")
    if budget:
        return Allowance.of(budget)
    return run_caps(_configurable(), params)


def _configurable() -> Mapping[str, Any]:
    """The ``configurable`` of the LangGraph run in progress (empty outside one)."""
    from langgraph.config import get_config

    try:
        return get_config().get("configurable") or {}
    except RuntimeError:  # not inside a runnable
        return {}


def spent(records: Any) -> tuple[float, int]:
    t = ledger_totals(records)
    return t["paid_usd"], t["paid_input_tokens"] + t["paid_output_tokens"]


def sent_bytes(records: Any) -> int:
    """Request bytes the paid calls in ``records`` sent."""
    return int(ledger_totals(records)["paid_request_bytes"])


_DOWN: tuple[FallbackKind, ...] = ("failed", "down")


def failed_models(records: Any) -> tuple[str, ...]:
    """Paid models whose calls failed in these records (and were made locally instead)."""
    return tuple(sorted({r["fallback_for"] for r in records
                         if r.get("fallback_for") and r.get("fallback") in _DOWN}))


def remaining(state: Mapping[str, Any], params: Mapping[str, Any]) -> Allowance:
    """What the run may still spend on the paid tier, and which paid models are down."""
    cap = caps(state, params)
    records = state.get("ledger", [])
    down = still_down(records)
    upload = upload_cap_of(params)
    limits = Allowance(down=down, deadline=deadline_of(state, params),
                       private=private_of(state, params),
                       upload=None if upload is None else upload - sent_bytes(records))
    if cap.unlimited:
        return limits
    usd, tokens = spent(records)
    return replace(limits, usd=cap.usd, tokens=cap.tokens).minus(usd, tokens)


@dataclass(frozen=True)
class Fallback:
    """Why a paid call is made by a local model instead: its ``kind`` (the call record's
    ``fallback``), the ``reason`` in words (its ``degraded``), and the records of what the
    failed paid call was charged (a stream cut off after it began), which go before it."""

    kind: FallbackKind
    reason: str
    earlier: tuple[Any, ...] = ()
    sent_bytes: int = 0
    """Request bytes the paid call had sent before it failed (its stand-in's record keeps
    them as ``lost_request_bytes``, counted with the paid tier's upload)."""
    received_bytes: int = 0
    """Response bytes it had received (``lost_response_bytes``, counted with the paid
    tier's download)."""


@dataclass(frozen=True)
class PaidPlan:
    """How a paid call may be made: ``max_tokens`` to pass (``None``: none needed), its
    worst-case ``usd`` and ``tokens`` (what a :class:`PaidAccount` reserves), or ``refusal``:
    why it must not be made."""

    max_tokens: int | None = None
    usd: float = 0.0
    tokens: int = 0
    refusal: Fallback | None = None
    stop_after: int | None = None
    """Output tokens (as counted) past which a streamed reply is no longer read."""


def _refused(reason: str) -> PaidPlan:
    return PaidPlan(refusal=Fallback("budget", reason))


def plan_paid_call(entry: PoolEntry, worst_in: int, allowance: Allowance | None,
                   stream_factor: float = 1, slack: int = 0) -> PaidPlan:
    """Plan a paid call whose prompt is at most ``worst_in`` tokens (see
    :func:`colm_graph.core.tokens.prompt_bound`) against ``allowance``. Under a budget a call's
    output is capped: to the entry's ``max_tokens``, else :data:`DEFAULT_MAX_OUTPUT`, and
    to what the budget left pays for. A streamed reply counted by a bound looser than the
    model's tokenizer may be read to ``stream_factor`` times that cap (as counted), budget
    permitting; the call's worst case (``usd``, ``tokens``) is sized to what may be read.
    ``slack`` output tokens of what the budget pays for are kept free for the chunk that a
    streamed reply is stopped in."""
    if allowance is not None and entry.name in allowance.down:
        return PaidPlan(refusal=Fallback(
            "down", f"paid model {entry.name} failed earlier in this run; not tried again"
                    f" until its back-off is over"))
    if allowance is None or allowance.unlimited:
        return PaidPlan()
    known = entry.spec.max_tokens if entry.spec is not None else None
    cappable = entry.provider in CAPPABLE
    limit: float = known if known is not None else DEFAULT_MAX_OUTPUT
    price_in, price_out = entry.price.input, entry.price.output
    ceiling = math.inf  # the most output the budget pays for
    if allowance.usd is not None:
        left = allowance.usd - worst_in * price_in / 1e6
        if left < 0:
            return _refused(f"paid budget: {entry.name} needs up to"
                            f" ${worst_in * price_in / 1e6:.6f} for its prompt,"
                            f" ${max(allowance.usd, 0):.6f} left")
        if price_out > 0:
            affordable = left * 1e6 / price_out  # may be inf for a tiny price
            ceiling = affordable
            if affordable < limit:
                if not cappable:
                    return _refused(f"paid budget: {entry.name} may write {int(limit)}"
                                    f" tokens, the ${max(allowance.usd, 0):.6f} left pays for"
                                    f" {math.floor(affordable)}")
                limit = math.floor(affordable)
    if allowance.tokens is not None:
        left_tokens = allowance.tokens - worst_in
        if not cappable and left_tokens < limit:
            return _refused(f"paid token budget: {entry.name} may use"
                            f" {worst_in + int(limit)} tokens, {max(allowance.tokens, 0)} left")
        limit = min(limit, left_tokens)
        ceiling = min(ceiling, left_tokens)
    ceiling -= slack
    limit = min(limit, ceiling)
    if limit < MIN_OUTPUT:
        return _refused(f"paid budget spent: {entry.name} could write at most"
                        f" {max(int(limit), 0)} tokens with what is left")
    out = int(limit)
    read = max(int(min(limit * max(stream_factor, 1), ceiling)), out)
    return PaidPlan(max_tokens=out if cappable else None, stop_after=read,
                    usd=(worst_in * price_in + read * price_out) / 1e6, tokens=worst_in + read)
