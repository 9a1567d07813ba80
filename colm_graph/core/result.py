"""Turn a graph's output state into a JSON-ready summary (used by the CLI, evals, servers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from colm_graph.core.ledger import ledger_totals

__all__ = ["summarize"]


def _responses(items: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"client": x["client"], "node": x.get("node"), "sample": x.get("sample", 0),
             "answer": x["answer"], "text": x["text"]} for x in items]


def summarize(result: Mapping[str, Any], *, graph: str | None = None) -> dict[str, Any]:
    """Answer, per-participant answers, round-by-round (and stage-by-stage) detail and the
    ledger with totals."""
    ledger = list(result.get("ledger", []))
    responses = list(result.get("responses", []))
    guidance = list(result.get("guidance", []))
    plans = list(result.get("plans", []))
    staged = any(r.get("stage") for r in responses) or bool(plans)
    rounds = []
    if not staged:
        last = max([r["round"] for r in responses] + [g["round"] for g in guidance] + [0])
        for r in range(last + 1):
            g = next((x for x in guidance if x["round"] == r), None)
            rounds.append({
                "round": r,
                "guidance": None if g is None else {"model": g["model"], "text": g["text"],
                                                    "answer": g["answer"]},
                "responses": _responses([x for x in responses if x["round"] == r]),
            })
    stages = []
    if staged:
        for s in sorted({r.get("stage", 0) for r in responses} | {p["stage"] for p in plans}):
            plan = next((p for p in plans if p["stage"] == s), None)
            stages.append({
                "stage": s,
                "plan": None if plan is None else {"model": plan["model"], "text": plan["text"]},
                "responses": _responses([x for x in responses if x.get("stage", 0) == s]),
            })
    return {
        "graph": graph,
        "question": result.get("question"),
        "answer": result.get("answer"),
        "answer_normalized": result.get("answer_normalized"),
        "answer_source": result.get("answer_source"),
        "tie": dict(result.get("tie") or {}),
        "answers": dict(result.get("answers", {})),
        "selected": list(result.get("selected", [])),
        "selection": dict(result.get("selection", {})),
        "rounds": int(result.get("rounds", 0)),
        "stage": result.get("stage"),
        "stop_reason": result.get("stop_reason"),
        "degraded": bool(result.get("degraded")),
        "degraded_reasons": list(result.get("degraded_reasons", [])),
        "failures": [dict(f) for f in result.get("failures") or []],
        "scores": dict(result.get("scores", {})),
        "path": [p["node"] for p in result.get("path", [])],
        "round_detail": rounds,
        "stage_detail": stages,
        "simulated": bool(ledger) and all(c.get("simulated") for c in ledger),
        "ledger": {"calls": ledger, "totals": ledger_totals(ledger)},
    }
