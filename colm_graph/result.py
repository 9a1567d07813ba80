"""Turn a graph's output state into a JSON-ready summary (used by the CLI, evals, servers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .ledger import ledger_totals

__all__ = ["summarize"]


def summarize(result: Mapping[str, Any]) -> dict[str, Any]:
    """Answer, per-client answers, round-by-round detail and the ledger with totals."""
    ledger = list(result.get("ledger", []))
    responses = list(result.get("responses", []))
    guidance = list(result.get("guidance", []))
    last_round = max([r["round"] for r in responses] + [g["round"] for g in guidance] + [0])
    detail = []
    for r in range(last_round + 1):
        g = next((x for x in guidance if x["round"] == r), None)
        detail.append({
            "round": r,
            "guidance": None if g is None else {"model": g["model"], "text": g["text"],
                                                "answer": g["answer"]},
            "responses": [{"client": x["client"], "answer": x["answer"], "text": x["text"]}
                          for x in responses if x["round"] == r],
        })
    return {
        "question": result.get("question"),
        "answer": result.get("answer"),
        "answers": dict(result.get("answers", {})),
        "selected": list(result.get("selected", [])),
        "selection": dict(result.get("selection", {})),
        "rounds": int(result.get("rounds", 0)),
        "stop_reason": result.get("stop_reason"),
        "round_detail": detail,
        "simulated": bool(ledger) and all(c.get("simulated") for c in ledger),
        "ledger": {"calls": ledger, "totals": ledger_totals(ledger)},
    }
