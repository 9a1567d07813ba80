"""The operator file of ``colm-graph serve``: API keys (stored hashed) with the graphs each may
use, a paid budget per period, a request rate and per-request caps, plus a server-wide paid
budget, all kept in a spend store shared by every worker and replica
(:mod:`colm_graph.integrations.spend`).

.. code-block:: yaml

    store: spend.sqlite            # or redis://10.0.0.5:6379/0; relative to this file
    admin_token_env: COLM_ADMIN_TOKEN   # GET /v1/spend needs it
    reservation_ttl_s: 600         # longer than the longest paid call
    server: {paid_usd: 200, period: 30d}
    keys:
      alice:
        key_sha256: 5e88...        # sha256 hex of the key (colm-graph serve --hash-key)
        graphs: [single, route, colm]
        paid_usd: 5
        period: 30d
        requests_per_minute: 60
        max_paid_usd_per_request: 0.02

A request is refused before it runs with an OpenAI-shaped error: 401 for a missing or unknown
key, 403 for a graph the key may not use, 429 when the key's request rate is used up or when
its budget or the server's has nothing left. A run whose budget runs out mid-way goes on
local-only and is marked degraded, as a per-request cap does.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from colm_graph.core.validation import describe_error
from colm_graph.core.yamlfile import load_yaml
from colm_graph.errors import ColmGraphError, ConfigError
from colm_graph.integrations.idempotency import (
    IdempotencyStore,
    RedisIdempotency,
    SQLiteIdempotency,
)
from colm_graph.integrations.spend import (
    Cap,
    RedisSpendStore,
    SpendStore,
    SQLiteSpendStore,
    StoreAccount,
    parse_period,
)

__all__ = ["Admission", "KeyPolicy", "Operator", "Refused", "hash_key"]

_STRICT = ConfigDict(extra="forbid", strict=True)
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def hash_key(key: str) -> str:
    """The ``key_sha256`` of an API key: SHA-256 of its UTF-8 bytes, in hex."""
    return hashlib.sha256(key.strip().encode("utf-8")).hexdigest()


class _Budget(BaseModel):
    model_config = _STRICT
    paid_usd: float | None = Field(default=None, ge=0)
    paid_tokens: int | None = Field(default=None, ge=0)
    period: str | None = None

    @field_validator("period")
    @classmethod
    def _period(cls, value: str | None) -> str | None:
        try:
            parse_period(value)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("period: ")) from None
        return value


class _Key(_Budget):
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    graphs: list[str] | None = None
    requests_per_minute: int | None = Field(default=None, ge=1)
    max_paid_usd_per_request: float | None = Field(default=None, ge=0)
    max_paid_tokens_per_request: int | None = Field(default=None, ge=0)


class _OperatorFile(BaseModel):
    model_config = _STRICT
    store: str | None = None
    admin_token_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    reservation_ttl_s: float = Field(default=600.0, gt=0)
    server: _Budget = Field(default_factory=_Budget)
    keys: dict[str, _Key] = Field(min_length=1)


@dataclass(frozen=True)
class KeyPolicy:
    """What one API key may do."""

    name: str
    digest: str
    graphs: frozenset[str] | None
    """``None``: every served graph."""
    budget: Cap
    requests_per_minute: int | None
    max_paid_usd: float | None
    """Per request."""
    max_paid_tokens: int | None


@dataclass(frozen=True)
class Admission:
    """A request let in: its key, the account its paid calls draw on and its run caps."""

    key: KeyPolicy
    account: StoreAccount
    configurable: dict[str, Any]


class Refused(ColmGraphError):
    """A request the operator's rules turn away: ``status``, OpenAI ``code``, message."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _open_store(spec: str, base: Path) -> tuple[SpendStore, IdempotencyStore]:
    """The spend store and the idempotency claims beside it."""
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisSpendStore(spec), RedisIdempotency(spec)
    path = Path(spec.removeprefix("sqlite:///"))
    path = path if path.is_absolute() else base / path
    return SQLiteSpendStore(path), SQLiteIdempotency(path)


class Operator:
    """The operator's keys, budgets and store, loaded from a file (:meth:`from_yaml`).

    Args:
        keys: the key policies.
        server: the server-wide budget.
        store: where spend and request counts are kept.
        admin_token: the token ``GET /v1/spend`` needs (``None``: the endpoint is off).
        ttl_s: a paid call's reservation time to live.
    """

    def __init__(self, keys: Sequence[KeyPolicy], server: Cap, store: SpendStore, *,
                 admin_token: str | None = None, ttl_s: float = 600.0,
                 idempotency: IdempotencyStore | None = None) -> None:
        self.keys = {k.digest: k for k in keys}
        self.idempotency = idempotency
        self.server, self.store = server, store
        self.admin_token, self.ttl_s = admin_token, ttl_s

    @classmethod
    def from_yaml(cls, path: str | Path, *, env: Mapping[str, str] | None = None) -> Operator:
        """Load and check an operator file; :class:`ConfigError` names the file, line and
        field of a mistake."""
        env = os.environ if env is None else env
        doc = load_yaml(path, what="operator file")
        if not isinstance(doc.data, Mapping):
            raise ConfigError(f"{doc.source}: expected a mapping with a 'keys' mapping")
        try:
            parsed = _OperatorFile.model_validate(doc.data)
        except ValidationError as exc:
            raise ConfigError(describe_error(exc, doc.where, model=_OperatorFile)) from None
        keys: list[KeyPolicy] = []
        seen: dict[str, str] = {}
        for name, k in parsed.keys.items():
            if not re.match(_NAME, name):
                raise ConfigError(f"{doc.where(['keys', name])}: expected a key name of"
                                  f" letters, digits, '_', '.' or '-', got {name!r}")
            if k.key_sha256 in seen:
                raise ConfigError(f"{doc.where(['keys', name, 'key_sha256'])}: the same key"
                                  f" as {seen[k.key_sha256]!r}")
            seen[k.key_sha256] = name
            keys.append(KeyPolicy(
                name, k.key_sha256, None if k.graphs is None else frozenset(k.graphs),
                Cap(f"key:{name}", k.paid_usd, k.paid_tokens, parse_period(k.period)),
                k.requests_per_minute, k.max_paid_usd_per_request,
                k.max_paid_tokens_per_request))
        admin = None
        if parsed.admin_token_env is not None:
            admin = env.get(parsed.admin_token_env, "").strip()
            if not admin:
                raise ConfigError(f"{doc.where(['admin_token_env'])}: environment variable"
                                  f" {parsed.admin_token_env} is not set")
        server = Cap("server", parsed.server.paid_usd, parsed.server.paid_tokens,
                     parse_period(parsed.server.period))
        base = Path(path).resolve().parent
        store, claims = _open_store(parsed.store or "spend.sqlite", base)
        return cls(keys, server, store, admin_token=admin, ttl_s=parsed.reservation_ttl_s,
                   idempotency=claims)

    def check_graphs(self, served: Sequence[str]) -> None:
        """Every graph a key names must be served."""
        for key in self.keys.values():
            unknown = sorted((key.graphs or frozenset()) - set(served))
            if unknown:
                raise ConfigError(f"keys.{key.name}.graphs: {unknown[0]!r} is not served"
                                  f" (served: {', '.join(served)})")

    def key_for(self, bearer: str | None) -> KeyPolicy:
        """The policy of the key sent, or :class:`Refused` (401)."""
        if not bearer:
            raise Refused(401, "missing API key: send the header 'Authorization: Bearer"
                          " <key>'", "invalid_api_key")
        digest = hash_key(bearer)
        for known, policy in self.keys.items():
            if hmac.compare_digest(known, digest):
                return policy
        raise Refused(401, "incorrect API key provided", "invalid_api_key")

    def admit(self, key: KeyPolicy, graph: str) -> Admission:
        """Let one request of ``key`` for ``graph`` in, or :class:`Refused` (403, 429)."""
        if key.graphs is not None and graph not in key.graphs:
            raise Refused(403, f"key {key.name!r} may not use model {graph!r} (allowed:"
                          f" {', '.join(sorted(key.graphs))})", "model_not_allowed")
        if key.requests_per_minute is not None and \
                not self.store.admit(f"key:{key.name}", key.requests_per_minute, 60):
            raise Refused(429, f"key {key.name!r}: rate limit of {key.requests_per_minute}"
                          " requests per minute reached", "rate_limit_exceeded")
        caps = [self.server, key.budget]  # unlimited ones too: their spend is kept
        for cap in caps:
            if cap.usd is None and cap.tokens is None:
                continue
            one = self.store.available([cap])
            if (one.usd is not None and one.usd <= 1e-12) or \
                    (one.tokens is not None and one.tokens <= 0):
                who = "the server's" if cap is self.server else f"key {key.name!r}'s"
                raise Refused(429, f"{who} paid budget for this period is used up",
                              "insufficient_quota")
        conf: dict[str, Any] = {}
        if key.max_paid_usd is not None:
            conf["max_paid_usd"] = key.max_paid_usd
        if key.max_paid_tokens is not None:
            conf["max_paid_tokens"] = key.max_paid_tokens
        return Admission(key, StoreAccount(self.store, caps, ttl_s=self.ttl_s), conf)

    def spend(self) -> dict[str, Any]:
        """Spend of this period: the server's and each key's (settled and held)."""
        def row(cap: Cap) -> dict[str, Any]:
            usd, tokens, held_usd, held_tokens = self.store.spent(cap)
            return {"paid_usd": usd, "paid_tokens": tokens, "held_usd": held_usd,
                    "held_tokens": held_tokens, "cap_usd": cap.usd, "cap_tokens": cap.tokens,
                    "period_s": cap.period_s}

        return {"server": row(self.server),
                "keys": {k.name: row(k.budget) for k in self.keys.values()}}
