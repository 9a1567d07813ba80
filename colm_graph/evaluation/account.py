"""An eval's paid budget: one :class:`~colm_graph.run.budget.PaidAccount` shared by all its
items, from which every paid call reserves its own worst case (so a cap that affords N
worst-case calls runs N calls at any concurrency), kept in a journal next to the results so
that a resumed eval counts everything the earlier part spent, calls in flight at a kill
included, and the calls of every item (failed ones too) collected as they are made.

An eval run by several worker processes (``--workers N``) shares one budget through a
:class:`~colm_graph.run.spend.SQLiteSpendStore` in its folder (``paid.sqlite``): each worker's
:class:`SharedEvalAccount` reserves every paid call's worst case there, in one transaction
that no other process can interleave with, against one cap of this part of the eval (the
eval's cap less what earlier parts spent), and journals it to the same ``paid.jsonl``."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from colm_graph.run.budget import PaidAccount, Reservation
from colm_graph.run.spend import Cap, Hold, SQLiteSpendStore, StoreAccount

__all__ = ["CallSink", "EvalAccount", "JOURNAL", "STORE", "SharedEvalAccount",
           "earlier_spent", "merged_records", "part_cap", "rows_spent"]

JOURNAL = "paid.jsonl"
"""The account's journal in the eval's folder: one line when a paid call reserves its worst
case (``{"hold": n, "usd": ..., "tokens": ...}``), one when it is settled with its real
cost (``{"settle": n, ...}``). Written before the request is sent. ``n`` counts the
reservations of one part of the eval (``part``), or is the spend store's hold id when worker
processes share the budget."""
STORE = "paid.sqlite"
"""The spend store an eval's worker processes share (see :class:`SharedEvalAccount`)."""
FOREVER_S = 10 * 365 * 86400.0
"""Time to live of a worker's reservation: it never expires while the eval's part runs, so
the worst case of a call in flight in a worker that died stays held (as the journal counts
it on ``--resume``) and no other worker can spend it."""


def rows_spent(results: Path) -> tuple[float, int]:
    """Paid USD and tokens of the rows in ``results`` (failed items included)."""
    usd, tokens = 0.0, 0
    if results.exists():
        for line in results.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                usd += float(row.get("paid_usd") or 0.0)
                tokens += int(row.get("paid_tokens") or 0)
    return usd, tokens


def journal_spent(path: Path) -> tuple[float, int]:
    """What the journal says was spent: every settled call at its real cost, and every call
    reserved but never settled (in flight when the process was killed) at its worst case.
    A line cut off by the kill is skipped."""
    if not path.exists():
        return 0.0, 0
    holds: dict[Any, tuple[float, int]] = {}
    usd, tokens = 0.0, 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(entry, dict):
            continue
        cost = float(entry.get("usd") or 0.0), int(entry.get("tokens") or 0)
        if "hold" in entry:
            holds[(entry.get("part"), entry["hold"])] = cost
        elif "settle" in entry:
            holds.pop((entry.get("part"), entry["settle"]), None)
            usd, tokens = usd + cost[0], tokens + cost[1]
    for held_usd, held_tokens in holds.values():
        usd, tokens = usd + held_usd, tokens + held_tokens
    return usd, tokens


def earlier_spent(out: Path) -> tuple[float, int]:
    """What earlier parts of the eval in ``out`` spent: the larger of what its rows and its
    journal say (USD and tokens apart)."""
    results_usd, results_tokens = rows_spent(out / "results.jsonl")
    journal_usd, journal_tokens = journal_spent(out / JOURNAL)
    return max(results_usd, journal_usd), max(results_tokens, journal_tokens)


class EvalAccount(PaidAccount):
    """The eval's :class:`PaidAccount`, seeded with what earlier parts of the eval spent
    and journaled to ``DIR/paid.jsonl``."""

    def __init__(self, usd: float | None, tokens: int | None, out: Path, *,
                 part: float) -> None:
        spent_usd, spent_tokens = earlier_spent(out)
        super().__init__(usd, tokens, spent_usd=spent_usd, spent_tokens=spent_tokens)
        self.earlier_usd, self.earlier_tokens = self.spent_usd, self.spent_tokens
        self._part = part
        self._file: IO[str] = (out / JOURNAL).open("a", encoding="utf-8")
        self._write_lock = threading.Lock()
        self._held: dict[int, int] = {}
        self._next = 0

    def _log(self, entry: dict[str, Any]) -> None:
        with self._write_lock:
            self._file.write(json.dumps({"part": self._part, **entry}) + "\n")
            self._file.flush()

    def reserve(self, usd: float, tokens: int) -> Reservation | None:
        held = super().reserve(usd, tokens)
        if held is not None:
            with self._write_lock:
                self._next += 1
                n = self._held[id(held)] = self._next
            self._log({"hold": n, "usd": usd, "tokens": tokens})
        return held

    def settle(self, reservation: Reservation | None, usd: float, tokens: int) -> None:
        super().settle(reservation, usd, tokens)
        with self._write_lock:
            n = self._held.pop(id(reservation), None) if reservation is not None else None
        self._log({"settle": n, "usd": usd, "tokens": tokens})

    def close(self) -> None:
        with self._write_lock:
            if not self._file.closed:
                self._file.close()


def part_cap(usd: float | None, tokens: int | None, earlier: tuple[float, int], *,
             part: float) -> Cap:
    """The cap of one part of an eval run by worker processes: the eval's caps less what
    earlier parts spent, in a scope of its own (so nothing an earlier part left held in
    the store counts twice: the journal has counted it already)."""
    return Cap(f"eval:{part!r}", None if usd is None else usd - earlier[0],
               None if tokens is None else tokens - earlier[1])


class SharedEvalAccount(StoreAccount):
    """One worker's account of an eval run by several processes: every paid call reserves
    its worst case against ``cap`` in the store ``out/paid.sqlite`` (atomically, across the
    processes: two workers can never both take the last dollar) and journals the
    reservation to ``out/paid.jsonl`` before the request is sent, and its settlement after,
    as :class:`EvalAccount` does; the journal keys reservations by ``part`` and the
    store's hold id (unique across workers)."""

    def __init__(self, out: Path, cap: Cap, *, part: float) -> None:
        super().__init__(SQLiteSpendStore(out / STORE), [cap], ttl_s=FOREVER_S)
        self._part = part
        self._file: IO[str] = (out / JOURNAL).open("a", encoding="utf-8")
        self._write_lock = threading.Lock()

    def _log(self, entry: dict[str, Any]) -> None:
        with self._write_lock:  # one write of one line: appends of processes stay whole
            self._file.write(json.dumps({"part": self._part, **entry}) + "\n")
            self._file.flush()

    def reserve(self, usd: float, tokens: int) -> Reservation | None:
        held = super().reserve(usd, tokens)
        if isinstance(held, Hold):
            self._log({"hold": held.hold_id, "usd": usd, "tokens": tokens})
        return held

    def settle(self, reservation: Reservation | None, usd: float, tokens: int) -> None:
        super().settle(reservation, usd, tokens)
        self._log({"settle": reservation.hold_id if isinstance(reservation, Hold) else None,
                   "usd": usd, "tokens": tokens})

    def close(self) -> None:
        with self._write_lock:
            if not self._file.closed:
                self._file.close()
        close = getattr(self.store, "close", None)
        if close is not None:
            close()


class CallSink:
    """``configurable["colm_call_sink"]`` of one item: every call record, as it is made."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def __call__(self, record: Mapping[str, Any]) -> None:
        self.records.append(dict(record))


def _key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(record.get(k) for k in ("node", "role", "model", "tier", "round", "stage",
                                         "started_at", "input_tokens", "output_tokens", "usd"))


def _flat(records: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    """Records with the failed paid calls a record carries (``earlier_calls``) before it."""
    for r in records:
        yield from r.get("earlier_calls") or ()
        yield r


def merged_records(sink: Iterable[Mapping[str, Any]], ledger: Iterable[Mapping[str, Any]]
                   ) -> list[dict[str, Any]]:
    """The item's calls: what the sink saw (the source of truth), plus any record of the
    run's ledger the sink did not see (a call made without the item's config). A call is
    counted once, however many of the two hold it."""
    out = [{k: v for k, v in r.items() if k != "earlier_calls"} for r in sink]
    seen = Counter(_key(r) for r in out)
    for r in _flat(ledger):
        key = _key(r)
        if seen[key] > 0:
            seen[key] -= 1
        else:
            out.append({k: v for k, v in r.items() if k != "earlier_calls"})
    return out
