"""The paid cap holds against providers that do not keep to it (issue 10, a cap that holds),
through ``colm-graph run`` and the real ``ChatOpenAI`` client over HTTP:

* a provider that ignores ``max_tokens`` and writes on is stopped mid-reply: the client
  stops reading and closes the request once the reply passes what the call may write, so
  the run's paid spend stays under ``--max-paid-usd``;
* a stream that ends without its finish is a fault: the run falls back to the local tier,
  and what the provider sent before the cut is counted;
* a prompt whose tokens a rough estimate undercounts (CJK, whitespace runs) is checked at
  an upper bound, so a provider that counts every byte as a token cannot bill past the cap.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from colm_graph.cli.main import main
from colm_graph.core.ledger import estimate_tokens
from tests.support.openai_server import FaultServer
from tests.support.pools import small_big_pool

pytestmark = pytest.mark.integration

PRICE_OUT = 10.0   # USD per million output tokens
PRICE_IN = 2.5
KEY = "sk-test-spend-guard-0123456789"


def pool_file(path: Path, base_url: str, max_tokens: int | None = None) -> Path:
    return small_big_pool(path, base_url, price=(PRICE_IN, PRICE_OUT),
                          big={"max_tokens": max_tokens} if max_tokens else None)


def finished(request: dict, timeout_s: float = 10.0) -> None:
    """Wait until the server's handler of ``request`` is done (it learns that the client
    hung up only at its next write)."""
    deadline = time.monotonic() + timeout_s
    while request.get("finished_at") is None:
        assert time.monotonic() < deadline, "the server never finished the request"
        time.sleep(0.01)


def run_json(args: list[str], capsys) -> tuple[int, dict]:
    rc = main(args)
    out = capsys.readouterr().out
    return rc, json.loads(out)


@pytest.mark.parametrize("cap_usd", [0.01, 0.05])
def test_a_provider_that_ignores_max_tokens_is_stopped_at_the_cap(tmp_path, capsys,
                                                                  monkeypatch, cap_usd):
    """20,000 chunks of 'and so on, ' (about 60,000 tokens, $0.60 at $10/M) whatever
    max_tokens says, and a usage report of 5 tokens at the end: the client stops reading
    once the reply passes what the budget pays for and closes the request."""
    monkeypatch.setenv("COLM_TEST_KEY", KEY)
    with FaultServer({"big": ["runaway"]}, runaway_usage={"prompt_tokens": 20,
                                                          "completion_tokens": 5}) as srv:
        rc, out = run_json(["run", "What is 2 + 2?", "--graph", "single", "--json",
                            "--max-paid-usd", str(cap_usd),
                            "--models", str(pool_file(tmp_path / "pool.yaml", srv.base_url))],
                           capsys)
        (req,) = srv.requests_for("big")
        finished(req)
    assert rc == 0
    totals = out["ledger"]["totals"]
    assert 0 < totals["paid_usd"] <= cap_usd, totals
    (paid,) = [c for c in out["ledger"]["calls"] if c["tier"] == "paid"]
    assert paid["stopped"] is True and paid["truncated"] is True
    assert "stopped reading" in paid["usage_corrected"]
    # the 5 tokens the provider claims are not what is counted: the bound of what came
    assert paid["output_tokens"] > 5
    assert req["client_closed"] is True
    assert req["chunks_sent"] < srv.runaway_chunks / 2, req["chunks_sent"]


def test_an_honest_reply_under_the_cap_is_read_to_its_end(tmp_path, capsys, monkeypatch):
    """The guard only stops a reply that passes what the call may write: a short reply
    streams to its finish and its reported usage is kept."""
    monkeypatch.setenv("COLM_TEST_KEY", KEY)
    with FaultServer(responder=lambda body: {"content": "Four.\nAnswer: 4",
                                             "prompt_tokens": 60,
                                             "completion_tokens": 6}) as srv:
        rc, out = run_json(["run", "What is 2 + 2?", "--graph", "single", "--json",
                            "--max-paid-usd", "0.01",
                            "--models", str(pool_file(tmp_path / "pool.yaml", srv.base_url))],
                           capsys)
        (req,) = srv.requests_for("big")
    assert rc == 0 and out["answer"] == "4"
    (paid,) = out["ledger"]["calls"]
    assert (paid["input_tokens"], paid["output_tokens"]) == (60, 6)
    assert "stopped" not in paid and "usage_corrected" not in paid
    assert req["body"]["stream"] is True          # paid calls stream
    assert req["body"]["max_completion_tokens"] >= 16


def test_the_cut_is_sized_to_the_call_not_only_the_budget(tmp_path, capsys, monkeypatch):
    """With a pool max_tokens of 50 and a large budget, a runaway reply is stopped near
    4 x 50 tokens (the byte bound's allowance), far below what the budget would allow."""
    monkeypatch.setenv("COLM_TEST_KEY", KEY)
    with FaultServer({"big": ["runaway"]}) as srv:
        rc, out = run_json(["run", "What is 2 + 2?", "--graph", "single", "--json",
                            "--max-paid-usd", "5",
                            "--models", str(pool_file(tmp_path / "pool.yaml", srv.base_url,
                                                      max_tokens=50))], capsys)
    assert rc == 0
    (paid,) = [c for c in out["ledger"]["calls"] if c["tier"] == "paid"]
    assert paid["stopped"] is True
    assert 200 < paid["output_tokens"] <= 200 + len(b"and so on, ")
    assert out["ledger"]["totals"]["paid_usd"] < 0.01


def test_a_stream_cut_before_its_end_falls_back_and_is_counted(tmp_path, capsys,
                                                              monkeypatch):
    """A proxy drops the stream half-way (no finish, no [DONE]): the reply is not taken as
    whole; the local model answers instead, the run is degraded, and what the provider
    sent is in the ledger as a paid call that failed."""
    monkeypatch.setenv("COLM_TEST_KEY", KEY)
    long = "Let me think about this step by step. " * 20 + "Answer: 4"
    with FaultServer({"big": ["truncated"]},
                     responder=lambda body: {"content": long}) as srv:
        rc, out = run_json(["run", "What is 2 + 2?", "--graph", "single", "--json",
                            "--models", str(pool_file(tmp_path / "pool.yaml", srv.base_url))],
                           capsys)
        small_calls = srv.requests_for("small")
    assert rc == 0
    assert out["degraded"] is True
    assert any("without its finish" in r for r in out["degraded_reasons"])
    failed = [c for c in out["ledger"]["calls"] if c.get("failed")]
    assert len(failed) == 1 and failed[0]["tier"] == "paid" and failed[0]["usd"] > 0
    assert [c["model"] for c in out["ledger"]["calls"]] == ["big", "small"]
    assert len(small_calls) == 1


@pytest.mark.parametrize("text", ["数学" * 3000, "x" + " " * 18_000 + "y"],
                         ids=["cjk", "whitespace-run"])
def test_an_undercounted_prompt_is_checked_at_its_upper_bound(tmp_path, capsys, monkeypatch,
                                                              text):
    """The provider counts one token per byte (what a byte-level BPE does with text it has
    no merges for). The rough word-based estimate would let the call through under a $0.04
    cap and the bill would be about $0.045-0.06; the byte bound refuses it up front."""
    monkeypatch.setenv("COLM_TEST_KEY", KEY)

    def per_byte(body: dict) -> dict:
        sent = sum(len(str(m.get("content", "")).encode()) for m in body["messages"])
        return {"content": "Answer: 1", "prompt_tokens": sent, "completion_tokens": 4}

    question = f"How many characters? {text}"
    cap = 0.04
    rough = estimate_tokens(question) * 1.25 + 8 + 4096  # the old check's worst case
    assert rough * PRICE_IN / 1e6 < cap     # the old check would have made the call
    with FaultServer(responder=per_byte) as srv:
        rc, out = run_json(["run", question, "--graph", "single", "--json",
                            "--max-paid-usd", str(cap),
                            "--models", str(pool_file(tmp_path / "pool.yaml", srv.base_url))],
                           capsys)
        paid_requests = srv.requests_for("big")
    assert rc == 0
    assert paid_requests == []
    assert out["ledger"]["totals"]["paid_usd"] == 0
    assert out["degraded"] is True and any("paid budget" in r for r in out["degraded_reasons"])
