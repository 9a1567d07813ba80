"""Idempotent requests for ``colm-graph serve``: a request that carries an ``Idempotency-Key``
header runs once; a repeat with the same key (a client's retry after a timeout, or the same
request sent twice at once) gets the first run's reply instead of a second run.

The first request with a key **claims** it for a lease (its run is working); a repeat that
finds the claim waits until the run is done and replies with its result, which is kept for
``keep_s``; a run that fails gives its claim up, so a retry runs again; a claim whose process
died expires with its lease. A repeat whose body differs from the first is refused (the key
names one request). The claims live beside the spend (SQLite file or Redis), so workers and
replicas share them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from colm_graph.core.sqlite import thread_connection

__all__ = ["Claim", "IdempotencyStore", "RedisIdempotency", "SQLiteIdempotency"]

State = Literal["run", "running", "done", "mismatch"]


@dataclass(frozen=True)
class Claim:
    """What a request with a key found: ``run`` (it claimed the key: run it), ``running``
    (another request is running it: wait), ``done`` (``result`` is the first run's),
    ``mismatch`` (the key was used for a different request)."""

    state: State
    result: dict[str, Any] | None = None


class IdempotencyStore(Protocol):
    def claim(self, scope: str, digest: str, lease_s: float) -> Claim: ...
    def finish(self, scope: str, result: dict[str, Any], keep_s: float) -> None: ...
    def abandon(self, scope: str) -> None: ...


_SCHEMA = """CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT PRIMARY KEY, digest TEXT NOT NULL, result TEXT, expires REAL NOT NULL)"""


class SQLiteIdempotency:
    """Claims in an SQLite file (WAL), one row per key; safe across processes."""

    def __init__(self, path: str | Path, *, clock: Any = time.time) -> None:
        self.path, self.clock = Path(path), clock
        self._local = threading.local()
        self._db().execute(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        return thread_connection(self._local, self.path)

    def claim(self, scope: str, digest: str, lease_s: float) -> Claim:
        now = self.clock()
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM idempotency WHERE expires <= ?", (now,))
            row = db.execute("SELECT digest, result FROM idempotency WHERE scope = ?",
                             (scope,)).fetchone()
            if row is None:
                db.execute("INSERT INTO idempotency VALUES (?, ?, NULL, ?)",
                           (scope, digest, now + lease_s))
                found = Claim("run")
            elif row[0] != digest:
                found = Claim("mismatch")
            elif row[1] is None:
                found = Claim("running")
            else:
                found = Claim("done", json.loads(row[1]))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return found

    def finish(self, scope: str, result: dict[str, Any], keep_s: float) -> None:
        self._db().execute("UPDATE idempotency SET result = ?, expires = ? WHERE scope = ?",
                           (json.dumps(result), self.clock() + keep_s, scope))

    def abandon(self, scope: str) -> None:
        self._db().execute("DELETE FROM idempotency WHERE scope = ? AND result IS NULL",
                           (scope,))


# KEYS[1]: the key's hash; ARGV: digest, lease in ms. Returns {state, result}.
_CLAIM = """
local digest = redis.call('HGET', KEYS[1], 'digest')
if not digest then
  redis.call('HSET', KEYS[1], 'digest', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'run', ''}
end
if digest ~= ARGV[1] then return {'mismatch', ''} end
local result = redis.call('HGET', KEYS[1], 'result')
if not result then return {'running', ''} end
return {'done', result}
"""


class RedisIdempotency:
    """Claims in Redis (one hash per key, expiring with its lease, then its keep time)."""

    def __init__(self, url: str, *, prefix: str = "colm-graph") -> None:
        import redis

        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self._claim = self.redis.register_script(_CLAIM)

    def _key(self, scope: str) -> str:
        return f"{self.prefix}:idem:{scope}"

    def claim(self, scope: str, digest: str, lease_s: float) -> Claim:
        state, result = self._claim(keys=[self._key(scope)],
                                    args=[digest, max(1, int(lease_s * 1000))])
        return Claim(state, json.loads(result) if result else None)

    def finish(self, scope: str, result: dict[str, Any], keep_s: float) -> None:
        key = self._key(scope)
        with self.redis.pipeline() as pipe:
            pipe.hset(key, "result", json.dumps(result))
            pipe.pexpire(key, max(1, int(keep_s * 1000)))
            pipe.execute()

    def abandon(self, scope: str) -> None:
        self.redis.delete(self._key(scope))
