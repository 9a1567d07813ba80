"""Deadlines over the real ``ChatOpenAI`` client (issue 16): a fast local fake and a paid
fake that takes 1 s to answer, on separate servers on 127.0.0.1.

With ``deadline_s=0.5`` every paid-first variant returns within 0.8 s with a local answer,
degraded with a ``deadline`` reason, and no paid request starts after the deadline: a paid
entry whose expected latency (``expected_latency_s``, or what the pool learned) does not fit
is not called at all; without an estimate the call starts and is cancelled at the deadline
(the fake sees the client hang up). CoLM stops its rounds when the next one does not fit, and
``time_left_above`` branches a user spec on the time left.

The fakes run in this process; their ``started_at`` is ``time.monotonic()``, so a deadline
(a Unix time) is compared with it through the offset between the two clocks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from colm_graph import ModelPool, RunResult, load_graph, with_constraints
from tests.support.constraint_fakes import LocalWriter
from tests.support.openai_server import FakeOpenAIServer
from tests.support.pools import local_entry, paid_entry, write_pool

pytestmark = pytest.mark.integration

QUESTION = "What is 17 * 23 + 48?"
PAID_ANSWER = "999"
DEADLINE_S = 0.5
WALL_LIMIT_S = 0.8
VARIANTS = ["single", "route", "cascade", "colm", "cope"]
PARAMS: dict[str, dict[str, Any]] = {"route": {"threshold": 0.0}}
"""``route`` at threshold 0 sends every question to the paid model."""


@dataclass
class Fakes:
    local: FakeOpenAIServer
    paid: FakeOpenAIServer
    writer: LocalWriter
    tmp: Path
    pools: list[ModelPool] = field(default_factory=list)

    def pool(self, **big: Any) -> ModelPool:
        """Two local models and the paid ``big`` (``big`` adds fields to its entry), their
        clients built before any clock starts (the first build in a process imports the
        SDK: a cost of the process, not of a run)."""
        path = write_pool(self.tmp / f"models{len(self.pools)}.yaml", [
            local_entry("a", "m-a", self.local.base_url),
            local_entry("b", "m-b", self.local.base_url),
            paid_entry("big", "m-big", self.paid.base_url, key_env="COLM_TEST_KEY",
                       price=(2.5, 10.0), **big)])
        pool = ModelPool.from_yaml(path)
        for name in pool.names():
            pool.entry(name).chat_model  # noqa: B018 - built now, not inside the deadline
        self.pools.append(pool)
        return pool


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    monkeypatch.setenv("COLM_TEST_KEY", "sk-test-5e8d21c7a94f03b6")
    writer = LocalWriter()
    with FakeOpenAIServer(responder=writer) as local, \
            FakeOpenAIServer(responder=lambda body: f"Answer: {PAID_ANSWER}", latency_s=1.0,
                             stream_delay_s=0.05) as paid:
        yield Fakes(local, paid, writer, tmp_path)


def run(app: Any, config: dict[str, Any], mode: str, question: str = QUESTION
        ) -> tuple[dict[str, Any], float]:
    """The run's output and its wall time."""
    start = time.perf_counter()
    if mode == "sync":
        out = app.invoke({"question": question}, config)
    else:
        out = asyncio.run(app.ainvoke({"question": question}, config))
    return out, time.perf_counter() - start


def monotonic_deadline(config: dict[str, Any]) -> float:
    """The run's deadline on the fakes' clock (``time.monotonic()``)."""
    return float(config["configurable"]["colm_deadline"]) - (time.time() - time.monotonic())


def finished(request: dict[str, Any], timeout_s: float = 5.0) -> None:
    """Wait until the server's handler of ``request`` is done (it learns that the client
    hung up only at its next write)."""
    until = time.monotonic() + timeout_s
    while request.get("finished_at") is None:
        assert time.monotonic() < until, "the server never finished the request"
        time.sleep(0.01)


def check_time_left(out: dict[str, Any], deadline: float) -> None:
    """Every record says the time left when it started, decreasing step by step along the
    ledger (parallel calls of one step in any order)."""
    ledger = out["ledger"]
    assert ledger and all("time_left_s" in r for r in ledger), ledger
    for r in ledger:
        assert r["time_left_s"] == pytest.approx(deadline - r["started_at"], abs=2e-4)
    steps = [list(g) for _, g in itertools.groupby(ledger, key=lambda r: r["node"])]
    for before, after in itertools.pairwise(steps):
        assert max(r["time_left_s"] for r in after) <= min(r["time_left_s"] for r in before)
    assert out["constraints"]["time_left_s"] <= min(r["time_left_s"] for r in ledger)


def check_deadline_run(fakes: Fakes, out: dict[str, Any], wall: float, config: dict[str, Any]
                       ) -> None:
    """Within the wall limit, a local answer, degraded ``deadline``, no late paid request."""
    assert wall < WALL_LIMIT_S, f"the run took {wall:.3f} s"
    assert out["answer"] in fakes.writer.answers and out["answer"] != PAID_ANSWER
    assert out["degraded"] is True
    assert any(reason.startswith("deadline") for reason in out["degraded_reasons"]), \
        out["degraded_reasons"]
    assert out["constraints"]["deadline_hit"] is True
    assert RunResult.from_state(out).deadline_hit
    late = [r for r in fakes.paid.chat_requests if r["started_at"] > monotonic_deadline(config)]
    assert late == []
    check_time_left(out, float(config["configurable"]["colm_deadline"]))


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("graph", VARIANTS)
def test_a_paid_step_expected_to_overrun_is_skipped(fakes: Fakes, graph: str, mode: str):
    """``expected_latency_s: 1.0`` on the paid entry: the paid step does not fit 0.5 s, so
    the run takes its local path and the paid fake gets no request."""
    app = load_graph(graph, pool=fakes.pool(expected_latency_s=1.0), params=PARAMS.get(graph))
    config = with_constraints(deadline_s=DEADLINE_S)
    out, wall = run(app, config, mode)
    check_deadline_run(fakes, out, wall, config)
    assert fakes.paid.chat_requests == []
    assert any("expected to take 1.000 s" in reason for reason in out["degraded_reasons"])


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("graph", VARIANTS)
def test_a_paid_call_still_running_at_the_deadline_is_cancelled(fakes: Fakes, graph: str,
                                                                mode: str):
    """No estimate: the paid call starts, is cut at the deadline and a local model stands
    in; the fake saw exactly one request and its client hang up."""
    app = load_graph(graph, pool=fakes.pool(), params=PARAMS.get(graph))
    config = with_constraints(deadline_s=DEADLINE_S)
    out, wall = run(app, config, mode)
    check_deadline_run(fakes, out, wall, config)
    (request,) = fakes.paid.chat_requests
    stand_in = next(r for r in out["ledger"] if r.get("fallback_for") == "big")
    assert stand_in["fallback"] == "deadline" and stand_in["tier"] == "local"
    assert "still running at the run's deadline" in stand_in["degraded"]
    assert stand_in["lost_request_bytes"] == int(request["headers"]["content-length"])
    assert all(r["tier"] == "local" for r in out["ledger"])
    finished(request)
    assert request["client_closed"] is True


def test_the_learned_latency_skips_the_next_paid_call(fakes: Fakes):
    """After one call cut at the deadline the pool expects the paid model to take at least
    that long, so the next run with the same deadline does not call it."""
    pool = fakes.pool()
    app = load_graph("single", pool=pool)
    assert pool.latency.expected("big") is None
    first, _ = run(app, with_constraints(deadline_s=DEADLINE_S), "sync")
    assert len(fakes.paid.chat_requests) == 1
    learned = pool.latency.expected("big")
    assert learned is not None and learned >= DEADLINE_S  # took longer than it was given
    config = with_constraints(deadline_s=DEADLINE_S)
    out, wall = run(app, config, "sync")
    check_deadline_run(fakes, out, wall, config)
    assert len(fakes.paid.chat_requests) == 1  # no second request
    assert [r["node"] for r in out["ledger"]] == ["fallback_answer"]
    assert any("expected to take" in reason for reason in out["degraded_reasons"])


def test_colm_stops_its_rounds_when_the_next_one_does_not_fit(fakes: Fakes):
    """Slow clients (0.2 s a call), a quick server, three rounds wanted (the drafts never
    agree): without a deadline all three run; with one that fits about one round, the run
    stops early on the clients' answers, and no call starts after the deadline."""
    fakes.local.latency_s = 0.2
    fakes.paid.latency_s = 0.05
    app = load_graph("colm", pool=fakes.pool(), params={"rounds": 3})
    free, free_wall = run(app, {}, "sync")
    assert free["rounds"] == 3 and free["degraded"] is False
    assert free_wall > 1.0  # three rounds do not fit the deadline below
    paid_before = len(fakes.paid.chat_requests)
    requests_before = len(fakes.local.chat_requests)

    config = with_constraints(deadline_s=0.7)
    out, wall = run(app, config, "sync")
    assert 1 <= out["rounds"] < 3
    assert out["stop_reason"] == "degraded"
    assert any(reason.startswith("deadline") for reason in out["degraded_reasons"])
    assert all(r.get("fallback") is None for r in out["ledger"])  # stopped, nothing cut
    assert out["answer"] in fakes.writer.answers
    assert wall < 0.7 + 0.25
    at = monotonic_deadline(config)
    new = fakes.paid.chat_requests[paid_before:] + fakes.local.chat_requests[requests_before:]
    assert new and all(r["started_at"] <= at for r in new)
    check_time_left(out, float(config["configurable"]["colm_deadline"]))


HURRY = textwrap.dedent("""\
    name: hurry
    description: the paid model answers when more than 0.3 s are left, else the local one
    roles:
      solver: {tier: paid, count: 1}
      quick: {tier: local, count: 1}
    nodes:
      answer: {kind: answer, role: solver}
      quick_answer: {kind: answer, role: quick}
      finish: {kind: finish, options: {output: majority}}
    edges:
      - from: START
        branches:
          - when: {time_left_above: 0.3}
            to: answer
        default: quick_answer
      - {from: answer, to: finish}
      - {from: quick_answer, to: finish}
      - {from: finish, to: END}
    """)


@pytest.mark.parametrize(("deadline", "paid"), [(None, True), (5.0, True), (0.2, False)])
def test_time_left_above_in_a_user_spec(fakes: Fakes, tmp_path: Path, deadline: float | None,
                                        paid: bool):
    fakes.paid.latency_s = 0.0
    spec = tmp_path / "hurry.yaml"
    spec.write_text(HURRY, encoding="utf-8")
    app = load_graph(spec, pool=fakes.pool())
    config = with_constraints(deadline_s=deadline) if deadline else {}
    out, _ = run(app, config, "sync")
    assert [r["node"] for r in out["ledger"]] == ["answer" if paid else "quick_answer"]
    assert len(fakes.paid.chat_requests) == (1 if paid else 0)
    assert (out["answer"] == PAID_ANSWER) is paid
    assert out["degraded"] is False  # the spec's own choice, not a stand-in


def test_a_deadline_parameter_counts_from_the_run_start(fakes: Fakes, tmp_path: Path):
    """``deadline_s`` as a graph parameter (``--param deadline_s=0.2``): anchored when the
    run starts, so the same spec takes its local branch."""
    fakes.paid.latency_s = 0.0
    spec = tmp_path / "hurry.yaml"
    spec.write_text(HURRY, encoding="utf-8")
    out, _ = run(load_graph(spec, pool=fakes.pool(), params={"deadline_s": 0.2}), {}, "sync")
    assert [r["node"] for r in out["ledger"]] == ["quick_answer"]
    assert fakes.paid.chat_requests == []
    assert 0 < out["ledger"][0]["time_left_s"] <= 0.2


def test_the_command_exits_without_waiting_for_a_cancelled_call(fakes: Fakes):
    """``colm-graph run --deadline``: a sync paid call cut at the deadline is left to a
    thread the process does not wait for at exit, so the command ends at the deadline (plus
    Python's start-up), not when the paid endpoint would have answered (20 s)."""
    fakes.paid.latency_s = 20.0
    path = write_pool(fakes.tmp / "cli.yaml", [
        local_entry("a", "m-a", fakes.local.base_url),
        paid_entry("big", "m-big", fakes.paid.base_url, key_env="COLM_TEST_KEY",
                   price=(2.5, 10.0))])
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "colm_graph.cli", "run", QUESTION, "--graph", "single",
         "--models", str(path), "--deadline", "0.5", "--json"],
        capture_output=True, text=True, timeout=60)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["answer"] in fakes.writer.answers and out["constraints"]["deadline_hit"]
    assert len(fakes.paid.chat_requests) == 1
    assert wall < 15.0, f"the command took {wall:.1f} s"
