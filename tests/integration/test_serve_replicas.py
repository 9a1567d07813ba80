"""``colm-graph serve`` as operators run it: two replicas, each with two uvicorn workers,
sharing one real Redis (``redis-server`` started by the test on 127.0.0.1), in front of a
paid model that is a local fake OpenAI-compatible server. 400 requests from the ``openai``
client at once; one replica is SIGKILLed mid-load; the other keeps serving, the dead one's
reservations expire, and no budget is overspent — checked against the fake server's own
count of what it served."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from colm_graph.integrations.operator import Operator, hash_key
from tests.support.openai_server import FakeOpenAIServer
from tests.support.pools import small_big_pool
from tests.support.redis_server import running_redis

pytestmark = pytest.mark.integration

PRICE = (2.5, 10.0)
KEYS = {"alice": "sk-alice-replicas-1", "bob": "sk-bob-replicas-2"}
CAPS = {"server": 0.025, "alice": 0.008, "bob": 0.02}
TTL_S = 2.0


def start_replica(tmp_path: Path, name: str, env: dict[str, str], operator: Path,
                  models: Path) -> tuple[subprocess.Popen[str], str]:
    with open(tmp_path / f"{name}.err", "w") as err:  # the child keeps its own copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "colm_graph.cli", "serve", "--workers", "2", "--port", "0",
             "--graphs", "moa", "--operator", str(operator), "--models", str(models)],
            env=env, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "serving moa at" in line, (tmp_path / f"{name}.err").read_text()
    url = line.split(" at ")[1].split()[0]
    stdout = proc.stdout  # drained, so that no log line can fill the pipe and stop it

    def drain() -> None:
        for _ in stdout:
            pass
        stdout.close()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 60
    while True:  # both workers up
        try:
            import httpx

            if httpx.get(url.removesuffix("/v1") + "/health", timeout=2).status_code == 200:
                return proc, url
        except Exception:
            pass
        assert time.monotonic() < deadline, "replica did not come up"
        time.sleep(0.2)


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc.wait(30)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(responder=lambda body: "Answer: 439", latency_s=0.02) as srv:
        yield srv


def test_two_replicas_share_one_cap_and_survive_a_kill(
        tmp_path: Path, fake: FakeOpenAIServer, redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    env = {**os.environ, "COLM_TEST_KEY": "sk-paid", "COLM_TEST_ADMIN": "admin-x"}
    models = small_big_pool(tmp_path / "models.yaml", fake.base_url, price=PRICE,
                            big={"max_tokens": 20})
    operator = tmp_path / "operator.yaml"
    operator.write_text(yaml.safe_dump({
        "store": redis_url, "admin_token_env": "COLM_TEST_ADMIN", "reservation_ttl_s": TTL_S,
        "server": {"paid_usd": CAPS["server"], "period": "1d"},
        "keys": {k: {"key_sha256": hash_key(v), "paid_usd": CAPS[k], "period": "30d"}
                 for k, v in KEYS.items()}}))
    a, url_a = start_replica(tmp_path, "a", env, operator, models)
    b, url_b = start_replica(tmp_path, "b", env, operator, models)
    done = threading.Event()
    outcomes: list[Any] = []
    held_at_kill = [0.0]
    op = Operator.from_yaml(operator, env=env)
    try:
        def one(i: int) -> Any:
            url = (url_a, url_b)[i % 2]
            key = KEYS[("alice", "bob")[(i // 2) % 2]]
            try:
                with openai.OpenAI(base_url=url, api_key=key, max_retries=0,
                                   timeout=60) as c:
                    reply = c.chat.completions.with_raw_response.create(
                        model="moa", messages=[{"role": "user", "content": f"Q{i}: 17*23?"}])
                    return reply.headers.get("x-colm-worker"), reply.parse()
            except openai.APIError as exc:
                return url, exc

        def killer() -> None:
            while len(outcomes) < 120 and not done.is_set():
                time.sleep(0.01)
            held_at_kill[0] = op.store.spent(op.server)[2]
            stop(a, signal.SIGKILL)

        kill = threading.Thread(target=killer)
        kill.start()
        with concurrent.futures.ThreadPoolExecutor(64) as ex:
            for result in ex.map(one, range(400)):
                outcomes.append(result)
        done.set()
        kill.join()
        # after the kill, replica b still answers
        with openai.OpenAI(base_url=url_b, api_key=KEYS["bob"], max_retries=0) as c:
            assert c.chat.completions.create(
                model="moa", messages=[{"role": "user", "content": "after"}]).id
        time.sleep(TTL_S + 0.5)  # the dead replica's reservations expire
        server = op.store.spent(op.server)
        keys = {k: op.store.spent(op.keys[hash_key(v)].budget) for k, v in KEYS.items()}
    finally:
        done.set()
        stop(a, signal.SIGKILL)
        stop(b)
    assert b.returncode == 0
    seen = sum(r["prompt_tokens"] * PRICE[0] / 1e6 + r["completion_tokens"] * PRICE[1] / 1e6
               for r in fake.chat_requests if r["model"] == "big" and r["status"] == 200)
    assert server[2] == 0 and all(k[2] == 0 for k in keys.values())  # nothing held any more
    assert server[0] <= CAPS["server"] + 1e-9
    assert all(keys[k][0] <= CAPS[k] + 1e-9 for k in KEYS)
    assert sum(k[0] for k in keys.values()) == pytest.approx(server[0])
    # what the provider served was reserved: settled, or held by the replica that died
    assert seen <= server[0] + held_at_kill[0] + 1e-9
    assert seen > 0.5 * CAPS["server"]  # the load did reach the caps
    workers = {u for u, o in outcomes if not isinstance(o, Exception)}
    assert len(workers) >= 3, workers  # both of b's workers and at least one of a's
    lost = [o for u, o in outcomes if isinstance(o, openai.APIConnectionError)]
    assert lost and all(u == url_a for u, o in outcomes
                        if isinstance(o, openai.APIConnectionError))
    refused = [o for _, o in outcomes if isinstance(o, openai.RateLimitError)]
    assert refused or any((o.model_extra or {})["colm"]["degraded"] for _, o in outcomes
                          if not isinstance(o, Exception))  # the caps were reached
