"""Paid spend kept in a store shared by processes: one cap across workers and replicas.

A budget that several processes draw on (a server's workers, an eval's worker processes) is
one or more :class:`Cap` (a scope name, USD and/or token limits, a period). Before a paid
call starts, its worst case is **reserved** against every cap it draws on in one atomic step
(refused, with nothing held, when any cap cannot afford it); when the call ends it is
**settled** to what it really cost; a call that fails or is cancelled is settled to what is
known of it. A reservation not settled within its time to live (its process died)
**expires** and stops holding. Hence, whatever the number of processes and threads: the
settled spend of a scope in a period never exceeds its cap, except by calls that outlived
their reservation's time to live (keep ``ttl_s`` above the longest paid call's timeout).

Periods are fixed windows aligned to the Unix epoch (``30d``: the 30-day window that holds
now, counted in UTC), so every process agrees on them without talking.

:class:`SQLiteSpendStore` keeps the spend in one file shared by the processes of one machine
(each reservation is one ``BEGIN IMMEDIATE`` transaction);
:mod:`colm_graph.integrations.spend` adds a Redis backend for replicas on several machines.
:class:`StoreAccount` makes a store look like a :class:`~colm_graph.run.budget.PaidAccount`,
so that the model-call layer (``configurable["colm_account"]``) uses it unchanged.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from colm_graph.core.sqlite import thread_connection
from colm_graph.errors import ConfigError
from colm_graph.run.budget import Allowance, Reservation

__all__ = ["Cap", "Hold", "SQLiteSpendStore", "SpendStore", "StoreAccount", "period_start",
           "tightest"]


def period_start(period_s: float | None, now: float) -> int:
    """The start (Unix seconds) of the window of ``period_s`` that holds ``now``; 0 when the
    budget has no period."""
    if period_s is None:
        return 0
    return int(now // period_s * period_s)


@dataclass(frozen=True)
class Cap:
    """One budget a request draws on: ``scope`` names it (``server``, ``key:<id>``,
    ``request:<id>``); ``None`` limits are unlimited; ``period_s`` ``None``: never renews."""

    scope: str
    usd: float | None = None
    tokens: int | None = None
    period_s: float | None = None

    def bucket(self, now: float) -> str:
        """The store key of this cap's spend in the period that holds ``now``."""
        return f"{self.scope}@{period_start(self.period_s, now)}"


@dataclass(frozen=True)
class Hold(Reservation):
    """A reservation held in a store: its id and the buckets it counts against."""

    hold_id: str = ""
    buckets: tuple[str, ...] = ()


class SpendStore(Protocol):
    """Atomic reservations of paid spend against several caps at once."""

    def reserve(self, caps: Sequence[Cap], usd: float, tokens: int, *,
                ttl_s: float) -> Hold | None:
        """Hold ``usd``/``tokens`` against every cap, or nothing (``None``) when one cannot
        afford it."""
        ...

    def settle(self, hold: Hold, usd: float, tokens: int) -> None:
        """Release ``hold`` and count ``usd``/``tokens`` as spent in its buckets."""
        ...

    def available(self, caps: Sequence[Cap]) -> Allowance:
        """What is left of the tightest cap after spend and live reservations."""
        ...

    def spent(self, cap: Cap, *, now: float | None = None) -> tuple[float, int, float, int]:
        """``(settled USD, settled tokens, held USD, held tokens)`` of ``cap``'s current
        period (held: live reservations)."""
        ...

    def admit(self, scope: str, limit: int, window_s: float) -> bool:
        """Count one request of ``scope`` in the current fixed window of ``window_s``;
        ``False`` (not counted) when ``limit`` requests were already counted there."""
        ...


def tightest(caps: Sequence[Cap], used: Sequence[tuple[float, int, float, int]]) -> Allowance:
    """What is left of the tightest of ``caps``, given each one's ``(settled USD, settled
    tokens, held USD, held tokens)``."""
    usd = [c.usd - (u[0] + u[2]) for c, u in zip(caps, used, strict=True) if c.usd is not None]
    tok = [c.tokens - (u[1] + u[3]) for c, u in zip(caps, used, strict=True)
           if c.tokens is not None]
    return Allowance(min(usd) if usd else None, min(tok) if tok else None)


# -- SQLite -------------------------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (bucket TEXT PRIMARY KEY, usd REAL NOT NULL DEFAULT 0,
                                  tokens INTEGER NOT NULL DEFAULT 0,
                                  calls INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS holds (id TEXT NOT NULL, bucket TEXT NOT NULL, usd REAL NOT NULL,
                                  tokens INTEGER NOT NULL, expires REAL NOT NULL,
                                  PRIMARY KEY (id, bucket));
CREATE INDEX IF NOT EXISTS holds_bucket ON holds (bucket, expires);
CREATE TABLE IF NOT EXISTS rates (bucket TEXT PRIMARY KEY, n INTEGER NOT NULL);
"""


class SQLiteSpendStore:
    """Spend in one SQLite file (WAL), safe across the processes and threads of one machine.

    Args:
        path: the database file (created with its tables when missing).
        clock: seconds since the epoch (tests pass their own to cross a period or expire
            a reservation).
    """

    def __init__(self, path: str | Path, *, clock: Any = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self._local = threading.local()
        try:
            with self._db() as db:
                db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise ConfigError(f"{self.path}: cannot open the spend store: {exc}") from None

    def _db(self) -> sqlite3.Connection:
        return thread_connection(self._local, self.path)

    def _used(self, db: sqlite3.Connection, bucket: str, now: float
              ) -> tuple[float, int, float, int]:
        row = db.execute("SELECT usd, tokens FROM spend WHERE bucket = ?", (bucket,)).fetchone()
        held = db.execute("SELECT COALESCE(SUM(usd), 0), COALESCE(SUM(tokens), 0) FROM holds"
                          " WHERE bucket = ? AND expires > ?", (bucket, now)).fetchone()
        return (float(row[0]) if row else 0.0, int(row[1]) if row else 0,
                float(held[0]), int(held[1]))

    def reserve(self, caps: Sequence[Cap], usd: float, tokens: int, *,
                ttl_s: float) -> Hold | None:
        now = self.clock()
        buckets = tuple(c.bucket(now) for c in caps)
        hold_id = uuid.uuid4().hex
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM holds WHERE expires <= ?", (now,))
            left = tightest(caps, [self._used(db, b, now) for b in buckets])
            if (left.usd is not None and usd > left.usd + 1e-12) or \
                    (left.tokens is not None and tokens > left.tokens):
                db.execute("COMMIT")
                return None
            db.executemany("INSERT INTO holds VALUES (?, ?, ?, ?, ?)",
                           [(hold_id, b, usd, tokens, now + ttl_s) for b in buckets])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return Hold(usd, tokens, hold_id, buckets)

    def settle(self, hold: Hold, usd: float, tokens: int) -> None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM holds WHERE id = ?", (hold.hold_id,))
            for b in hold.buckets:
                db.execute("INSERT INTO spend (bucket, usd, tokens, calls) VALUES (?, ?, ?, 1)"
                           " ON CONFLICT(bucket) DO UPDATE SET usd = usd + excluded.usd,"
                           " tokens = tokens + excluded.tokens, calls = calls + 1",
                           (b, usd, tokens))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def available(self, caps: Sequence[Cap]) -> Allowance:
        now = self.clock()
        db = self._db()
        return tightest(caps, [self._used(db, c.bucket(now), now) for c in caps])

    def spent(self, cap: Cap, *, now: float | None = None) -> tuple[float, int, float, int]:
        now = self.clock() if now is None else now
        return self._used(self._db(), cap.bucket(now), now)

    def admit(self, scope: str, limit: int, window_s: float) -> bool:
        now = self.clock()
        start = period_start(window_s, now)
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            head = f"{scope}@"  # earlier windows of this scope are done with
            db.execute("DELETE FROM rates WHERE substr(bucket, 1, ?) = ? AND bucket != ?",
                       (len(head), head, f"{head}{start}"))
            row = db.execute("SELECT n FROM rates WHERE bucket = ?",
                             (f"{scope}@{start}",)).fetchone()
            ok = (row[0] if row else 0) < limit
            if ok:
                db.execute("INSERT INTO rates VALUES (?, 1) ON CONFLICT(bucket) DO UPDATE SET"
                           " n = n + 1", (f"{scope}@{start}",))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return ok

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


# -- an account over a store -----------------------------------------------------------------------
class StoreAccount:
    """A :class:`~colm_graph.run.budget.PaidAccount` look-alike over a store for one request
    (or one worker of an eval): every paid call reserves against all of ``caps`` at once
    (see the module doc)."""

    def __init__(self, store: SpendStore, caps: Sequence[Cap], *, ttl_s: float = 600.0
                 ) -> None:
        self.store, self.caps, self.ttl_s = store, tuple(caps), ttl_s
        self.spent_usd, self.spent_tokens, self.calls = 0.0, 0, 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StoreAccount({', '.join(c.scope for c in self.caps)})"

    def available(self) -> Allowance:
        return self.store.available(self.caps)

    def reserve(self, usd: float, tokens: int) -> Reservation | None:
        return self.store.reserve(self.caps, usd, tokens, ttl_s=self.ttl_s)

    def settle(self, reservation: Reservation | None, usd: float, tokens: int) -> None:
        if isinstance(reservation, Hold):
            self.store.settle(reservation, usd, tokens)
        with self._lock:
            self.spent_usd += usd
            self.spent_tokens += tokens
            self.calls += 1
