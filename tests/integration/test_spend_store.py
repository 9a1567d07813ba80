"""Paid spend shared by processes (``colm_graph.integrations.spend``): atomic reservations
against several caps at once in SQLite and in a real Redis (``redis-server`` started by the
test on 127.0.0.1), hammered by several processes; expiry of a dead process's holds;
periods; and a protocol run drawing on a store through ``configurable["colm_account"]``."""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from colm_graph import ModelPool, ledger_totals, load_graph
from colm_graph.errors import ConfigError
from colm_graph.integrations.spend import (
    Cap,
    RedisSpendStore,
    SQLiteSpendStore,
    StoreAccount,
    parse_period,
    period_start,
)
from tests.support.redis_server import running_redis

pytestmark = pytest.mark.integration

SERVER = Cap("server", usd=1.0, period_s=86400)
KEY_A = Cap("key:a", usd=0.30, tokens=20_000, period_s=30 * 86400)
KEY_B = Cap("key:b", usd=0.60, period_s=30 * 86400)
HOLD = 0.01  # each call's worst case


def _open(where: str) -> Any:
    return RedisSpendStore(where) if where.startswith("redis://") else SQLiteSpendStore(where)


def _hammer(where: str, seed: int, calls: int) -> tuple[int, float]:
    """One process: ``calls`` paid calls, each reserving its worst case against the server cap
    and one key's cap, then settling to a random actual cost at most the worst case."""
    store = _open(where)
    rng = random.Random(seed)
    made, spent = 0, 0.0
    for _ in range(calls):
        key = KEY_A if rng.random() < 0.5 else KEY_B
        hold = store.reserve([SERVER, key], HOLD, 100, ttl_s=60)
        if hold is None:
            continue
        time.sleep(rng.random() * 0.002)  # the call
        cost = round(HOLD * rng.uniform(0.5, 1.0), 6)
        store.settle(hold, cost, 80)
        made, spent = made + 1, spent + cost
    store.close()
    return made, spent


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


@pytest.fixture(params=["sqlite", "redis"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "spend.sqlite")
    url: str = request.getfixturevalue("redis_url")
    import redis

    redis.Redis.from_url(url).flushdb()
    return url


def test_periods() -> None:
    assert parse_period("30d") == 30 * 86400 and parse_period("12h") == 43200
    assert parse_period("15m") == 900 and parse_period(90) == 90.0 and parse_period(None) is None
    with pytest.raises(ConfigError, match="keys.alice.period: expected a period"):
        parse_period("monthly", where="keys.alice.period")
    assert period_start(86400, 86400 * 3 + 5) == 86400 * 3 and period_start(None, 123.0) == 0


def test_processes_never_spend_past_any_cap(where: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_hammer, [(where, seed, 60) for seed in range(4)])
    store = _open(where)
    server = store.spent(SERVER)
    a, b = store.spent(KEY_A), store.spent(KEY_B)
    made = sum(m for m, _ in results)
    assert server[0] == pytest.approx(sum(s for _, s in results), abs=1e-9)
    assert server[2] == 0 and a[2] == 0 and b[2] == 0  # nothing left held
    assert server[0] <= SERVER.usd + 1e-9  # type: ignore[operator]
    assert a[0] <= KEY_A.usd + 1e-9 and b[0] <= KEY_B.usd + 1e-9  # type: ignore[operator]
    assert a[0] + b[0] == pytest.approx(server[0], abs=1e-9)
    # 240 attempts against caps that afford ~90 worst cases: the caps, not luck, stopped them
    assert 60 <= made < 240
    assert server[1] == 80 * made == a[1] + b[1]  # every settled call's tokens, counted once


def test_a_dead_process_holds_expire(where: str) -> None:
    now = [1_000_000.0]
    store = RedisSpendStore(where, clock=lambda: now[0]) if where.startswith("redis") \
        else SQLiteSpendStore(where, clock=lambda: now[0])
    cap = Cap("server", usd=0.05)
    held = [store.reserve([cap], HOLD, 10, ttl_s=30) for _ in range(5)]
    assert all(h is not None for h in held)
    assert store.reserve([cap], HOLD, 10, ttl_s=30) is None  # all held by the "dead" process
    assert store.available([cap]).usd == pytest.approx(0.0, abs=1e-9)
    now[0] += 31  # its reservations expire
    assert store.available([cap]).usd == pytest.approx(0.05)
    hold = store.reserve([cap], HOLD, 10, ttl_s=30)
    assert hold is not None
    store.settle(hold, 0.004, 7)
    assert store.spent(cap)[:2] == (pytest.approx(0.004), 7)


def test_a_new_period_renews_the_budget(where: str) -> None:
    now = [86400.0 * 100 + 10]
    store = RedisSpendStore(where, clock=lambda: now[0]) if where.startswith("redis") \
        else SQLiteSpendStore(where, clock=lambda: now[0])
    daily = Cap("key:day", usd=0.02, period_s=86400)
    for _ in range(2):
        hold = store.reserve([daily], HOLD, 1, ttl_s=5)
        assert hold is not None
        store.settle(hold, HOLD, 1)
    assert store.reserve([daily], HOLD, 1, ttl_s=5) is None
    now[0] += 86400
    assert store.available([daily]).usd == pytest.approx(0.02)
    assert store.spent(daily, now=now[0] - 86400)[0] == pytest.approx(0.02)  # kept


def test_a_run_draws_on_the_store(tmp_path: Path) -> None:
    store = SQLiteSpendStore(tmp_path / "spend.sqlite")
    caps = [Cap("server", usd=10.0), Cap("key:a", usd=5.0)]
    graph = load_graph("colm", pool=ModelPool.default(),
                       params={"skip_guidance_when_agreed": False})
    state = graph.invoke({"question": "Compute 32 times 15, plus 60."},
                         {"configurable": {"colm_account": StoreAccount(store, caps)}})
    paid = ledger_totals(state["ledger"])["paid_usd"]
    assert paid > 0
    for cap in caps:
        usd, _, held_usd, _ = store.spent(cap)
        assert usd == pytest.approx(paid) and held_usd == 0
    tight = [Cap("key:poor", usd=0.0)]  # nothing left: the run goes local-only, degraded
    state = graph.invoke({"question": "Compute 32 times 15, plus 60."},
                         {"configurable": {"colm_account": StoreAccount(store, tight)}})
    assert ledger_totals(state["ledger"])["paid_calls"] == 0 and state["degraded"]
