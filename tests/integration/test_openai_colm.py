"""A full CoLM run over the real ChatOpenAI client, against an OpenAI-compatible server on
127.0.0.1 started by the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from colm_graph import ModelPool, create_colm_graph, ledger_totals, load_graph
from tests.support.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.integration

SECRET = "sk-colm-test-5f1c9e0a7b"
DRAFTS = {"m-a": "41", "m-b": "42"}


def responder(body: dict) -> dict:
    user = body["messages"][-1]["content"]
    if "<drafts>" in user:
        text = "The drafts conflict on the last addition; 42 is right.\nAnswer: 42"
        return {"content": text, "prompt_tokens": 1000, "completion_tokens": 200}
    if "<guidance>" in user:
        return {"content": "Revised with the guidance.\nAnswer: 42", "prompt_tokens": 300,
                "completion_tokens": 20}
    return {"content": f"Draft.\nAnswer: {DRAFTS[body['model']]}", "prompt_tokens": 120,
            "completion_tokens": 30}


def write_pool(path: Path, base_url: str) -> Path:
    path.write_text(textwrap.dedent(f"""\
        models:
          - name: local-a
            provider: openai
            model: m-a
            base_url: {base_url}
            tier: local
            domains: [arithmetic]
          - name: local-b
            provider: openai
            model: m-b
            base_url: {base_url}
            tier: local
            domains: [algebra]
          - name: big
            provider: openai
            model: m-big
            base_url: {base_url}
            api_key_env: COLM_TEST_KEY
            tier: paid
            price: {{input: 5.0, output: 15.0}}
        server: big
        """))
    return path


def test_cli_run_over_http_with_api_key(tmp_path):
    with FakeOpenAIServer(responder=responder) as srv:
        pool_file = write_pool(tmp_path / "models.yaml", srv.base_url)
        env = {**os.environ, "COLM_TEST_KEY": SECRET}
        proc = subprocess.run(
            [sys.executable, "-m", "colm_graph.cli", "run", "What is 17 * 23 + 48?",
             "--models", str(pool_file), "--json"],
            capture_output=True, text=True, env=env, timeout=120)
        requests = srv.chat_requests
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["answer"] == "42"
    assert result["answers"] == {"local-a": "42", "local-b": "42"}
    assert result["rounds"] == 1 and result["stop_reason"] == "consensus"
    # the key went to the paid endpoint only, in the Authorization header
    paid = [r for r in requests if r["body"]["model"] == "m-big"]
    local = [r for r in requests if r["body"]["model"] != "m-big"]
    assert len(paid) == 1 and len(local) == 4
    assert paid[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    assert all(SECRET not in r["headers"].get("authorization", "") for r in local)
    # ... and nowhere in what the user sees
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    # drafts reached the server fenced as data
    assert '<draft client="local-a">' in paid[0]["body"]["messages"][-1]["content"]
    # the ledger holds the server's own usage numbers, priced from the pool
    calls = result["ledger"]["calls"]
    guide = next(c for c in calls if c["node"] == "guide")
    assert (guide["input_tokens"], guide["output_tokens"]) == (1000, 200)
    assert guide["usd"] == pytest.approx((5.0 * 1000 + 15.0 * 200) / 1e6)
    assert result["ledger"]["totals"]["paid_usd"] == pytest.approx(guide["usd"])
    assert result["ledger"]["totals"]["local_calls"] == 4
    assert all(not c["tokens_estimated"] for c in calls)


def test_cli_text_output_and_missing_key(tmp_path, monkeypatch):
    with FakeOpenAIServer(responder=responder) as srv:
        pool_file = write_pool(tmp_path / "models.yaml", srv.base_url)
        env = {k: v for k, v in os.environ.items() if k != "COLM_TEST_KEY"}
        proc = subprocess.run(
            [sys.executable, "-m", "colm_graph.cli", "run", "q", "--models", str(pool_file)],
            capture_output=True, text=True, env=env, timeout=120)
        assert srv.chat_requests == []
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "COLM_TEST_KEY" in proc.stderr
    assert "models[2]" in proc.stderr and "Traceback" not in proc.stderr


def test_paid_server_error_falls_back_to_the_local_tier(tmp_path):
    def status_for(body):
        return 500 if body["model"] == "m-big" else None

    with FakeOpenAIServer(responder=responder, status_for=status_for) as srv:
        pool_file = write_pool(tmp_path / "models.yaml", srv.base_url)
        env = {**os.environ, "COLM_TEST_KEY": SECRET}
        proc = subprocess.run(
            [sys.executable, "-m", "colm_graph.cli", "run", "q", "--models", str(pool_file),
             "--json"], capture_output=True, text=True, env=env, timeout=120)
        paid_attempts = sum(r["body"]["model"] == "m-big" for r in srv.chat_requests)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["degraded"] and "paid model big at " in out["degraded_reasons"][0]
    guide = next(c for c in out["ledger"]["calls"] if c["node"] == "guide")
    assert guide["tier"] == "local" and guide["fallback_for"] == "big"  # a local model stood in
    assert out["ledger"]["totals"]["paid_calls"] == 0  # the failed attempts are not charged
    assert paid_attempts == 3  # the first try and the client's two retries
    assert SECRET not in proc.stdout + proc.stderr


def test_local_model_failure_is_a_failure_with_partial_result(tmp_path):
    def status_for(body):
        return 500 if "<guidance>" in body["messages"][-1]["content"] else None

    with FakeOpenAIServer(responder=responder, status_for=status_for) as srv:
        pool_file = write_pool(tmp_path / "models.yaml", srv.base_url)
        env = {**os.environ, "COLM_TEST_KEY": SECRET}
        proc = subprocess.run(
            [sys.executable, "-m", "colm_graph.cli", "run", "q", "--models", str(pool_file),
             "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("colm-graph: failed:") and proc.stderr.count("\n") == 1
    partial = json.loads(proc.stdout)
    assert "error" in partial
    assert [c["node"] for c in partial["ledger"]["calls"]] == ["draft", "draft", "guide"]
    assert SECRET not in proc.stdout + proc.stderr


async def test_async_graph_over_http(tmp_path, monkeypatch):
    monkeypatch.setenv("COLM_TEST_KEY", SECRET)
    with FakeOpenAIServer(responder=responder, latency_s=0.2) as srv:
        pool = ModelPool.from_yaml(write_pool(tmp_path / "models.yaml", srv.base_url))
        out = await create_colm_graph(pool=pool).ainvoke({"question": "q"})
        drafts = [r for r in srv.chat_requests if "<guidance>" not in
                  r["body"]["messages"][-1]["content"] and r["body"]["model"] != "m-big"]
    assert out["answer"] == "42"
    assert ledger_totals(out["ledger"])["paid_calls"] == 1
    a, b = drafts[:2]
    assert a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]


def test_a_paid_model_that_failed_is_not_retried_later_in_the_run(tmp_path, monkeypatch):
    """After a paid call fails (and the client's retries too), the rest of the run treats that
    model as down: COPE goes to its local path instead of paying for the retries again."""
    monkeypatch.setenv("COLM_TEST_KEY", SECRET)

    def cope_responder(body: dict) -> dict:
        text = body["messages"][-1]["content"]
        if "planner" in body["messages"][0]["content"]:
            return {"content": "1. Work it out.", "prompt_tokens": 50, "completion_tokens": 5}
        seed = body.get("seed", 0)
        return {"content": f"Answer: {40 + seed}" if "<plan>" in text else "Answer: 1",
                "prompt_tokens": 60, "completion_tokens": 5}

    def status_for(body: dict) -> int | None:
        return 503 if body["model"] == "m-big" else None

    with FakeOpenAIServer(responder=cope_responder, status_for=status_for) as srv:
        pool = ModelPool.from_yaml(write_pool(tmp_path / "models.yaml", srv.base_url))
        out = load_graph("cope", pool=pool).invoke({"question": "q"})
        paid_requests = sum(r["body"]["model"] == "m-big" for r in srv.chat_requests)
    assert paid_requests == 3  # plan2: the first try and the client's two retries, once
    assert out["degraded"] and ledger_totals(out["ledger"])["paid_calls"] == 0
    assert any("failed earlier in this run" in r for r in out["degraded_reasons"])
    assert "plan3" not in [p["node"] for p in out["path"]]
