"""The predicates of conditional edges, one by one, and ``evaluate`` with not / all / any, on
hand-built states and a small run context."""

from __future__ import annotations

from typing import Any

import pytest

from colm_graph.core.prompts import load_prompts
from colm_graph.nodes import RunContext
from colm_graph.pool import ModelPool
from colm_graph.spec.predicates import (
    COMBINATORS,
    PREDICATES,
    check_condition,
    describe,
    evaluate,
)

POOL_DICT = {
    "models": [
        {"name": "small", "provider": "sim", "tier": "local"},
        {"name": "big", "provider": "sim", "tier": "paid", "price": {"input": 1, "output": 2}},
        {"name": "down", "provider": "sim", "tier": "paid", "sim": {"reachable": False}},
        {"name": "gone-local", "provider": "sim", "tier": "local", "sim": {"reachable": False}},
    ]
}


def make_run(params: dict[str, Any] | None = None,
             roles: dict[str, list[str]] | None = None) -> RunContext:
    roles = roles if roles is not None else {"client": ["small"], "server": ["big"]}
    return RunContext(pool=ModelPool.from_dict(POOL_DICT, source="predicate-pool"),
                      roles=roles, counts={r: len(m) for r, m in roles.items()},
                      params={"max_paid_usd": None, **(params or {})},
                      prompts=load_prompts())


def call(tier: str, usd: float) -> dict[str, Any]:
    """A ledger record (only the fields the totals read matter)."""
    return {"node": "n", "role": "r", "model": "m", "tier": tier, "round": 0,
            "input_tokens": 10, "output_tokens": 5, "usd": usd, "latency_s": 0.0,
            "started_at": 0.0, "tokens_estimated": False}


def holds(name: str, state: dict[str, Any], arg: Any = None,
         run: RunContext | None = None) -> bool:
    return PREDICATES[name].test(state, run or make_run(), arg)


# -- the registry --------------------------------------------------------------------------
def test_registry_names_and_argument_kinds() -> None:
    assert set(PREDICATES) == {
        "agreed", "agreement_below", "agreement_at_least", "rounds_left", "rounds_at_least",
        "budget_left_usd_above", "paid_tokens_left_above", "paid_reachable", "score_above",
        "score_at_least",
        "score_below", "flag", "time_left_above", "fits_deadline", "residency_ok"}
    for name, pred in PREDICATES.items():
        assert pred.arg in ("none", "number", "int", "bool", "role_or_none", "roles"), name
        assert pred.doc, name
        assert name not in COMBINATORS


def test_predicates_are_plain_data() -> None:
    pred = PREDICATES["agreed"]
    with pytest.raises(AttributeError):
        pred.arg = "number"  # type: ignore[misc]  # frozen


# -- agreement ------------------------------------------------------------------------------
@pytest.mark.parametrize("state,expected", [
    ({"unanimous": True}, True),
    ({"unanimous": False}, False),
    ({}, False),
])
def test_agreed(state: dict[str, Any], expected: bool) -> None:
    assert holds("agreed", state) is expected


@pytest.mark.parametrize("agreement,arg,below", [
    (0.5, 0.6, True),
    (0.6, 0.6, False),
    (1.0, 0.6, False),
    (0.0, 0.0, False),
    (1.0, 1, False),
    (0.99, 1, True),
])
def test_agreement_below_and_at_least(agreement: float, arg: float, below: bool) -> None:
    state = {"agreement": agreement}
    assert holds("agreement_below", state, arg) is below
    assert holds("agreement_at_least", state, arg) is (not below)


def test_agreement_missing_counts_as_zero() -> None:
    assert holds("agreement_below", {}, 0.1) is True
    assert holds("agreement_at_least", {}, 0.0) is True
    assert holds("agreement_at_least", {}, 0.1) is False


# -- rounds ---------------------------------------------------------------------------------
@pytest.mark.parametrize("rounds,arg,left", [
    (0, 2, True),
    (1, 2, True),
    (2, 2, False),
    (3, 2, False),
    (0, 0, False),
])
def test_rounds_left_and_at_least(rounds: int, arg: int, left: bool) -> None:
    state = {"rounds": rounds}
    assert holds("rounds_left", state, arg) is left
    assert holds("rounds_at_least", state, arg) is (not left)


def test_rounds_missing_counts_as_zero() -> None:
    assert holds("rounds_left", {}, 1) is True
    assert holds("rounds_at_least", {}, 0) is True
    assert holds("rounds_at_least", {}, 1) is False


# -- scores ---------------------------------------------------------------------------------
@pytest.mark.parametrize("score,arg,above,at_least,below", [
    (0.7, 0.5, True, True, False),
    (0.5, 0.5, False, True, False),
    (0.3, 0.5, False, False, True),
])
def test_scores(score: float, arg: float, above: bool, at_least: bool, below: bool) -> None:
    state = {"score": score}
    assert holds("score_above", state, arg) is above
    assert holds("score_at_least", state, arg) is at_least
    assert holds("score_below", state, arg) is below


def test_score_missing_counts_as_zero() -> None:
    assert holds("score_below", {}, 0.1) is True
    assert holds("score_above", {}, 0.0) is False
    assert holds("score_at_least", {}, 0.0) is True


# -- flag -----------------------------------------------------------------------------------
def test_flag() -> None:
    assert holds("flag", {}, True) is True
    assert holds("flag", {}, False) is False


# -- budget ---------------------------------------------------------------------------------
def test_budget_without_cap_is_always_left() -> None:
    run = make_run()  # max_paid_usd: None
    lots = {"ledger": [call("paid", 1000.0)]}
    assert holds("budget_left_usd_above", lots, 0, run) is True
    assert holds("budget_left_usd_above", {}, 1e9, run) is True


def test_budget_with_cap() -> None:
    run = make_run({"max_paid_usd": 0.01})
    assert holds("budget_left_usd_above", {}, 0, run) is True
    spent = {"ledger": [call("paid", 0.004), call("local", 5.0)]}  # local spend is free
    assert holds("budget_left_usd_above", spent, 0, run) is True
    assert holds("budget_left_usd_above", spent, 0.005, run) is True
    assert holds("budget_left_usd_above", spent, 0.006, run) is False  # 0.006 left, not above
    assert holds("budget_left_usd_above", spent, 0.01, run) is False
    all_spent = {"ledger": [call("paid", 0.004), call("paid", 0.006)]}
    assert holds("budget_left_usd_above", all_spent, 0, run) is False
    over = {"ledger": [call("paid", 0.02)]}
    assert holds("budget_left_usd_above", over, 0, run) is False


def test_budget_cap_of_zero_allows_no_paid_call() -> None:
    run = make_run({"max_paid_usd": 0})
    assert holds("budget_left_usd_above", {}, 0, run) is False


# -- paid tier reachable --------------------------------------------------------------------
def test_paid_reachable_when_every_paid_model_answers() -> None:
    run = make_run(roles={"client": ["small"], "server": ["big"]})
    assert holds("paid_reachable", {}, None, run) is True
    assert holds("paid_reachable", {}, "server", run) is True


def test_paid_unreachable_sim_model() -> None:
    pool = ModelPool.from_dict(POOL_DICT)
    assert pool.entry("down").reachable() is False
    run = make_run(roles={"client": ["small"], "server": ["down"]})
    assert holds("paid_reachable", {}, None, run) is False
    assert holds("paid_reachable", {}, "server", run) is False
    assert holds("paid_reachable", {}, "client", run) is True  # no paid model in that role


def test_paid_reachable_ignores_unreachable_local_models() -> None:
    run = make_run(roles={"client": ["gone-local", "small"], "server": ["big"]})
    assert holds("paid_reachable", {}, None, run) is True


def test_paid_reachable_checks_every_paid_model_of_the_graph() -> None:
    run = make_run(roles={"client": ["small"], "server": ["big"], "judge": ["big", "down"]})
    assert holds("paid_reachable", {}, "server", run) is True
    assert holds("paid_reachable", {}, "judge", run) is False
    assert holds("paid_reachable", {}, None, run) is False


def test_paid_reachable_with_no_paid_model_at_all() -> None:
    run = make_run(roles={"client": ["small"]})
    assert holds("paid_reachable", {}, None, run) is True


# -- evaluate: $parameters, not / all / any -------------------------------------------------
def test_evaluate_bare_name_and_argument() -> None:
    run = make_run()
    assert evaluate("agreed", {"unanimous": True}, run) is True
    assert evaluate({"agreement_below": 0.6}, {"agreement": 0.5}, run) is True
    assert evaluate({"rounds_at_least": 2}, {"rounds": 1}, run) is False


def test_evaluate_resolves_parameters() -> None:
    run = make_run({"t": 0.6, "rounds": 2, "skip": True, "server_role": "server"})
    assert evaluate({"agreement_below": "$t"}, {"agreement": 0.5}, run) is True
    assert evaluate({"agreement_below": "$t"}, {"agreement": 0.7}, run) is False
    assert evaluate({"rounds_left": "$rounds"}, {"rounds": 1}, run) is True
    assert evaluate({"flag": "$skip"}, {}, run) is True
    assert evaluate({"flag": "$skip"}, {}, make_run({"skip": False})) is False
    assert evaluate({"paid_reachable": "$server_role"}, {}, run) is True


def test_evaluate_not() -> None:
    run = make_run()
    assert evaluate({"not": "agreed"}, {"unanimous": True}, run) is False
    assert evaluate({"not": "agreed"}, {}, run) is True
    assert evaluate({"not": {"not": "agreed"}}, {"unanimous": True}, run) is True


@pytest.mark.parametrize("agreed,rounds,all_,any_", [
    (True, 3, True, True),
    (True, 0, False, True),
    (False, 3, False, True),
    (False, 0, False, False),
])
def test_evaluate_all_and_any(agreed: bool, rounds: int, all_: bool, any_: bool) -> None:
    state = {"unanimous": agreed, "rounds": rounds}
    conds = ["agreed", {"rounds_at_least": 1}]
    run = make_run()
    assert evaluate({"all": conds}, state, run) is all_
    assert evaluate({"any": conds}, state, run) is any_


def test_evaluate_colm_skip_guidance_condition() -> None:
    # the second branch of graphs/colm.yaml
    cond = {"all": ["agreed", {"any": [{"rounds_at_least": 1},
                                       {"flag": "$skip_guidance_when_agreed"}]}]}
    skip, ask = make_run({"skip_guidance_when_agreed": True}), \
        make_run({"skip_guidance_when_agreed": False})
    drafts_agree = {"unanimous": True, "rounds": 0}
    assert evaluate(cond, drafts_agree, skip) is True
    assert evaluate(cond, drafts_agree, ask) is False
    assert evaluate(cond, {"unanimous": True, "rounds": 1}, ask) is True
    assert evaluate(cond, {"unanimous": False, "rounds": 1}, skip) is False


def test_evaluate_degrade_condition() -> None:
    # the degrade branch of the shipped variants
    cond = {"not": {"all": ["paid_reachable", {"budget_left_usd_above": 0}]}}
    up = make_run({"max_paid_usd": 0.01})
    assert evaluate(cond, {}, up) is False
    assert evaluate(cond, {"ledger": [call("paid", 0.01)]}, up) is True
    down = make_run({"max_paid_usd": None}, roles={"client": ["small"], "server": ["down"]})
    assert evaluate(cond, {}, down) is True


def test_all_and_any_stop_at_the_first_deciding_condition() -> None:
    run = make_run(roles={"client": ["small"], "server": ["down"]})
    assert evaluate({"any": ["agreed", "paid_reachable"]}, {"unanimous": True}, run) is True
    assert evaluate({"all": [{"not": "agreed"}, "paid_reachable"]}, {"unanimous": True},
                    run) is False
    assert run.pool.links._seen == {}  # the paid model was never probed
    assert evaluate({"any": ["agreed", "paid_reachable"]}, {}, run) is False
    assert set(run.pool.links._seen) == {"down"}


def test_a_down_verdict_is_kept_for_its_back_off_then_probed_again() -> None:
    run = make_run(roles={"server": ["down"]})
    assert evaluate("paid_reachable", {}, run) is False
    first = run.pool.links._seen["down"]
    assert evaluate("paid_reachable", {}, run) is False
    assert run.pool.links._seen["down"] == first  # within the back-off: not probed again


# -- check_condition (what the spec validator calls) ---------------------------------------
PARAMS = {"t": 0.5, "n": 2, "on": True, "word": "high", "role": "server", "none": None}
ROLES = ("client", "server")


@pytest.mark.parametrize("cond", [
    "agreed",
    "paid_reachable",
    {"paid_reachable": "server"},
    {"paid_reachable": "$role"},
    {"paid_reachable": None},
    {"agreement_below": 0.5},
    {"agreement_below": 1},
    {"agreement_below": "$t"},
    {"agreement_at_least": "$n"},
    {"rounds_left": "$n"},
    {"budget_left_usd_above": 0},
    {"score_above": 0.25},
    {"flag": "$on"},
    {"flag": False},
    {"not": "agreed"},
    {"all": ["agreed", {"any": [{"rounds_at_least": 1}, {"flag": "$on"}]}]},
    {"not": {"all": ["paid_reachable", {"budget_left_usd_above": 0}]}},
])
def test_well_formed_conditions(cond: Any) -> None:
    assert check_condition(cond, PARAMS, ROLES) is None


@pytest.mark.parametrize("cond,expected", [
    ("consensus", "unknown predicate 'consensus'"),
    ({"consensus": 1}, "unknown predicate 'consensus'"),
    ("agreement_below", "needs an argument"),
    ({"agreement_below": "high"}, "needs a number, got 'high'"),
    ({"agreement_below": "$word"}, "needs a number, got 'high'"),
    ({"agreement_below": True}, "needs a number, got True"),
    ({"agreement_below": "$none"}, "needs a number, got None"),
    ({"rounds_left": 1.5}, "needs an integer, got 1.5"),
    ({"rounds_left": "$t"}, "needs an integer, got 0.5"),
    ({"rounds_left": True}, "needs an integer, got True"),
    ({"flag": 3}, "needs true or false, got 3"),
    ({"flag": "yes"}, "needs true or false, got 'yes'"),
    ({"agreed": 1}, "takes no argument"),
    ({"agreed": None}, "takes no argument"),
    ({"paid_reachable": 3}, "needs a role name, got 3"),
    ({"paid_reachable": "critic"}, "unknown role 'critic'"),
    ({"agreement_below": "$missing"}, "unknown parameter '$missing'"),
    ({"agreement_below": 0.5, "rounds_left": 2}, "exactly one key"),
    ({}, "exactly one key"),
    (3, "a predicate name or a mapping"),
    (["agreed"], "a predicate name or a mapping"),
    ({"all": []}, "'all' needs a non-empty list"),
    ({"any": "agreed"}, "'any' needs a non-empty list"),
    ({"not": {"any": ["agreed", {"flag": 3}]}}, "needs true or false, got 3"),
])
def test_malformed_conditions(cond: Any, expected: str) -> None:
    err = check_condition(cond, PARAMS, ROLES)
    assert err is not None and expected in err, err
    assert "\n" not in err


def test_role_names_unchecked_without_roles() -> None:
    assert check_condition({"paid_reachable": "critic"}, PARAMS) is None


def test_describe() -> None:
    assert describe("agreed") == "agreed"
    assert describe({"agreement_below": "$t"}) == "agreement_below $t"
    assert describe({"not": "agreed"}) == "not agreed"
    assert describe({"all": ["agreed", {"rounds_left": 2}]}) == "agreed and rounds_left 2"
    assert describe({"any": ["agreed", "paid_reachable"]}) == "agreed or paid_reachable"
