"""``colm-graph serve`` with an operator file (``colm_graph.integrations.operator``): API keys
stored hashed with allowed graphs, request rates and paid budgets; a server-wide budget;
refusals in OpenAI's shape through the official ``openai`` client; ``/health`` and
``/v1/spend``. The paid model is a local fake OpenAI-compatible server whose own count of
tokens is the check on what the store says was spent."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from colm_graph import ModelPool
from colm_graph.integrations.operator import Operator, hash_key
from colm_graph.integrations.serve import create_app
from colm_graph.integrations.spend import Cap
from tests.support.openai_server import FakeOpenAIServer
from tests.support.pools import small_big_pool
from tests.support.serving import serving

pytestmark = pytest.mark.integration

PRICE = (2.5, 10.0)  # USD per million input / output tokens of the paid model
KEYS = {"alice": "sk-alice-7d1e0c", "bob": "sk-bob-93aa41", "carol": "sk-carol-55b2f0"}
ADMIN = "admin-token-0c9f2e"
QUESTION = "What is 17 * 23 + 48?"


def write_operator(path: Path, keys: dict[str, dict[str, Any]],
                   server: dict[str, Any] | None = None) -> Path:
    doc: dict[str, Any] = {"store": "spend.sqlite", "admin_token_env": "COLM_TEST_ADMIN",
                           "keys": {name: {"key_sha256": hash_key(KEYS[name]), **fields}
                                    for name, fields in keys.items()}}
    if server is not None:
        doc["server"] = server
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(responder=lambda body: "The result is 439.\n\nAnswer: 439") as srv:
        yield srv


@pytest.fixture
def pool(tmp_path: Path, fake: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> ModelPool:
    monkeypatch.setenv("COLM_TEST_KEY", "sk-paid-test")
    monkeypatch.setenv("COLM_TEST_ADMIN", ADMIN)
    return ModelPool.from_yaml(small_big_pool(tmp_path / "models.yaml", fake.base_url,
                                              price=PRICE, big={"max_tokens": 40}))


def client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)


def ask(url: str, key: str, model: str = "moa") -> Any:
    with client(url, key) as c:
        return c.chat.completions.create(model=model,
                                         messages=[{"role": "user", "content": QUESTION}])


def paid_usd_seen(fake: FakeOpenAIServer) -> float:
    """What the paid model's requests cost, from the fake server's own token counts."""
    return sum(r["prompt_tokens"] * PRICE[0] / 1e6 + r["completion_tokens"] * PRICE[1] / 1e6
               for r in fake.chat_requests if r["model"] == "big" and r["status"] == 200)


def test_keys_graphs_and_rates_are_enforced(tmp_path: Path, pool: ModelPool) -> None:
    op = Operator.from_yaml(write_operator(tmp_path / "operator.yaml", {
        "alice": {"graphs": ["single"], "requests_per_minute": 2},
        "bob": {}}))
    with serving(create_app(pool, graphs=["single", "moa"], operator=op)) as url:
        assert httpx.get(url.removesuffix("/v1") + "/health").json()["status"] == "ok"
        with pytest.raises(openai.AuthenticationError, match="incorrect API key"):
            ask(url, "sk-nobody")
        with pytest.raises(openai.PermissionDeniedError, match="may not use model 'moa'"):
            ask(url, KEYS["alice"], "moa")  # refused before its rate is counted
        ask(url, KEYS["alice"], "single")
        ask(url, KEYS["alice"], "single")
        with pytest.raises(openai.RateLimitError) as info:
            ask(url, KEYS["alice"], "single")
        assert info.value.code == "rate_limit_exceeded"
        assert ask(url, KEYS["bob"], "moa").choices[0].message.content  # bob is not limited
        with client(url, KEYS["bob"]) as c:
            assert [m.id for m in c.models.list()] == ["single", "moa"]


def test_concurrent_requests_never_spend_past_the_key_or_server_cap(
        tmp_path: Path, pool: ModelPool, fake: FakeOpenAIServer) -> None:
    op = Operator.from_yaml(write_operator(
        tmp_path / "operator.yaml",
        {"alice": {"paid_usd": 0.004, "period": "30d"}, "bob": {"paid_usd": 1.0},
         "carol": {}},
        server={"paid_usd": 0.009, "period": "1d"}))
    outcomes: list[Any] = []
    with serving(create_app(pool, graphs=["moa"], operator=op)) as url:
        def one(i: int) -> Any:
            try:
                return ask(url, KEYS[("alice", "bob", "carol")[i % 3]])
            except openai.RateLimitError as exc:
                return exc

        with concurrent.futures.ThreadPoolExecutor(24) as ex:
            outcomes = list(ex.map(one, range(60)))
        admin = {"Authorization": f"Bearer {ADMIN}"}
        spend = httpx.get(url + "/spend", headers=admin).json()
        assert httpx.get(url + "/spend").status_code == 401
        root = url.removesuffix("/v1")
        assert httpx.get(root + "/metrics").status_code == 401
        metrics = _samples(httpx.get(root + "/metrics", headers=admin).text)
    seen = paid_usd_seen(fake)
    server_usd = op.store.spent(op.server)[0]
    keys = {k: op.store.spent(Cap(f"key:{k}", period_s=p))[0]
            for k, p in (("alice", 30 * 86400), ("bob", None), ("carol", None))}
    ledger = sum((o.model_extra or {})["colm"]["totals"]["paid_usd"] for o in outcomes
                 if not isinstance(o, Exception))
    # the store counted every call as its run's ledger did, and never less than the provider
    # served (a stream the client cut at its token bound is charged at the bound)
    assert server_usd == pytest.approx(ledger, rel=1e-9, abs=1e-12)
    assert seen <= server_usd + 1e-12, (seen, server_usd)
    assert server_usd <= 0.009 + 1e-12 and keys["alice"] <= 0.004 + 1e-12
    assert sum(keys.values()) == pytest.approx(server_usd)
    refused = [o for o in outcomes if isinstance(o, openai.RateLimitError)]
    served = [o for o in outcomes if not isinstance(o, Exception)]
    assert all(o.code == "insufficient_quota" for o in refused)
    assert served and any((o.model_extra or {})["colm"]["degraded"] for o in served)
    assert spend["server"]["paid_usd"] == pytest.approx(server_usd)
    assert spend["keys"]["alice"]["paid_usd"] == pytest.approx(keys["alice"])
    assert spend["server"]["held_usd"] == 0
    # /metrics, read with prometheus_client's own parser, tells the same story
    by_status = {dict(labels)["status"]: v for (name, labels), v in metrics.items()
                 if name == "colm_serve_requests_total"}
    assert by_status == {"200": len(served), **({"429": len(refused)} if refused else {})}
    paid = [r for r in fake.chat_requests if r["model"] == "big"]
    assert sample(metrics, "colm_serve_model_calls_total", model="big", tier="paid") == len(paid)
    assert sample(metrics, "colm_serve_model_usd_total", model="big", tier="paid") == \
        pytest.approx(server_usd)
    assert sample(metrics, "colm_serve_budget_left_usd", scope="server") == \
        pytest.approx(0.009 - server_usd)
    assert sample(metrics, "colm_serve_request_seconds_count", model="moa") == 60


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition, by (name, labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_a_used_up_budget_is_refused_before_the_run(tmp_path: Path, pool: ModelPool,
                                                  fake: FakeOpenAIServer) -> None:
    op = Operator.from_yaml(write_operator(tmp_path / "operator.yaml", {
        "alice": {"paid_usd": 0}, "bob": {"paid_tokens": 0}, "carol": {}}))
    with serving(create_app(pool, graphs=["moa"], operator=op)) as url:
        for name in ("alice", "bob"):
            with pytest.raises(openai.RateLimitError, match=f"key '{name}'.s paid budget") \
                    as info:
                ask(url, KEYS[name])
            assert info.value.code == "insufficient_quota"
        assert ask(url, KEYS["carol"]).choices[0].message.content
    assert len(fake.chat_requests) > 0  # carol's run only
    server = write_operator(tmp_path / "op2.yaml", {"carol": {}}, server={"paid_usd": 0})
    with serving(create_app(pool, graphs=["moa"], operator=Operator.from_yaml(server))) as url:
        with pytest.raises(openai.RateLimitError, match="the server's paid budget"):
            ask(url, KEYS["carol"])


def test_operator_file_mistakes_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "operator.yaml"
    bad.write_text(f"keys:\n  alice:\n    key_sha256: {hash_key('x')}\n    period: monthly\n")
    done = subprocess.run([sys.executable, "-m", "colm_graph.cli", "serve", "--operator",
                           str(bad)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"colm-graph: error: {bad}:4: keys.alice.period: expected a"
                                   " period such as 30d, 12h or 15m, got 'monthly'")
    done = subprocess.run([sys.executable, "-m", "colm_graph.cli", "serve", "--hash-key"],
                          input="sk-alice-7d1e0c\n", capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == hash_key(KEYS["alice"])
