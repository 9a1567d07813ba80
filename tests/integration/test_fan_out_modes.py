"""Fewer super-steps, same runs (issue 15, :mod:`colm_graph.spec.fused`): bookkeeping
nodes run inside their neighbour's step, and ``fan_out: gather`` makes a fan-out one task.

Each shipped variant answers the same on the simulator whichever the fan-out mode, with
the same calls and the same path, in fewer LangGraph steps; a gathered fan-out makes its
calls concurrently (sync and async), drops a participant whose model keeps failing exactly
as ``send`` does (FaultServer over HTTP), and a gathered run under a SQLite checkpointer
starts a reused thread afresh."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from colm_graph import ModelPool, bundled_graphs, load_graph
from colm_graph.cli.main import main
from colm_graph.errors import ConfigError
from colm_graph.spec.fused import node_updates
from tests.integration.test_partial_failure import (
    QUESTION,
    assert_dropped,
    assert_fails_naming,
    broken_c,  # noqa: F401 - the fixture
    pool_file,
    prompts_to,
)
from tests.support.fakes import ScriptedChatModel

pytestmark = pytest.mark.integration

ASK = {"question": "What is 17 * 23 + 48?"}


def _calls(out: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted((r["node"], r["model"], r["round"], r.get("stage", 0), r["input_tokens"],
                   r["output_tokens"]) for r in out["ledger"])


def _steps(graph: Any) -> tuple[int, list[str]]:
    """LangGraph steps of a run (its ``updates`` chunks) and the nodes they report."""
    chunks = list(graph.stream(dict(ASK), stream_mode="updates"))
    nodes = [n for chunk in chunks for step, whole in chunk.items()
             for n, _ in node_updates(step, whole) if not n.startswith("_")]
    return len(chunks), nodes


@pytest.mark.parametrize("variant", bundled_graphs())
def test_every_variant_runs_the_same_gathered_in_fewer_steps(variant: str) -> None:
    send = load_graph(variant)
    gather = load_graph(variant, params={"fan_out": "gather"})
    a, b = send.invoke(dict(ASK)), gather.invoke(dict(ASK))
    assert a["answer"] == b["answer"]
    assert _calls(a) == _calls(b)
    assert [p["node"] for p in a["path"]] == [p["node"] for p in b["path"]]
    (steps_send, nodes_send), (steps_gather, nodes_gather) = _steps(send), _steps(gather)
    assert steps_gather <= steps_send
    # a stream reports the same nodes in the same order (a Send fan-out once per task)
    assert _collapsed(nodes_gather) == _collapsed(nodes_send)


def _collapsed(nodes: list[str]) -> list[str]:
    return [n for i, n in enumerate(nodes) if i == 0 or nodes[i - 1] != n]


def test_colm_steps_counted() -> None:
    pool = ModelPool()
    for i in range(4):  # clients that never agree: every round runs
        pool.add(f"c{i}", ScriptedChatModel(reply=f"Answer: {i + 1}"), tier="local")
    pool.add("server", ScriptedChatModel(reply="Guidance.\nAnswer: 9"), tier="paid",
             price={"input": 1.0, "output": 1.0})
    params = {"top_k": 4, "rounds": 2, "skip_guidance_when_agreed": False}
    send = load_graph("colm", pool=pool, params=params)
    gather = load_graph("colm", pool=pool, params={**params, "fan_out": "gather"})
    # select, 4 drafts, tally, guide, 4 revisions, tally, guide, 4 revisions, tally+finish
    assert _steps(send)[0] == 1 + 4 + 1 + 1 + 4 + 1 + 1 + 4 + 1
    # select, drafts+tally, guide, revisions+tally, guide, revisions+tally+finish
    assert _steps(gather)[0] == 6
    slow = ModelPool()
    for i in range(4):
        slow.add(f"c{i}", ScriptedChatModel(reply=f"Answer: {i + 1}", latency_s=0.05),
                 tier="local")
    slow.add("server", ScriptedChatModel(reply="Answer: 9"), tier="paid",
             price={"input": 1.0, "output": 1.0})
    out = load_graph("colm", pool=slow, params={**params, "fan_out": "gather"}).invoke(
        dict(ASK))
    drafts = [r for r in out["ledger"] if r["node"] == "draft"]
    assert len(drafts) == 4
    # concurrently: each call started before the first one ended (threads under invoke)
    first_end = min(r["started_at"] + r["latency_s"] for r in drafts)
    assert all(r["started_at"] <= first_end for r in drafts)


def test_gathered_calls_run_concurrently_under_ainvoke() -> None:
    pool = ModelPool()
    for i in range(3):
        pool.add(f"c{i}", ScriptedChatModel(reply=f"Answer: {i}", latency_s=0.05),
                 tier="local")
    graph = load_graph("self_consistency", pool=pool,
                       params={"samples": 3, "fan_out": "gather"}, roles={"solver": "c0"})
    out = asyncio.run(graph.ainvoke(dict(ASK)))
    calls = [r for r in out["ledger"] if r["node"] == "answer"]
    assert len(calls) == 3
    first_end = min(r["started_at"] + r["latency_s"] for r in calls)
    assert all(r["started_at"] < first_end for r in calls)


def test_fan_out_is_checked() -> None:
    with pytest.raises(ConfigError, match="fan_out"):
        load_graph("colm", params={"fan_out": "threads"})


def _run(srv: Any, tmp_path: Any, capsys: Any, *args: str) -> tuple[int, dict[str, Any],
                                                                   list[str]]:
    pool = pool_file(tmp_path / "pool.yaml", srv.base_url)
    rc = main(["run", QUESTION, "--graph", "colm", "--json", "--models", str(pool),
               "--param", "fan_out=gather", *args])
    captured = capsys.readouterr()
    return rc, json.loads(captured.out), captured.err.strip().splitlines()


def test_a_gathered_fan_out_drops_a_failing_participant(broken_c, tmp_path,  # noqa: F811
                                                        capsys) -> None:
    rc, out, err = _run(broken_c, tmp_path, capsys, "--top-k", "3", "--rounds", "2")
    assert rc == 0, err
    failure = assert_dropped(out, broken_c, "draft")
    assert failure["round"] == 0 and len(out["failures"]) == 1
    assert out["rounds"] == 2 and out["answer"] is not None
    assert prompts_to(broken_c, "m-c") == 1  # never asked again
    assert len(broken_c.requests_for("m-a")) == len(broken_c.requests_for("m-b")) == 3


def test_a_gathered_fan_out_fails_below_min_participants(broken_c, tmp_path,  # noqa: F811
                                                         capsys) -> None:
    rc, out, err = _run(broken_c, tmp_path, capsys, "--top-k", "3", "--rounds", "1",
                        "--param", "min_participants=3")
    assert_fails_naming(rc, err, out, broken_c)


def test_a_reused_thread_starts_afresh_when_gathered(tmp_path) -> None:
    from colm_graph.integrations.durable import open_checkpointer

    with open_checkpointer(tmp_path / "runs.sqlite") as saver:
        graph = load_graph("colm", params={"fan_out": "gather"}, checkpointer=saver)
        config = {"configurable": {"thread_id": "t1"}}
        first = graph.invoke(dict(ASK), config)
        second = graph.invoke({"question": "What is 60 / 12 + 10 * 5?"}, config)
    assert first["answer"] == "439" and second["answer"] == "55"
    assert len(second["ledger"]) == len(load_graph("colm").invoke(
        {"question": "What is 60 / 12 + 10 * 5?"})["ledger"])
    assert second["path"][0]["node"] == "select"
