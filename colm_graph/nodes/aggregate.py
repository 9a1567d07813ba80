"""Nodes ``tally`` and ``finish`` (no model calls): agreement after each round, the stop
decision, and the output policy."""

from __future__ import annotations

from typing import Any, Literal

from ..answers import agreement, answers_match
from ..errors import ConfigError
from ..settings import ColmSettings
from ..state import ColmState, Response


def latest_responses(state: ColmState) -> dict[str, Response]:
    """Each client's most recent response."""
    latest: dict[str, Response] = {}
    for r in state.get("responses", []):
        if r["client"] not in latest or r["round"] >= latest[r["client"]]["round"]:
            latest[r["client"]] = r
    return latest


def _final_answers(state: ColmState) -> list[str | None]:
    latest = latest_responses(state)
    return [latest[n]["answer"] if n in latest else None for n in state["selected"]]


def tally(state: ColmState, *, settings: ColmSettings) -> dict[str, Any]:
    """Agreement of the clients' latest answers."""
    agree = agreement(_final_answers(state))
    return {"agreement": agree.share, "unanimous": agree.unanimous}


def after_tally(state: ColmState, *, settings: ColmSettings) -> Literal["guide", "finish"]:
    """Another round of guidance, or finish (rounds spent, or consensus)."""
    r = state.get("rounds", 0)
    if r >= settings.rounds:
        return "finish"
    if state.get("unanimous") and (r > 0 or settings.skip_guidance_when_agreed):
        return "finish"
    return "guide"


def _stop_reason(state: ColmState, settings: ColmSettings) -> str:
    r = state.get("rounds", 0)
    if state.get("unanimous") and r == 0 and settings.rounds > 0:
        return "agreed_before_guidance"
    if state.get("unanimous") and 0 < r:
        return "consensus"
    return "max_rounds" if settings.rounds > 0 else "no_rounds"


def finish(state: ColmState, *, settings: ColmSettings) -> dict[str, Any]:
    """The output: the home client's answer or the majority, plus every client's answer."""
    latest = latest_responses(state)
    answers = {n: latest[n]["answer"] if n in latest else None for n in state["selected"]}
    home = state.get("home")
    policy = settings.output
    if policy == "home" and not home:
        raise ConfigError("output policy 'home' needs a home client (input 'home' or --home)")
    if home and policy in ("home", "auto"):
        answer = answers.get(home)
    else:
        majority = agreement(answers.values()).majority
        answer = next((a for a in answers.values() if answers_match(a, majority)), None)
    return {"answer": answer, "answers": answers, "stop_reason": _stop_reason(state, settings)}
