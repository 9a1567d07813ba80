"""Paid spend kept in a store shared by processes: one cap across workers and replicas.

A served request's paid calls draw on several budgets at once: its API key's budget for the
current period, the server-wide budget for its period, and the request's own cap. Each is a
:class:`Cap` (a scope name, USD and/or token limits, a period). Before a paid call starts, its
worst case is **reserved** against every cap of the request in one atomic step (refused, with
nothing held, when any cap cannot afford it); when the call ends it is **settled** to what it
really cost; a call that fails or is cancelled is settled to what is known of it. A
reservation not settled within its time to live (its process died) **expires** and stops
holding. Hence, whatever the number of processes and threads: the settled spend of a scope
in a period never exceeds its cap, except by calls that outlived their reservation's time to
live (keep ``ttl_s`` above the longest paid call's timeout).

Periods are fixed windows aligned to the Unix epoch (``30d``: the 30-day window that holds
now, counted in UTC), so every process agrees on them without talking.

Backends: :class:`SQLiteSpendStore` (one file, shared by the workers of one machine; each
reservation is one ``BEGIN IMMEDIATE`` transaction) and :class:`RedisSpendStore` (shared by
replicas on several machines; each reservation is one Lua script, which Redis runs
atomically). :class:`StoreAccount` makes a store look like a
:class:`~colm_graph.run.budget.PaidAccount` for one request, so that the model-call layer
(``configurable["colm_account"]``) uses it unchanged. The caps, the SQLite backend and the
account live in :mod:`colm_graph.run.spend` (an eval run by several worker processes shares
its budget through them too) and are re-exported here.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

from colm_graph.errors import ConfigError
from colm_graph.run.budget import Allowance
from colm_graph.run.spend import (
    Cap,
    Hold,
    SpendStore,
    SQLiteSpendStore,
    StoreAccount,
    period_start,
    tightest,
)

__all__ = [
    "Cap",
    "Hold",
    "RedisSpendStore",
    "SQLiteSpendStore",
    "SpendStore",
    "StoreAccount",
    "parse_period",
    "period_start",
]

_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_period(text: str | float | int | None, *, where: str = "period") -> float | None:
    """Seconds of a period written ``30d``, ``12h``, ``15m``, ``90s``, ``2w`` (or a number of
    seconds); ``None`` for none (the budget never renews)."""
    if text is None:
        return None
    if isinstance(text, int | float) and not isinstance(text, bool) and text > 0:
        return float(text)
    m = _PERIOD.match(str(text)) if isinstance(text, str) else None
    if m is None or float(m.group(1)) <= 0:
        raise ConfigError(f"{where}: expected a period such as 30d, 12h or 15m, got {text!r}")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


# -- Redis --------------------------------------------------------------------------------------
# KEYS: the buckets' spend hashes then their holds hashes; ARGV: now, usd, tokens, ttl, id,
# then each bucket's usd cap and token cap ("" for none). A hold is a field of the bucket's
# holds hash: "<usd> <tokens> <expires>".
_RESERVE = """
local n = #KEYS / 2
local now, usd, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl, id = tonumber(ARGV[4]), ARGV[5]
for i = 1, n do
  local held_usd, held_tok = 0, 0
  local holds = redis.call('HGETALL', KEYS[n + i])
  for j = 1, #holds, 2 do
    local u, t, e = string.match(holds[j + 1], '(%S+) (%S+) (%S+)')
    if tonumber(e) <= now then
      redis.call('HDEL', KEYS[n + i], holds[j])
    else
      held_usd = held_usd + tonumber(u)
      held_tok = held_tok + tonumber(t)
    end
  end
  local cap_usd, cap_tok = ARGV[5 + 2 * i - 1], ARGV[5 + 2 * i]
  local spent_usd = tonumber(redis.call('HGET', KEYS[i], 'usd') or '0')
  local spent_tok = tonumber(redis.call('HGET', KEYS[i], 'tokens') or '0')
  if cap_usd ~= '' and usd > tonumber(cap_usd) - spent_usd - held_usd + 1e-12 then
    return 0
  end
  if cap_tok ~= '' and tokens > tonumber(cap_tok) - spent_tok - held_tok then
    return 0
  end
end
for i = 1, n do
  redis.call('HSET', KEYS[n + i], id, ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. (now + ttl))
end
return 1
"""
_SETTLE = """
local n = #KEYS / 2
for i = 1, n do
  redis.call('HDEL', KEYS[n + i], ARGV[1])
  redis.call('HINCRBYFLOAT', KEYS[i], 'usd', ARGV[2])
  redis.call('HINCRBY', KEYS[i], 'tokens', ARGV[3])
  redis.call('HINCRBY', KEYS[i], 'calls', 1)
end
return 1
"""
_ADMIT = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RedisSpendStore:
    """Spend in Redis, shared by replicas on several machines.

    Args:
        url: ``redis://host:port/db``.
        prefix: the keys' prefix (several servers may share one Redis).
        clock: as for :class:`SQLiteSpendStore`.
    """

    def __init__(self, url: str, *, prefix: str = "colm-graph", clock: Any = time.time
                 ) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigError("--store redis://...: needs the redis client"
                              " (pip install 'colm-graph[serve]')") from None
        self.url, self.prefix, self.clock = url, prefix, clock
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            raise ConfigError(f"--store {url}: cannot reach Redis: {exc}") from None
        self._reserve = self.redis.register_script(_RESERVE)
        self._settle = self.redis.register_script(_SETTLE)
        self._admit = self.redis.register_script(_ADMIT)

    def _keys(self, buckets: Sequence[str]) -> list[str]:
        return ([f"{self.prefix}:spend:{b}" for b in buckets]
                + [f"{self.prefix}:holds:{b}" for b in buckets])

    def reserve(self, caps: Sequence[Cap], usd: float, tokens: int, *,
                ttl_s: float) -> Hold | None:
        now = self.clock()
        buckets = tuple(c.bucket(now) for c in caps)
        hold_id = uuid.uuid4().hex
        limits: list[str] = []
        for c in caps:
            limits += ["" if c.usd is None else repr(float(c.usd)),
                       "" if c.tokens is None else str(int(c.tokens))]
        ok = self._reserve(keys=self._keys(buckets),
                           args=[repr(now), repr(float(usd)), str(int(tokens)),
                                 repr(float(ttl_s)), hold_id, *limits])
        return Hold(usd, tokens, hold_id, buckets) if int(ok) == 1 else None

    def settle(self, hold: Hold, usd: float, tokens: int) -> None:
        self._settle(keys=self._keys(hold.buckets),
                     args=[hold.hold_id, repr(float(usd)), str(int(tokens))])

    def _used(self, bucket: str, now: float) -> tuple[float, int, float, int]:
        spend = self.redis.hgetall(f"{self.prefix}:spend:{bucket}")
        held_usd, held_tok = 0.0, 0
        for value in self.redis.hvals(f"{self.prefix}:holds:{bucket}"):
            u, t, e = value.split()
            if float(e) > now:
                held_usd, held_tok = held_usd + float(u), held_tok + int(t)
        return float(spend.get("usd", 0.0)), int(spend.get("tokens", 0)), held_usd, held_tok

    def available(self, caps: Sequence[Cap]) -> Allowance:
        now = self.clock()
        return tightest(caps, [self._used(c.bucket(now), now) for c in caps])

    def spent(self, cap: Cap, *, now: float | None = None) -> tuple[float, int, float, int]:
        now = self.clock() if now is None else now
        return self._used(cap.bucket(now), now)

    def admit(self, scope: str, limit: int, window_s: float) -> bool:
        start = period_start(window_s, self.clock())
        key = f"{self.prefix}:rate:{scope}@{start}"
        return int(self._admit(keys=[key], args=[int(limit), int(window_s) + 1])) == 1

    def close(self) -> None:
        self.redis.close()
