"""One result for every adapter (``colm_graph.core.result.RunResult``): the CLI's JSON, the
chat model's metadata, the tool's details, an eval row and the server's ``colm`` object all
read the same run the same way — answer, totals, ``degraded`` and ``simulated``."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from colm_graph import CollaborativeChatModel, ModelPool, RunResult, load_graph, protocol_tool
from colm_graph.cli.main import main
from colm_graph.core.result import summarize
from colm_graph.evaluation.datasets import Item
from colm_graph.evaluation.runner import GraphEntry, result_row
from colm_graph.integrations.serve import create_app
from tests.support.fakes import ScriptedChatModel
from tests.support.serving import serving

QUESTION = "What is 2 + 3?"


def _down(prompt: str) -> str:
    raise ConnectionError("paid endpoint unreachable")


def pools() -> dict[str, ModelPool]:
    real = ModelPool.default().add(
        "fake", ScriptedChatModel(reply="The sum is **5**.\n\nAnswer: 5"), tier="paid")
    down = ModelPool.default().add("fake", ScriptedChatModel(script=_down), tier="paid")
    real.server = down.server = "fake"  # the aggregator
    return {"sim": ModelPool.default(), "mixed": real, "down": down}


def test_simulated_and_degraded_are_decided_once() -> None:
    assert RunResult.from_state({}).simulated is False  # no calls: not simulated
    sim = {"model": "m", "simulated": True}
    assert RunResult.from_state({"ledger": [sim, sim]}).simulated is True
    assert RunResult.from_state({"ledger": [sim, {"model": "real"}]}).simulated is False
    assert RunResult.from_state({"ledger": [{"degraded": True}]}).degraded is True
    assert RunResult.from_state({"degraded": True}).degraded is True
    assert RunResult.from_state({"ledger": [sim]}).degraded is False


@pytest.mark.parametrize("kind", ["sim", "mixed", "down"])
def test_every_adapter_reports_the_same_run(kind: str, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    pool = pools()[kind]
    graph = load_graph("moa", pool=pool)  # the paid aggregator always runs
    state = graph.invoke({"question": QUESTION})
    run = RunResult.from_state(state, graph="moa")
    assert run.to_dict() == summarize(state, graph="moa")
    # the failed paid call answered nothing: the simulator answered every call that did
    assert run.simulated is (kind != "mixed")
    assert run.degraded is (kind == "down")
    assert (run.totals["paid_calls"] >= 1) is (kind != "down")  # down: a local stand-in

    meta = CollaborativeChatModel(graph="moa", pool=pool).invoke(QUESTION).response_metadata
    details: dict[str, Any] = protocol_tool(graph, return_details=True).invoke(QUESTION)
    row = result_row(GraphEntry("moa", "moa"), Item("q1", QUESTION, "5", "numeric"),
                     state, 0.1)
    for view in (meta, details, row):
        assert view["degraded"] is run.degraded
    for view in (meta, row):
        assert view["simulated"] is run.simulated
    assert meta["answer"] == run.reported_answer and row["answer"] == run.answer
    assert details["paid_usd"] == pytest.approx(run.totals["paid_usd"])
    assert row["paid_calls"] == run.totals["paid_calls"]
    assert meta["ledger_totals"]["paid_calls"] == run.totals["paid_calls"]
    if kind == "sim":  # the CLI runs the default pool
        assert main(["run", "--graph", "moa", "--json", QUESTION]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["simulated"] is True and out["degraded"] is False
        assert out["answer"] == run.answer
        assert out["ledger"]["totals"] == dict(run.totals) | {
            "latency_s": out["ledger"]["totals"]["latency_s"]}  # the only one timing decides


def test_the_server_reports_the_same_run() -> None:
    pool = pools()["down"]
    run = RunResult.from_state(load_graph("moa", pool=pool).invoke({"question": QUESTION}))
    with serving(create_app(pool, graphs=["moa"])) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)
        reply = client.chat.completions.create(
            model="moa", messages=[{"role": "user", "content": QUESTION}])
    colm = (reply.model_extra or {})["colm"]
    assert colm["degraded"] is run.degraded is True
    assert colm["simulated"] is run.simulated is True
    assert colm["answer"] == run.reported_answer
    assert colm["totals"]["paid_calls"] == run.totals["paid_calls"]
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == run.usage.input_tokens
    assert reply.usage.total_tokens == run.usage.total_tokens
