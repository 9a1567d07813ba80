"""Node ``guide``: the server reads every client's latest answer (fenced as data) and writes
guidance for the next round."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig

from ..answers import extract_answer
from ..calls import acall_model, call_model, message_text
from ..ledger import CallRecord
from ..prompts import data_block
from ..settings import ColmSettings
from ..state import ColmState, Guidance
from .aggregate import latest_responses


def _messages(state: ColmState, settings: ColmSettings) -> tuple[int, list[BaseMessage]]:
    r = state.get("rounds", 0) + 1
    latest = latest_responses(state)
    drafts = "\n".join(data_block("draft", latest[n]["text"], client=n)
                       for n in state["selected"] if n in latest)
    return r, settings.prompts.messages("server_guide", question=state["question"],
                                        drafts=drafts, round=r, rounds=settings.rounds)


def _update(r: int, text: str, record: CallRecord, settings: ColmSettings) -> dict[str, Any]:
    guidance = Guidance(round=r, model=settings.server, text=text, answer=extract_answer(text))
    return {"guidance": [guidance], "ledger": [record], "rounds": r}


def guide(state: ColmState, config: RunnableConfig, *, settings: ColmSettings) -> dict[str, Any]:
    """Server guidance for the next round."""
    r, messages = _messages(state, settings)
    reply, record = call_model(settings.pool, settings.server, messages, node="guide",
                               role="server", round_=r, config=config)
    return _update(r, message_text(reply), record, settings)


async def aguide(state: ColmState, config: RunnableConfig, *,
                 settings: ColmSettings) -> dict[str, Any]:
    r, messages = _messages(state, settings)
    reply, record = await acall_model(settings.pool, settings.server, messages, node="guide",
                                      role="server", round_=r, config=config)
    return _update(r, message_text(reply), record, settings)
