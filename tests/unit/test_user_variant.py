"""A graph variant written by a user, only as YAML (nothing shipped, no Python), runs end to
end: both branches of its conditional edge, its ledger, parameter overrides, role rebinding,
and a loop that runs until its rounds are spent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from colm_graph import ModelPool, bundled_graphs, ledger_totals
from colm_graph.spec import GraphSpec, compile_spec, load_graph, load_spec, parse_spec
from tests.support.fakes import ScriptedChatModel

DRAFT_AND_JUDGE = """\
# Two local clients answer; when they disagree a paid judge reads both and settles it.
name: draft-and-judge
description: two local drafts, a paid judge only on disagreement
parameters:
  t: 1.0
roles:
  drafter: {models: [alpha, beta]}
  judge: {tier: paid, count: 1}
nodes:
  draft: {kind: answer, role: drafter}
  tally: {kind: vote}
  judge: {kind: aggregate, role: judge}
  finish: {kind: finish, options: {output: majority}}
edges:
  - {from: START, to: draft}
  - {from: draft, to: tally}
  - from: tally
    branches:
      - when: {agreement_below: $t}
        to: judge
    default: finish
  - {from: judge, to: finish}
  - {from: finish, to: END}
"""

PEER_LOOP = """\
# Peers answer, then read each other's answers and revise, until they agree or the
# rounds are spent.
name: peer-loop
parameters:
  rounds: 2
roles:
  peer: {models: [alpha, beta]}
nodes:
  answer: {kind: answer, role: peer}
  tally: {kind: vote}
  exchange: {kind: revise, role: peer, options: {context: peers}}
  finish: {kind: finish, options: {output: majority}}
edges:
  - {from: START, to: answer}
  - {from: answer, to: tally}
  - from: tally
    branches:
      - when: agreed
        to: finish
      - when: {rounds_left: $rounds}
        to: exchange
    default: finish
  - {from: exchange, to: tally}
  - {from: finish, to: END}
"""

EASY = "EASY: what is 2 + 2?"
HARD = "HARD: what is 2 + 3?"
JUDGE_PRICE = {"input": 1.0, "output": 2.0}


def is_peer_revision(prompt: str) -> bool:
    return "<previous_answer>" in prompt


def scripted(answer: Callable[[str], str], revised: str | None = None) -> ScriptedChatModel:
    """Answers ``answer(prompt)`` on its own; ``revised`` (if given) after reading peers."""

    def script(prompt: str) -> str:
        if is_peer_revision(prompt) and revised is not None:
            return f"Revising.\nAnswer: {revised}"
        if is_peer_revision(prompt):
            return f"Keeping mine.\nAnswer: {answer(prompt)}"
        return f"Drafting.\nAnswer: {answer(prompt)}"

    return ScriptedChatModel(script=script)


def make_pool(alpha: ScriptedChatModel, beta: ScriptedChatModel, judge: ScriptedChatModel,
              other_judge: ScriptedChatModel | None = None) -> ModelPool:
    pool = ModelPool(source="test-pool")
    pool.add("alpha", alpha, tier="local")
    pool.add("beta", beta, tier="local")
    pool.add("judge-model", judge, tier="paid", price=JUDGE_PRICE)
    pool.add("other-judge", other_judge or ScriptedChatModel(reply="Answer: 0"), tier="paid",
             price=JUDGE_PRICE)
    return pool


@pytest.fixture
def variant_path(tmp_path: Path) -> Path:
    path = tmp_path / "draft_and_judge.yaml"
    path.write_text(DRAFT_AND_JUDGE, encoding="utf-8")
    return path


@pytest.fixture
def models() -> dict[str, ScriptedChatModel]:
    """alpha always says 4; beta says 4 to the easy question and 5 to the hard one."""
    return {"alpha": scripted(lambda p: "4"),
            "beta": scripted(lambda p: "4" if "EASY" in p else "5"),
            "judge": ScriptedChatModel(reply="Both drafts read; 2 + 3 = 5.\nAnswer: 5"),
            "other": ScriptedChatModel(reply="The other judge says.\nAnswer: 5")}


@pytest.fixture
def pool(models: dict[str, ScriptedChatModel]) -> ModelPool:
    return make_pool(models["alpha"], models["beta"], models["judge"], models["other"])


def nodes_run(out: dict) -> list[str]:
    return [p["node"] for p in out["path"]]


def test_variant_is_not_shipped(variant_path: Path) -> None:
    assert "draft-and-judge" not in bundled_graphs()
    spec = load_spec(variant_path)
    assert spec.name == "draft-and-judge"
    assert list(spec.nodes) == ["draft", "tally", "judge", "finish"]


def test_agreeing_drafts_finish_without_the_judge(variant_path: Path, pool: ModelPool,
                                                 models: dict[str, ScriptedChatModel]) -> None:
    out = load_graph(variant_path, pool=pool).invoke({"question": EASY})
    assert nodes_run(out) == ["draft", "tally", "finish"]
    assert out["answer"] == "4"
    assert out["answers"] == {"alpha": "4", "beta": "4"}
    totals = ledger_totals(out["ledger"])
    assert totals["paid_calls"] == 0 and totals["paid_usd"] == 0.0
    assert totals["local_calls"] == 2
    assert sorted(c["model"] for c in out["ledger"]) == ["alpha", "beta"]
    assert models["judge"].calls == [] and models["other"].calls == []


def test_disagreeing_drafts_go_to_the_paid_judge(variant_path: Path, pool: ModelPool,
                                                models: dict[str, ScriptedChatModel]) -> None:
    out = load_graph(variant_path, pool=pool).invoke({"question": HARD})
    assert nodes_run(out) == ["draft", "tally", "judge", "finish"]
    assert out["answer"] == "5"  # the judge's answer is the last word
    paid = [c for c in out["ledger"] if c["tier"] == "paid"]
    assert len(paid) == 1
    assert paid[0]["model"] == "judge-model" and paid[0]["node"] == "judge"
    assert paid[0]["role"] == "judge"
    assert paid[0]["usd"] == pytest.approx((10 * 1.0 + 5 * 2.0) / 1_000_000)
    assert ledger_totals(out["ledger"])["local_calls"] == 2
    # the judge saw both drafts, fenced as data
    (prompt,) = models["judge"].prompts
    assert '<answer participant="alpha">' in prompt and '<answer participant="beta">' in prompt
    assert HARD.split(":")[1].strip() in prompt


async def test_the_variant_runs_under_ainvoke(variant_path: Path, pool: ModelPool) -> None:
    graph = load_graph(variant_path, pool=pool)
    easy, hard = await graph.ainvoke({"question": EASY}), await graph.ainvoke({"question": HARD})
    assert nodes_run(easy) == ["draft", "tally", "finish"]
    assert nodes_run(hard) == ["draft", "tally", "judge", "finish"]
    assert ledger_totals(hard["ledger"])["paid_calls"] == 1


def test_threshold_override_never_calls_the_judge(variant_path: Path, pool: ModelPool,
                                                 models: dict[str, ScriptedChatModel]) -> None:
    graph = load_graph(variant_path, pool=pool, params={"t": 0.0})
    for question in (EASY, HARD):
        out = graph.invoke({"question": question})
        assert nodes_run(out) == ["draft", "tally", "finish"]
        assert ledger_totals(out["ledger"])["paid_calls"] == 0
    assert models["judge"].calls == []


def test_threshold_override_accepts_an_integer(variant_path: Path, pool: ModelPool) -> None:
    out = load_graph(variant_path, pool=pool, params={"t": 1}).invoke({"question": HARD})
    assert nodes_run(out) == ["draft", "tally", "judge", "finish"]


def test_judge_role_can_be_rebound(variant_path: Path, pool: ModelPool,
                                   models: dict[str, ScriptedChatModel]) -> None:
    graph = load_graph(variant_path, pool=pool, roles={"judge": "other-judge"})
    out = graph.invoke({"question": HARD})
    assert [c["model"] for c in out["ledger"] if c["tier"] == "paid"] == ["other-judge"]
    assert len(models["other"].calls) == 1 and models["judge"].calls == []


def test_drafter_role_can_be_rebound_to_one_model(variant_path: Path, pool: ModelPool,
                                                  models: dict[str, ScriptedChatModel]) -> None:
    # only alpha drafts: one answer agrees with itself, so nobody pays
    out = load_graph(variant_path, pool=pool, roles={"drafter": ["alpha"]}).invoke(
        {"question": HARD})
    assert nodes_run(out) == ["draft", "tally", "finish"]
    assert [c["model"] for c in out["ledger"]] == ["alpha"]
    assert models["beta"].calls == []


def test_parse_spec_gives_the_same_graph(variant_path: Path, pool: ModelPool) -> None:
    from_file = load_graph(variant_path, pool=pool)
    spec = parse_spec(DRAFT_AND_JUDGE, source="inline")
    assert isinstance(spec, GraphSpec)
    assert spec == load_spec(variant_path)
    from_text = compile_spec(spec, pool=pool)
    mermaid = from_file.get_graph().draw_mermaid(with_styles=False)
    assert from_text.get_graph().draw_mermaid(with_styles=False) == mermaid
    for node in ("draft", "tally", "judge", "finish"):
        assert node in mermaid
    # and load_graph takes the parsed spec itself
    assert load_graph(spec, pool=pool).get_graph().draw_mermaid(with_styles=False) == mermaid
    out = from_text.invoke({"question": HARD})
    assert nodes_run(out) == ["draft", "tally", "judge", "finish"]


def test_the_variant_runs_on_the_simulated_pool(tmp_path: Path) -> None:
    text = DRAFT_AND_JUDGE.replace("drafter: {models: [alpha, beta]}",
                                   "drafter: {models: [sim-arith, sim-algebra]}")
    path = tmp_path / "sim.yaml"
    path.write_text(text, encoding="utf-8")
    out = load_graph(path).invoke({"question": "What is 17 + 25?"})
    assert nodes_run(out)[:2] == ["draft", "tally"] and nodes_run(out)[-1] == "finish"
    paid = ledger_totals(out["ledger"])["paid_calls"]
    assert paid == (1 if "judge" in nodes_run(out) else 0)
    assert all(c.get("simulated") for c in out["ledger"])


# -- a loop --------------------------------------------------------------------------------
@pytest.fixture
def loop_path(tmp_path: Path) -> Path:
    path = tmp_path / "peer_loop.yaml"
    path.write_text(PEER_LOOP, encoding="utf-8")
    return path


def test_loop_runs_until_rounds_are_spent(loop_path: Path) -> None:
    alpha, beta = scripted(lambda p: "4"), scripted(lambda p: "5")  # never convinced
    pool = make_pool(alpha, beta, ScriptedChatModel())
    out = load_graph(loop_path, pool=pool).invoke({"question": HARD})
    assert nodes_run(out) == ["answer", "tally", "exchange", "tally", "exchange", "tally",
                              "finish"]
    assert out["rounds"] == 2 and out["stop_reason"] == "max_rounds"
    assert len(alpha.calls) == 3 and len(beta.calls) == 3
    assert sorted(r["round"] for r in out["responses"]) == [0, 0, 1, 1, 2, 2]
    assert ledger_totals(out["ledger"])["paid_calls"] == 0
    # peers mode: each sees the other's latest answer, not its own
    revision = alpha.prompts[1]
    assert '<answer participant="beta">' in revision
    assert '<answer participant="alpha">' not in revision
    assert "Answer: 5" in revision
    assert '<answer participant="alpha">' in beta.prompts[2]


@pytest.mark.parametrize("rounds,exchanges", [(0, 0), (1, 1), (3, 3)])
def test_loop_rounds_parameter(loop_path: Path, rounds: int, exchanges: int) -> None:
    pool = make_pool(scripted(lambda p: "4"), scripted(lambda p: "5"), ScriptedChatModel())
    out = load_graph(loop_path, pool=pool, params={"rounds": rounds}).invoke(
        {"question": HARD})
    assert nodes_run(out).count("exchange") == exchanges
    assert nodes_run(out).count("tally") == exchanges + 1
    assert out["rounds"] == exchanges


def test_loop_stops_early_on_agreement(loop_path: Path) -> None:
    alpha, beta = scripted(lambda p: "4"), scripted(lambda p: "5", revised="4")
    pool = make_pool(alpha, beta, ScriptedChatModel())
    out = load_graph(loop_path, pool=pool, params={"rounds": 5}).invoke({"question": HARD})
    assert nodes_run(out) == ["answer", "tally", "exchange", "tally", "finish"]
    assert out["rounds"] == 1 and out["stop_reason"] == "consensus"
    assert out["answer"] == "4" and out["answers"] == {"alpha": "4", "beta": "4"}


def test_loop_graph_has_a_cycle_in_its_picture(loop_path: Path) -> None:
    pool = make_pool(scripted(lambda p: "4"), scripted(lambda p: "4"), ScriptedChatModel())
    mermaid = load_graph(loop_path, pool=pool).get_graph().draw_mermaid(with_styles=False)
    assert "exchange --> tally" in mermaid
    assert "tally -.-> exchange" in mermaid
