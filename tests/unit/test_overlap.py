"""Client calls of one round run at the same time (models with injected latency)."""

from __future__ import annotations

import pytest

from colm_graph import ModelPool, create_colm_graph
from tests.support.fakes import ScriptedChatModel, intervals_overlap

LATENCY = 0.3


def overlapping(records: list[dict]) -> bool:
    spans = [{"start": r["started_at"], "end": r["started_at"] + r["latency_s"]}
             for r in records]
    return len(spans) >= 2 and intervals_overlap(spans)


def sim_pool() -> ModelPool:
    models = [{"name": f"c{i}", "provider": "sim", "tier": "local",
               "sim": {"latency_s": LATENCY, "default_skill": 0.5, "seed": i}}
              for i in range(3)]
    models.append({"name": "srv", "provider": "sim", "tier": "paid",
                   "sim": {"latency_s": LATENCY}})
    return ModelPool.from_dict({"models": models, "server": "srv"}, source="test")


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_simulated_clients_overlap_each_round(mode):
    graph = create_colm_graph(pool=sim_pool(), top_k=3, rounds=1,
                              skip_guidance_when_agreed=False)
    question = "What is 12 * (3 + 4) - 5?"
    out = graph.invoke({"question": question}) if mode == "invoke" else \
        await graph.ainvoke({"question": question})
    for node in ("draft", "revise"):
        records = [r for r in out["ledger"] if r["node"] == node]
        assert len(records) == 3
        assert all(r["latency_s"] >= LATENCY * 0.9 for r in records)
        assert overlapping(records), f"{mode}: {node} calls ran one after another"
    # rounds are sequential: the guide call starts after every draft ended
    guide = next(r for r in out["ledger"] if r["node"] == "guide")
    assert all(guide["started_at"] >= r["started_at"] + r["latency_s"] - 1e-3
               for r in out["ledger"] if r["node"] == "draft")


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_scripted_clients_overlap(mode):
    clients = [ScriptedChatModel(reply=f"Answer: {i}", latency_s=LATENCY) for i in range(4)]
    pool = ModelPool()
    for i, m in enumerate(clients):
        pool.add(f"c{i}", m, tier="local")
    pool.add("srv", ScriptedChatModel(reply="Answer: 1"), tier="paid")
    graph = create_colm_graph(pool=pool, top_k=4, rounds=1)
    if mode == "invoke":
        graph.invoke({"question": "q"})
    else:
        await graph.ainvoke({"question": "q"})
    drafts = [m.calls[0] for m in clients]
    revisions = [m.calls[1] for m in clients]
    assert intervals_overlap(drafts) and intervals_overlap(revisions)
