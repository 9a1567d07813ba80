"""Reported usage is checked before it is priced (issue 10, a cap that holds): a provider that
reports negative or impossible token counts is recorded at the worst case of what was sent and
received, and the record says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from colm_graph.cli.main import main
from tests.support.openai_server import FakeOpenAIServer
from tests.support.pools import small_big_pool

pytestmark = pytest.mark.integration


def pool_file(path: Path, base_url: str) -> Path:
    return small_big_pool(path, base_url)


def run_single(tmp_path: Path, capsys, monkeypatch, prompt_tokens: int,
               completion_tokens: int) -> dict:
    monkeypatch.setenv("COLM_TEST_KEY", "sk-test-usage")
    reply = "Answer: 4"

    def responder(body: dict) -> dict:
        return {"content": reply, "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens}

    with FakeOpenAIServer(responder=responder) as srv:
        rc = main(["run", "What is 2 + 2?", "--graph", "single", "--json",
                   "--models", str(pool_file(tmp_path / "pool.yaml", srv.base_url))])
    out = capsys.readouterr().out
    assert rc == 0, out
    return json.loads(out)


@pytest.mark.parametrize(("prompt_tokens", "completion_tokens"),
                         [(-1_000_000, 5), (50, 100_000), (10_000_000, -3)])
def test_impossible_usage_is_replaced_by_the_worst_case(tmp_path, capsys, monkeypatch,
                                                        prompt_tokens, completion_tokens):
    out = run_single(tmp_path, capsys, monkeypatch, prompt_tokens, completion_tokens)
    (call,) = out["ledger"]["calls"]
    assert call["model"] == "big"
    assert "usage_corrected" in call
    assert 0 <= call["output_tokens"] <= 4 * len("Answer: 4") + 1024
    assert 0 <= call["input_tokens"] < 50_000          # bounded by the prompt's bytes
    assert 0 <= out["ledger"]["totals"]["paid_usd"] < 0.05


def test_plausible_usage_is_kept_as_reported(tmp_path, capsys, monkeypatch):
    out = run_single(tmp_path, capsys, monkeypatch, 120, 4)
    (call,) = out["ledger"]["calls"]
    assert (call["input_tokens"], call["output_tokens"]) == (120, 4)
    assert "usage_corrected" not in call
