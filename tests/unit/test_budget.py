"""Budgets that hold: checked before every paid call against its worst case."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colm_graph import ModelPool, bundled_graphs, ledger_totals, load_graph
from colm_graph.pool.providers.sim.tasks import bundled_tasks

TASKS = bundled_tasks().tasks
VARIANTS = bundled_graphs()


def sim_pool(locals_: list[dict[str, Any]], paids: list[dict[str, Any]]) -> ModelPool:
    models = []
    for i, m in enumerate(locals_):
        models.append({"name": f"loc{i}", "provider": "sim", "tier": "local",
                       "domains": ["arithmetic", "algebra"][i % 2:],
                       "sim": {"default_skill": m["skill"], "seed": i,
                               "extra_output_tokens": m["extra"]}})
    for i, m in enumerate(paids):
        entry: dict[str, Any] = {
            "name": f"paid{i}", "provider": "sim", "tier": "paid",
            "price": {"input": m["pin"], "output": m["pout"]},
            "sim": {"default_skill": 0.9, "seed": 50 + i, "extra_output_tokens": m["extra"]}}
        if m["max_tokens"] is not None:
            entry["max_tokens"] = m["max_tokens"]
        models.append(entry)
    return ModelPool.from_dict({"models": models}, source="property")


local_model = st.fixed_dictionaries({"skill": st.floats(0, 1), "extra": st.integers(0, 400)})
paid_model = st.fixed_dictionaries({
    "pin": st.floats(0, 60), "pout": st.floats(0, 120), "extra": st.integers(0, 900),
    "max_tokens": st.none() | st.integers(1, 600)})
PROPERTY_RUNS = 1000


@pytest.mark.slow
@settings(max_examples=PROPERTY_RUNS, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(locals_=st.lists(local_model, min_size=1, max_size=3),
       paids=st.lists(paid_model, min_size=1, max_size=2),
       variant=st.sampled_from(VARIANTS),
       cap_usd=st.none() | st.floats(0, 0.03),
       cap_tokens=st.none() | st.integers(0, 4000),
       task=st.integers(0, len(TASKS) - 1),
       paid_roles=st.booleans())
def test_no_run_ever_exceeds_its_paid_budget(locals_, paids, variant, cap_usd, cap_tokens, task,
                                             paid_roles):
    pool = sim_pool(locals_, paids)
    roles: dict[str, Any] = {}
    if paid_roles and variant in ("moa", "debate", "self_consistency", "colm_vlm"):
        # the variants whose default roles are all local: put paid models in them too
        role = {"moa": "proposer", "debate": "agent", "self_consistency": "solver",
                "colm_vlm": "client"}[variant]
        roles[role] = pool.names()
    graph = load_graph(variant, pool=pool, roles=roles,
                       params={"max_paid_usd": cap_usd, "max_paid_tokens": cap_tokens})
    out = graph.invoke({"question": TASKS[task].question})
    t = ledger_totals(out["ledger"])
    if cap_usd is not None:
        assert t["paid_usd"] <= cap_usd + 1e-12
    if cap_tokens is not None:
        assert t["paid_input_tokens"] + t["paid_output_tokens"] <= cap_tokens
    assert out["answer"] is not None or out["responses"] or out["ledger"]
    if any(r.get("degraded") for r in out["ledger"]):
        assert out["degraded"] and out["degraded_reasons"]


def test_refused_paid_call_runs_on_the_local_tier_and_says_why():
    pool = sim_pool([{"skill": 0.5, "extra": 50}],
                    [{"pin": 50.0, "pout": 100.0, "extra": 300, "max_tokens": None}])
    out = load_graph("single", pool=pool, params={"max_paid_usd": 0.001}).invoke(
        {"question": TASKS[0].question})
    t = ledger_totals(out["ledger"])
    assert t["paid_calls"] == 0 and t["local_calls"] == 1
    rec = out["ledger"][0]
    assert rec["fallback_for"] == "paid0" and "budget" in rec["degraded"]
    assert out["degraded"] and "budget" in out["degraded_reasons"][0]
    assert out["answer"] is not None


def test_paid_output_is_capped_to_what_the_budget_left_allows():
    # the prompt costs nothing; each output token costs $100/M: $0.01 buys 100 tokens
    pool = sim_pool([{"skill": 0.5, "extra": 50}],
                    [{"pin": 0.0, "pout": 100.0, "extra": 900, "max_tokens": None}])
    out = load_graph("single", pool=pool, params={"max_paid_usd": 0.01}).invoke(
        {"question": TASKS[0].question})
    rec = out["ledger"][0]
    assert rec["tier"] == "paid" and rec["output_tokens"] == 100
    assert rec["usd"] == pytest.approx(0.01)
    uncapped = load_graph("single", pool=pool).invoke({"question": TASKS[0].question})
    assert uncapped["ledger"][0]["output_tokens"] > 900


def test_token_budget_and_per_invocation_override():
    pool = sim_pool([{"skill": 0.5, "extra": 50}],
                    [{"pin": 1.0, "pout": 1.0, "extra": 300, "max_tokens": 400}])
    graph = load_graph("single", pool=pool, params={"max_paid_tokens": 50})
    out = graph.invoke({"question": TASKS[0].question})
    assert ledger_totals(out["ledger"])["paid_calls"] == 0 and out["degraded"]
    # a per-invocation cap (how the eval shares its budget) overrides the parameter
    out = graph.invoke({"question": TASKS[0].question},
                       {"configurable": {"max_paid_tokens": 100_000}})
    assert ledger_totals(out["ledger"])["paid_calls"] == 1 and not out["degraded"]


def test_parallel_paid_calls_share_the_budget():
    pool = sim_pool([{"skill": 0.5, "extra": 50}],
                    [{"pin": 0.0, "pout": 100.0, "extra": 500, "max_tokens": None},
                     {"pin": 0.0, "pout": 100.0, "extra": 500, "max_tokens": None}])
    out = load_graph("moa", pool=pool, roles={"proposer": ["paid0", "paid1"]},
                     params={"max_paid_usd": 0.02, "refine_layers": 0}).invoke(
        {"question": TASKS[0].question})
    first = [r for r in out["ledger"] if r["node"] == "propose"]
    assert [r["tier"] for r in first] == ["paid", "paid"]
    assert all(r["usd"] <= 0.01 + 1e-12 for r in first)  # each got half of $0.02
    assert ledger_totals(out["ledger"])["paid_usd"] <= 0.02 + 1e-12


@pytest.mark.parametrize("cap", [0.0, 0.01, 0.05])
def test_an_eval_never_exceeds_its_budget(tmp_path, capsys, cap):
    import json

    from colm_graph.cli.main import main

    out = tmp_path / f"eval-{cap}"
    assert main(["eval", "--out", str(out), "--graphs", "colm,large_only", "--limit", "30",
                 "--max-paid-usd", str(cap), "--quiet"]) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 60
    assert sum(r["paid_usd"] for r in rows) <= cap + 1e-12
    assert all(r["answer"] is not None or r["error"] is None for r in rows)
    if cap == 0.0:
        assert all(r["paid_calls"] == 0 and r["degraded"] for r in rows
                   if r["graph"] == "large_only")


@pytest.mark.parametrize("argv, needle", [
    (["run", "q", "--max-paid-tokens", "-5"], "--max-paid-tokens"),
    (["run", "q", "--max-paid-tokens", "many"], "--max-paid-tokens"),
    (["eval", "--out", "x", "--max-paid-usd", "-1"], "--max-paid-usd"),
    (["serve", "--max-paid-tokens", "x"], "--max-paid-tokens"),
])
def test_budget_flags_are_checked(capsys, argv, needle):
    from colm_graph.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err


def test_run_token_budget_flag(capsys):
    import json

    from colm_graph.cli.main import main

    assert main(["run", TASKS[0].question, "--graph", "single", "--max-paid-tokens", "10",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ledger"]["totals"]["paid_calls"] == 0 and out["degraded"]
