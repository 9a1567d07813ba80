"""Bounded runs (issue 10): every run has a step limit and a paid-call limit derived from its
spec and parameters, and a spec whose loop has no exit bounded by a parameter is refused at
load. A user spec whose only exit is never taken stops at a limit with one line naming the
limit, the graph and the spend so far, and keeps its partial result."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from colm_graph import ModelPool, load_graph
from colm_graph.cli.main import main
from colm_graph.core.settings import MAX_ROUNDS
from colm_graph.errors import RunLimitError
from colm_graph.spec import SpecError, bundled_graphs, load_spec, parse_spec
from colm_graph.spec.compile import run_limits
from tests.support.fakes import ScriptedChatModel

QUESTION = "What is 2 + 2?"

# The exit needs `rounds` to reach 3, but nothing in the loop advances them (an `answer`
# node answers in the current round, `vote` only reads it): the exit is never taken.
RUNAWAY = """\
name: runaway
parameters: {rounds: 3}
roles:
  agent: {tier: TIER, count: 1}
nodes:
  answer: {kind: answer, role: agent}
  tally: {kind: vote}
  finish: {kind: finish}
edges:
  - {from: START, to: answer}
  - {from: answer, to: tally}
  - from: tally
    branches:
      - {when: {rounds_at_least: $rounds}, to: finish}
    default: answer
  - {from: finish, to: END}
"""


def _write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(args)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_runaway_paid_loop_stops_at_its_paid_call_limit(tmp_path, capsys) -> None:
    spec = _write(tmp_path, RUNAWAY.replace("TIER", "paid"))
    rc, out, err = _run(["run", QUESTION, "--graph", str(spec), "--json"], capsys)
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    result = json.loads(out)  # the partial result is kept
    totals = result["ledger"]["totals"]
    # 2 looping nodes, rounds up to 3: each loop node at most 3 + 2 passes, one paid call each
    assert totals["paid_calls"] == 5
    assert totals["paid_usd"] > 0
    m = re.fullmatch(r"colm-graph: failed: graph 'runaway': stopped before node 'answer' at"
                     r" its paid-call limit of 5 \(.*\); spent so far: \$(\d+\.\d{6}) in 5 paid"
                     r" call\(s\) \(5 call\(s\) in all\)", lines[0])
    assert m, lines[0]
    assert float(m.group(1)) == pytest.approx(totals["paid_usd"], abs=1e-6)
    assert result["error"] == lines[0].removeprefix("colm-graph: failed: ")
    assert result["path"][:4] == ["answer", "tally", "answer", "tally"]


def test_runaway_local_loop_stops_at_its_step_limit(tmp_path, capsys) -> None:
    spec = _write(tmp_path, RUNAWAY.replace("TIER", "local"))
    rc, out, err = _run(["run", QUESTION, "--graph", str(spec), "--json"], capsys)
    assert rc == 1
    (line,) = err.strip().splitlines()
    # 2 looping nodes x (3 + 2) passes + finish once
    assert line.startswith("colm-graph: failed: graph 'runaway': stopped before node 'tally'"
                           " at its step limit of 11 steps (derived from the spec:"), line
    assert line.endswith("spent so far: $0.000000 in 0 paid call(s) (6 call(s) in all)"), line
    result = json.loads(out)
    assert len(result["path"]) == 11
    assert result["ledger"]["totals"]["calls"] == 6


def test_the_limit_error_carries_the_limit_and_the_spend(tmp_path) -> None:
    graph = load_graph(_write(tmp_path, RUNAWAY.replace("TIER", "paid")))
    with pytest.raises(RunLimitError) as info:
        graph.invoke({"question": QUESTION})
    err = info.value
    assert (err.limit, err.value, err.graph, err.paid_calls) == ("paid_calls", 5, "runaway", 5)
    assert err.usd > 0
    assert "\n" not in str(err)


def test_the_limits_follow_the_rounds_parameter(tmp_path, capsys) -> None:
    spec = _write(tmp_path, RUNAWAY.replace("TIER", "paid"))
    rc, out, err = _run(["run", QUESTION, "--graph", str(spec), "--json",
                         "--param", "rounds=0"], capsys)
    assert rc == 0, err  # rounds 0: the exit is taken at once
    rc, out, err = _run(["run", QUESTION, "--graph", str(spec), "--json",
                         "--rounds", "1"], capsys)
    assert rc == 1
    assert "paid-call limit of 3 " in err
    assert json.loads(out)["ledger"]["totals"]["paid_calls"] == 3


UNBOUNDED = {
    "exits only on agreement": ("- {when: {rounds_at_least: $rounds}, to: finish}",
                                "- {when: agreed, to: finish}"),
    "exits only on a score": ("- {when: {rounds_at_least: $rounds}, to: finish}",
                              "- {when: {score_above: 0.5}, to: finish}"),
    "loops once the rounds are reached": (
        "- {when: {rounds_at_least: $rounds}, to: finish}\n    default: answer",
        "- {when: {rounds_at_least: $rounds}, to: answer}\n    default: finish"),
    "a rounds exit that needs agreement too": (
        "- {when: {rounds_at_least: $rounds}, to: finish}",
        "- {when: {all: [agreed, {rounds_at_least: $rounds}]}, to: finish}"),
    "a branch back in before the exit": (
        "- {when: {rounds_at_least: $rounds}, to: finish}",
        "- {when: agreed, to: answer}\n      - {when: {rounds_at_least: $rounds}, to: finish}"),
}


@pytest.mark.parametrize("old,new", UNBOUNDED.values(), ids=UNBOUNDED.keys())
def test_a_loop_without_a_bounded_exit_is_refused_at_load(tmp_path, capsys, old, new) -> None:
    text = RUNAWAY.replace("TIER", "local")
    assert old in text
    spec = _write(tmp_path, text.replace(old, new))
    rc, out, err = _run(["run", QUESTION, "--graph", str(spec)], capsys)
    assert rc == 2
    assert out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"colm-graph: error: {spec}:12: edges[2]: the loop answer -> tally"
                           " -> answer has no exit bounded by a parameter"), line
    with pytest.raises(SpecError):
        load_spec(spec)


def test_a_self_loop_and_an_inner_loop_are_refused() -> None:
    inner = """\
name: inner
roles: {agent: {tier: local}, server: {tier: paid}}
nodes:
  answer: {kind: answer, role: agent}
  tally: {kind: vote}
  guide: {kind: guide, role: server}
  finish: {kind: finish}
edges:
  - {from: START, to: answer}
  - {from: answer, to: tally}
  - from: tally
    branches:
      - {when: {rounds_at_least: 2}, to: finish}
    default: guide
  - from: guide
    branches:
      - {when: {score_below: 0.5}, to: guide}
    default: answer
  - {from: finish, to: END}
"""
    with pytest.raises(SpecError, match=r"edges\[3\]: the loop guide -> guide has no exit"):
        parse_spec(inner)


BOUNDED = {
    "stays only while rounds are left": (
        "- {when: {rounds_at_least: $rounds}, to: finish}\n    default: answer",
        "- {when: {rounds_left: $rounds}, to: answer}\n    default: finish"),
    "an exit in an any": ("- {when: {rounds_at_least: $rounds}, to: finish}",
                          "- {when: {any: [agreed, {rounds_at_least: $rounds}]}, to: finish}"),
    "another exit first": ("- {when: {rounds_at_least: $rounds}, to: finish}",
                           "- {when: agreed, to: finish}\n"
                           "      - {when: {not: {rounds_left: 2}}, to: finish}"),
}


@pytest.mark.parametrize("old,new", BOUNDED.values(), ids=BOUNDED.keys())
def test_loops_with_a_bounded_exit_load(old: str, new: str) -> None:
    text = RUNAWAY.replace("TIER", "local")
    assert old in text
    parse_spec(text.replace(old, new))


@pytest.mark.parametrize("name", bundled_graphs())
def test_shipped_graphs_load_and_run_within_their_limits(name: str) -> None:
    spec = load_spec(name)
    limits = run_limits(spec)
    result = load_graph(spec).invoke({"question": "What is 17 * 23 + 48?"})
    assert len(result["path"]) <= limits.steps
    paid = sum(1 for r in result["ledger"] if r["tier"] == "paid")
    assert paid <= limits.paid_calls


def _disagreeing_pool() -> ModelPool:
    pool = ModelPool()
    for i, name in enumerate(("a", "b", "c")):
        pool.add(name, ScriptedChatModel(reply=f"Answer: {i + 1}"), tier="local")
    pool.add("big", ScriptedChatModel(reply="Check your work. Answer: 7"), tier="paid",
             price={"input": 1.0, "output": 2.0})
    return pool


@pytest.mark.parametrize("name,params,roles", [
    ("colm", {"rounds": MAX_ROUNDS, "top_k": 3}, {}),
    ("colm_vlm", {"rounds": MAX_ROUNDS, "top_k": 3}, {}),
    ("debate", {"rounds": MAX_ROUNDS}, {}),
    ("moa", {"refine_layers": MAX_ROUNDS}, {"proposer": ["a", "b", "big"]}),
])
def test_the_longest_shipped_loops_stay_within_their_limits(name, params, roles) -> None:
    pool = _disagreeing_pool()
    graph = load_graph(name, pool=pool, params=params, roles=roles)
    result = graph.invoke({"question": "What is 6 * 7?"})
    assert result["rounds"] == MAX_ROUNDS
    limits = run_limits(load_spec(name), pool=pool, params=params, roles=roles)
    assert len(result["path"]) <= limits.steps
    paid = sum(1 for r in result["ledger"] if r["tier"] == "paid")
    assert paid <= limits.paid_calls
    if name in ("colm", "moa"):
        assert paid >= MAX_ROUNDS
