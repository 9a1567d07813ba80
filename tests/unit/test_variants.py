"""Behaviour of every shipped variant with scripted fakes: who is called, with what, and what
comes out; the paid budget and an unreachable paid endpoint; one ledger shape for all."""

from __future__ import annotations

import itertools
import re
import threading
from collections import Counter
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from pydantic import PrivateAttr

from colm_graph import (
    CallRecord,
    ModelPool,
    bundled_graphs,
    create_cascade_graph,
    create_colm_graph,
    create_colm_vlm_graph,
    create_cope_graph,
    create_debate_graph,
    create_moa_graph,
    create_route_graph,
    create_self_consistency_graph,
    create_single_graph,
    ledger_totals,
    load_graph,
)
from tests.support.fakes import ScriptedChatModel

# Every scripted call reports 10 input and 5 output tokens, so at this price each paid call
# costs exactly $0.01 (and the budget tests know when the cap is reached).
PRICE = {"input": 1000.0, "output": 0.0}
CALL_USD = 10 * 1000.0 / 1_000_000

VARIANTS = ["cascade", "colm", "colm_vlm", "cope", "debate", "moa", "route",
            "self_consistency", "single"]


# -- fakes and pools ---------------------------------------------------------------------------
def cycling(*answers: str):
    """Successive answers from a cycle, thread-safe: over n calls of a fan-out the multiset
    of answers is fixed even though which sample gets which is not."""
    it, lock = itertools.cycle(answers), threading.Lock()

    def next_answer() -> str:
        with lock:
            return next(it)

    return next_answer


def answerer(*answers: str, tag: str = "") -> ScriptedChatModel:
    nxt = cycling(*answers)
    return ScriptedChatModel(script=lambda p: f"{tag} working.\nAnswer: {nxt()}")


def make_pool(local: dict[str, ScriptedChatModel],
              paid: dict[str, ScriptedChatModel] | None = None) -> ModelPool:
    pool = ModelPool()
    for name, model in local.items():
        pool.add(name, model, tier="local", description=f"{name} model")
    for name, model in (paid or {}).items():
        pool.add(name, model, tier="paid", price=PRICE)
    return pool


def unreachable_pool(local: dict[str, ScriptedChatModel]) -> ModelPool:
    """A simulated paid endpoint that cannot be reached, plus scripted local models."""
    pool = ModelPool.from_dict({"models": [{
        "name": "cloud", "provider": "sim", "tier": "paid", "price": {"input": 5, "output": 15},
        "sim": {"reachable": False, "default_skill": 1.0}}]})
    for name, model in local.items():
        pool.add(name, model, tier="local")
    return pool


def totals(out: dict) -> dict:
    return ledger_totals(out["ledger"])


def nodes(out: dict) -> list[str]:
    return [r["node"] for r in out["ledger"]]


def assert_nothing_paid_after_cap(out: dict, cap: float) -> None:
    """No paid call started once the paid spend had reached ``cap``."""
    spent = 0.0
    for record in sorted(out["ledger"], key=lambda r: r["started_at"]):
        if record["tier"] == "paid":
            assert spent < cap, f"paid call {record['node']} after the cap was reached"
            spent += record["usd"]


def assert_degraded_by_budget(out: dict) -> None:
    assert out["degraded"] is True and out["stop_reason"] == "degraded"
    assert any("budget" in reason for reason in out["degraded_reasons"])


def assert_degraded_unreachable(out: dict) -> None:
    assert out["degraded"] is True
    assert totals(out)["paid_calls"] == 0
    assert all(r["model"] != "cloud" for r in out["ledger"])
    assert any("unreachable" in reason and "cloud" in reason
               for reason in out["degraded_reasons"])
    assert out["answer"] is not None


def block(prompt: str, tag: str) -> str:
    """Body of the (last) ``<tag>`` element of a prompt."""
    found = re.findall(rf"<{tag}>\n(.*?)\n</{tag}>", prompt, re.DOTALL)
    assert found, f"no <{tag}> in prompt"
    return found[-1]


# -- COPE -------------------------------------------------------------------------------------
SMALL_PLAN, LARGE_PLAN = "1. Split it up. SMALL-PLAN-7c1", "1. Work it out. LARGE-PLAN-9d2"


def cope_models(stage1: tuple[str, ...], stage2: tuple[str, ...] = ("42",),
                stage3: str = "99") -> tuple[ScriptedChatModel, ScriptedChatModel]:
    """Small: plans SMALL_PLAN; executes with ``stage1`` answers under its own plan and
    ``stage2`` answers under the large plan. Large: plans LARGE_PLAN, executes ``stage3``."""
    s1, s2 = cycling(*stage1), cycling(*stage2)

    def small(prompt: str) -> str:
        if "You are the planner" in prompt:
            return SMALL_PLAN
        assert "<plan>" in prompt
        return f"Executed.\nAnswer: {s2() if 'LARGE-PLAN' in prompt else s1()}"

    def large(prompt: str) -> str:
        if "You are the planner" in prompt:
            return LARGE_PLAN
        return f"Executed by the large model.\nAnswer: {stage3}"

    return ScriptedChatModel(script=small), ScriptedChatModel(script=large)


def cope_run(small, large, **kw) -> dict:
    pool = make_pool({"small": small}, {"large": large})
    return create_cope_graph(pool=pool, **kw).invoke({"question": "What is 6 times 7?"})


def test_cope_cheap_stage_agrees_without_paid_calls():
    small, large = cope_models(stage1=("5",))
    out = cope_run(small, large)
    assert out["answer"] == "5" and out["stage"] == 1
    assert out["stop_reason"] == "stage 1 agreed" and not out["degraded"]
    assert large.calls == [] and totals(out)["paid_calls"] == 0
    assert nodes(out) == ["plan1", "execute1", "execute1", "execute1"]
    assert {r["stage"] for r in out["ledger"]} == {1}
    # the small plan reaches every executor prompt, inside <plan>
    executions = [p for p in small.prompts if "<plan>" in p]
    assert len(executions) == 3
    assert all(block(p, "plan") == SMALL_PLAN for p in executions)


def test_cope_disagreement_escalates_to_stage_two_large_plan_small_executor():
    small, large = cope_models(stage1=("1", "1", "2"), stage2=("42",))
    out = cope_run(small, large)
    assert out["stage"] == 2 and out["stop_reason"] == "stage 2 agreed"
    assert out["answer"] == "42"  # stage 2's majority, not stage 1's ("1")
    assert [(r["node"], r["model"], r["tier"], r["stage"]) for r in out["ledger"]] == [
        ("plan1", "small", "local", 1), *[("execute1", "small", "local", 1)] * 3,
        ("plan2", "large", "paid", 2), *[("execute2", "small", "local", 2)] * 3]
    assert len(large.calls) == 1 and "You are the planner" in large.prompts[0]
    assert [(p["stage"], p["model"], p["text"]) for p in out["plans"]] == [
        (1, "small", SMALL_PLAN), (2, "large", LARGE_PLAN)]
    stage2 = [p for p in small.prompts if "<plan>" in p and "LARGE-PLAN" in p]
    assert len(stage2) == 3 and all(block(p, "plan") == LARGE_PLAN for p in stage2)
    assert totals(out)["paid_usd"] == pytest.approx(CALL_USD)


def test_cope_stage_three_large_plans_and_executes_when_stage_two_disagrees():
    small, large = cope_models(stage1=("1", "2", "3"), stage2=("4", "5", "6"), stage3="99")
    out = cope_run(small, large)
    # one large execution "agrees" with itself: the stop reason reads "stage 3 agreed"
    assert out["stage"] == 3 and out["stop_reason"].startswith("stage 3")
    assert out["answer"] == "99"
    # stage 3 reuses the large planner's stage-2 plan: no second paid planner call
    stage3 = [(r["node"], r["model"], r["tier"]) for r in out["ledger"] if r["stage"] == 3]
    assert stage3 == [("execute3", "large", "paid")]
    assert Counter(r["stage"] for r in out["ledger"]) == {1: 4, 2: 4, 3: 1}
    assert [(p["stage"], p["node"], p.get("reused_from")) for p in out["plans"]] == [
        (1, "plan1", None), (2, "plan2", None), (3, "plan3", 2)]
    assert "plan3" in [p["node"] for p in out["path"]] and "plan3" not in nodes(out)
    # the large executor follows the large plan
    executor_prompt = next(p for p in large.prompts if "<plan>" in p)
    assert block(executor_prompt, "plan") == LARGE_PLAN
    assert totals(out)["paid_calls"] == 2


def test_cope_threshold_zero_never_escalates():
    small, large = cope_models(stage1=("1", "2", "3"))
    out = cope_run(small, large, threshold=0)
    assert out["stage"] == 1 and large.calls == []
    assert out["answer"] in {"1", "2", "3"}


def test_cope_samples_parameter():
    # one sample always agrees with itself: never escalates
    small, large = cope_models(stage1=("1", "2", "3"))
    out = cope_run(small, large, samples=1)
    assert nodes(out) == ["plan1", "execute1"] and large.calls == []
    # five samples, 3 of 5 agree (0.6): escalates at 0.67, not at 0.6
    small, large = cope_models(stage1=("7", "7", "7", "8", "9"))
    out = cope_run(small, large, samples=5)
    assert nodes(out).count("execute1") == 5 and nodes(out).count("execute2") == 5
    assert out["stage"] == 2
    small, large = cope_models(stage1=("7", "7", "7", "8", "9"))
    out = cope_run(small, large, samples=5, threshold=0.6)
    assert out["stage"] == 1 and out["answer"] == "7" and large.calls == []


def test_cope_two_of_three_is_below_the_default_threshold():
    """2/3 = 0.667 < 0.67: with the defaults (3 samples, 0.67) only unanimity stops stage 1."""
    small, large = cope_models(stage1=("7", "7", "8"))
    assert cope_run(small, large)["stage"] == 2
    small, large = cope_models(stage1=("7", "7", "8"))
    out = cope_run(small, large, threshold=0.66)
    assert out["stage"] == 1 and out["answer"] == "7"


# -- route (more in test_route.py) --------------------------------------------------------------
def test_route_sends_hard_questions_to_the_paid_tier():
    small, big = answerer("1"), answerer("2")
    graph = create_route_graph(pool=make_pool({"small": small}, {"big": big}), threshold=0.5)
    out = graph.invoke({"question": "Prove that the integral of a probability density is 1,"
                                    " then explain why each step holds."})
    assert out["answer"] == "2" and nodes(out) == ["strong"]
    out = graph.invoke({"question": "Say hi."})
    assert out["answer"] == "1" and nodes(out) == ["weak"]


# -- cascade ----------------------------------------------------------------------------------
def cascade_local(*answers: str, confidence: str = "0.9") -> ScriptedChatModel:
    """Answers from ``answers``; as the verifier, replies ``Confidence: <confidence>``."""
    nxt = cycling(*answers)

    def script(prompt: str) -> str:
        if "<candidate>" in prompt:
            return f"Looks {'right' if float(confidence) > 0.5 else 'wrong'}.\n" \
                   f"Confidence: {confidence}"
        return f"Local working.\nAnswer: {nxt()}"

    return ScriptedChatModel(script=script)


def test_cascade_high_agreement_does_not_escalate():
    local, paid = cascade_local("6"), answerer("99")
    out = create_cascade_graph(pool=make_pool({"small": local}, {"big": paid})).invoke(
        {"question": "q"})
    assert out["answer"] == "6" and paid.calls == []
    assert out["scores"]["verify"] == 1.0 and nodes(out) == ["local_answer"] * 3


def test_cascade_low_agreement_escalates_and_the_paid_answer_is_the_output():
    local, paid = cascade_local("1", "2", "3"), answerer("99")
    out = create_cascade_graph(pool=make_pool({"small": local}, {"big": paid})).invoke(
        {"question": "q"})
    assert out["answer"] == "99" and len(paid.calls) == 1
    assert out["scores"]["verify"] == pytest.approx(1 / 3)
    assert nodes(out)[-1] == "escalate" and out["ledger"][-1]["tier"] == "paid"


@pytest.mark.parametrize(("confidence", "escalates"), [("0.9", False), ("0.1", True)])
def test_cascade_self_check_verifier(confidence, escalates):
    local, paid = cascade_local("6", confidence=confidence), answerer("99")
    out = create_cascade_graph(pool=make_pool({"small": local}, {"big": paid}),
                               verifier="self_check").invoke({"question": "What is 2 * 3?"})
    assert out["scores"]["verify"] == float(confidence)
    verify = [p for p in local.prompts if "<candidate>" in p]
    assert len(verify) == 1
    assert "What is 2 * 3?" in verify[0] and "Answer: 6" in block(verify[0], "candidate")
    assert [r["role"] for r in out["ledger"] if r["node"] == "verify"] == ["verifier"]
    assert (len(paid.calls) == 1) is escalates
    assert out["answer"] == ("99" if escalates else "6")


def test_cascade_self_check_verifies_the_majority_answer_that_is_output():
    """Samples 7, 7, 8: the verifier must judge "7" (the output), whichever sample came last."""
    nxt = cycling("7", "7", "8")

    def script(prompt: str) -> str:
        if "<candidate>" in prompt:
            good = "Answer: 7" in block(prompt, "candidate")
            return f"Confidence: {0.9 if good else 0.1}"
        return f"Local working.\nAnswer: {nxt()}"

    local, paid = ScriptedChatModel(script=script), answerer("99")
    out = create_cascade_graph(pool=make_pool({"small": local}, {"big": paid}),
                               verifier="self_check").invoke({"question": "q"})
    assert out["scores"]["verify"] == 0.9 and paid.calls == [] and out["answer"] == "7"


# -- Mixture-of-Agents ----------------------------------------------------------------------------
def proposer(name: str, first: str, refined: str) -> ScriptedChatModel:
    def script(prompt: str) -> str:
        if "<answers>" in prompt:
            return f"{name} refined REF-{name}.\nAnswer: {refined}"
        return f"{name} proposes PROP-{name}.\nAnswer: {first}"

    return ScriptedChatModel(script=script)


def moa_setup(refine_layers: int) -> tuple[dict, ScriptedChatModel, dict]:
    props = {"p1": proposer("p1", "1", "5"), "p2": proposer("p2", "2", "5"),
             "p3": proposer("p3", "3", "6")}
    agg = ScriptedChatModel(reply="Synthesised.\nAnswer: 77")
    pool = make_pool(props, {"agg": agg})
    out = create_moa_graph(pool=pool, proposers=list(props), aggregator="agg",
                           refine_layers=refine_layers).invoke({"question": "q?"})
    return props, agg, out


def test_moa_refine_layer_sees_every_proposal_and_aggregator_answers():
    props, agg, out = moa_setup(refine_layers=1)
    for model in props.values():
        assert len(model.calls) == 2
        refine = model.prompts[1]
        answers = block(refine, "answers")
        for other in props:
            assert f'participant="{other}"' in answers and f"PROP-{other}" in answers
    (agg_prompt,) = agg.prompts
    final = block(agg_prompt, "answers")
    # the aggregator reads the last layer (the refinements), not the first proposals
    assert all(f"REF-{n}" in final for n in props) and "PROP-" not in final
    assert out["answer"] == "77" and out["ledger"][-1]["node"] == "aggregate"
    assert totals(out)["paid_calls"] == 1 and out["rounds"] == 1


def test_moa_without_refine_layers_aggregates_the_proposals():
    props, agg, out = moa_setup(refine_layers=0)
    assert all(len(m.calls) == 1 for m in props.values())
    assert "refine" not in nodes(out)
    assert all(f"PROP-{n}" in agg.prompts[0] for n in props)
    assert out["answer"] == "77"


def test_moa_two_refine_layers():
    props, agg, out = moa_setup(refine_layers=2)
    assert all(len(m.calls) == 3 for m in props.values())
    assert nodes(out).count("refine") == 6 and out["rounds"] == 2
    # the second layer reads the first layer's refinements
    assert all("REF-p1" in block(m.prompts[2], "answers") for m in props.values())


# -- debate -----------------------------------------------------------------------------------
def agent(name: str, first: str, later: str | None = None) -> ScriptedChatModel:
    def script(prompt: str) -> str:
        if "<answers>" in prompt:
            return f"{name} debated DEB-{name}.\nAnswer: {later or first}"
        return f"{name} opens OPEN-{name}.\nAnswer: {first}"

    return ScriptedChatModel(script=script)


def test_debate_agents_see_the_others_answers_not_their_own():
    agents = {"a": agent("a", "1"), "b": agent("b", "2"), "c": agent("c", "3")}
    out = create_debate_graph(pool=make_pool(agents), agents=list(agents), rounds=2).invoke(
        {"question": "q"})
    for name, model in agents.items():
        assert len(model.calls) == 3
        for prompt in model.prompts[1:]:
            answers = block(prompt, "answers")
            others = [o for o in agents if o != name]
            assert all(f'participant="{o}"' in answers for o in others)
            assert f'participant="{name}"' not in answers and f"-{name}." not in answers
            assert f"-{name}." in block(prompt, "previous_answer")
        # round 2 reads the others' round-1 arguments
        assert all(f"DEB-{o}" in block(model.prompts[2], "answers")
                   for o in agents if o != name)
    assert out["rounds"] == 2 and out["stop_reason"] == "max_rounds"


@pytest.mark.parametrize("rounds", [0, 1, 3])
def test_debate_rounds_bound_the_rounds(rounds):
    agents = {"a": agent("a", "1"), "b": agent("b", "2"), "c": agent("c", "3")}
    out = create_debate_graph(pool=make_pool(agents), agents=list(agents),
                              rounds=rounds).invoke({"question": "q"})
    assert all(len(m.calls) == 1 + rounds for m in agents.values())
    assert out["rounds"] == rounds


def test_debate_finishes_early_when_all_agree():
    agents = {"a": agent("a", "1", later="2"), "b": agent("b", "2"),
              "c": agent("c", "3", later="2")}
    out = create_debate_graph(pool=make_pool(agents), agents=list(agents), rounds=3).invoke(
        {"question": "q"})
    assert out["rounds"] == 1 and out["stop_reason"] == "consensus"
    assert all(len(m.calls) == 2 for m in agents.values())
    assert out["answer"] == "2"


def test_debate_n_agents_from_one_model():
    model = answerer("4")
    out = create_debate_graph(pool=make_pool({"solo": model}), n_agents=4).invoke(
        {"question": "q"})
    assert len(model.calls) == 4  # all agree at once: no debate round
    assert sorted(out["answers"]) == ["solo#1", "solo#2", "solo#3", "solo#4"]


# -- self-consistency and single ----------------------------------------------------------------
def test_self_consistency_majority_of_n_samples_of_one_model():
    solver, big = answerer("7", "7", "8", "7", "9"), answerer("99")
    out = create_self_consistency_graph(pool=make_pool({"solo": solver}, {"big": big}),
                                        samples=5).invoke({"question": "q"})
    assert len(solver.calls) == 5 and big.calls == []
    assert out["answer"] == "7" and len(out["answers"]) == 5
    out = create_self_consistency_graph(pool=make_pool({"solo": answerer("3")}),
                                        samples=3).invoke({"question": "q"})
    assert nodes(out) == ["answer"] * 3


def test_single_makes_one_call_to_the_paid_model_by_default():
    small, big = answerer("1"), answerer("2")
    pool = make_pool({"small": small}, {"big": big})
    out = create_single_graph(pool=pool).invoke({"question": "q"})
    assert out["answer"] == "2" and len(big.calls) == 1 and small.calls == []
    assert [(r["model"], r["tier"]) for r in out["ledger"]] == [("big", "paid")]
    out = create_single_graph(pool=pool, solver="small").invoke({"question": "q"})
    assert out["answer"] == "1" and totals(out)["paid_calls"] == 0


# -- CoLM for vision-language clients ------------------------------------------------------------
class RecordingChatModel(ScriptedChatModel):
    """Also keeps the raw messages of each call (content blocks included)."""

    _messages: list[list[Any]] = PrivateAttr(default_factory=list)

    @property
    def messages(self) -> list[list[Any]]:
        return list(self._messages)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self._messages.append(list(messages))
        return super()._generate(messages, stop, run_manager, **kwargs)

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
        self._messages.append(list(messages))
        return await super()._agenerate(messages, stop, run_manager, **kwargs)


IMAGES = ["https://example.invalid/cat.png",
          {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]


def vlm(name: str, first: str) -> RecordingChatModel:
    def script(prompt: str) -> str:
        if "<answers>" in prompt:
            return f"{name} refined.\nAnswer: cat"
        return f"{name} sees SEES-{name}.\nAnswer: {first}"

    return RecordingChatModel(script=script)


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_colm_vlm_images_reach_every_call_and_refines_see_all_outputs(mode):
    clients = {"va": vlm("va", "cat"), "vb": vlm("vb", "dog")}
    graph = create_colm_vlm_graph(pool=make_pool(clients))
    payload = {"question": "What animal is in the picture?", "images": IMAGES}
    out = graph.invoke(payload) if mode == "invoke" else await graph.ainvoke(payload)
    for model in clients.values():
        assert len(model.messages) == 2  # draft, refine
        for messages in model.messages:
            last = messages[-1]
            assert isinstance(last, HumanMessage) and isinstance(last.content, list)
            text, *images = last.content
            assert text["type"] == "text" and "What animal is in the picture?" in text["text"]
            assert images == [{"type": "image_url",
                               "image_url": {"url": "https://example.invalid/cat.png"}},
                              IMAGES[1]]
        refine = block(model.prompts[1], "answers")
        assert "SEES-va" in refine and "SEES-vb" in refine  # every client's first answer
    assert out["answer"] == "cat" and out["rounds"] == 1


def test_route_budget_of_zero_keeps_hard_questions_local():
    small, big = answerer("1"), answerer("2")
    out = create_route_graph(pool=make_pool({"small": small}, {"big": big}), threshold=0.0,
                             max_paid_usd=0).invoke({"question": "Prove it."})
    assert big.calls == [] and out["answer"] == "1"
    assert_degraded_by_budget(out)


def test_cascade_budget_of_zero_answers_locally():
    small, big = answerer("1", "1", "2"), answerer("99")
    out = create_cascade_graph(pool=make_pool({"small": small}, {"big": big}),
                               max_paid_usd=0).invoke({"question": "q"})
    assert big.calls == [] and out["answer"] == "1"
    assert_degraded_by_budget(out)


def test_single_budget_of_zero_falls_back_to_the_local_model():
    small, big = answerer("1"), answerer("2")
    out = create_single_graph(pool=make_pool({"small": small}, {"big": big}),
                              max_paid_usd=0).invoke({"question": "q"})
    assert big.calls == [] and out["answer"] == "1" and nodes(out) == ["fallback_answer"]
    assert_degraded_by_budget(out)


# -- unreachable paid endpoint ---------------------------------------------------------------------
def test_colm_unreachable_paid_server():
    pool = unreachable_pool({"a": answerer("1"), "b": answerer("2")})
    out = create_colm_graph(pool=pool).invoke({"question": "q"})
    assert_degraded_unreachable(out)
    assert out["answer"] in {"1", "2"} and out["guidance"] == []


def test_cope_unreachable_paid_planner():
    small, _ = cope_models(stage1=("1", "1", "2"))
    out = create_cope_graph(pool=unreachable_pool({"small": small})).invoke({"question": "q"})
    assert_degraded_unreachable(out)
    assert out["stage"] == 1 and out["answer"] == "1"


def test_route_unreachable_strong_model():
    weak = answerer("1")
    out = create_route_graph(pool=unreachable_pool({"weak": weak}), threshold=0.0).invoke(
        {"question": "Prove it."})
    assert_degraded_unreachable(out)
    assert out["answer"] == "1" and nodes(out) == ["weak"]


def test_cascade_unreachable_paid_model():
    out = create_cascade_graph(pool=unreachable_pool({"small": answerer("1", "2", "2")})).invoke(
        {"question": "q"})
    assert_degraded_unreachable(out)
    assert out["answer"] == "2"


def test_single_unreachable_paid_model():
    out = create_single_graph(pool=unreachable_pool({"small": answerer("1")})).invoke(
        {"question": "q"})
    assert_degraded_unreachable(out)
    assert out["answer"] == "1"


def test_moa_unreachable_aggregator_with_local_proposers():
    props = {"l1": answerer("5"), "l2": answerer("5"), "l3": answerer("6")}
    out = create_moa_graph(pool=unreachable_pool(props), proposers=list(props)).invoke(
        {"question": "q"})
    assert_degraded_unreachable(out)
    assert out["answer"] == "5" and "aggregate" not in nodes(out)


def test_moa_unreachable_paid_model_with_default_roles():
    props = {"l1": answerer("5"), "l2": answerer("5")}
    out = create_moa_graph(pool=unreachable_pool(props)).invoke({"question": "q"})
    assert_degraded_unreachable(out)


# -- every variant: one ledger shape, runs on a two-model pool ---------------------------------
RECORD_KEYS = set(CallRecord.__annotations__)
REQUIRED_KEYS = {k for k, v in CallRecord.__annotations__.items() if "NotRequired" not in str(v)}


def test_bundled_variants_are_the_nine_tested_here():
    assert sorted(bundled_graphs()) == VARIANTS


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
@pytest.mark.parametrize("name", VARIANTS)
async def test_every_variant_runs_on_one_local_and_one_paid_model(name, mode):
    small, big = answerer("3", tag="local"), answerer("3", tag="paid")
    pool = make_pool({"small": small}, {"big": big})
    payload: dict[str, Any] = {"question": "What is 1 + 2?"}
    if name == "colm_vlm":
        payload["images"] = ["data:image/png;base64,iVBORw0KGgo="]
    graph = load_graph(name, pool=pool)
    out = graph.invoke(payload) if mode == "invoke" else await graph.ainvoke(payload)
    assert out["answer"] == "3" and out["degraded"] is False
    assert out["ledger"] and isinstance(out["stop_reason"], str) and out["path"]
    assert len(out["ledger"]) == len(small.calls) + len(big.calls)
    for record in out["ledger"]:
        assert REQUIRED_KEYS <= set(record) <= RECORD_KEYS, record
        assert record["model"] in ("small", "big")
        assert record["tier"] == ("paid" if record["model"] == "big" else "local")
        assert record["input_tokens"] == 10 and record["output_tokens"] == 5
        assert record["usd"] == (CALL_USD if record["tier"] == "paid" else 0.0)
        assert record["tokens_estimated"] is False
        assert isinstance(record["node"], str) and isinstance(record["round"], int)
        assert record["latency_s"] >= 0 and record["started_at"] > 0
    t = totals(out)
    assert t["calls"] == len(out["ledger"]) and t["paid_calls"] == len(big.calls)
