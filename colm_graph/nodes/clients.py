"""Nodes ``draft`` and ``revise``: a client answers on its own, then revises with guidance.
The fan-out functions send one task per selected client, run in parallel by LangGraph."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Send

from ..answers import extract_answer
from ..calls import acall_model, call_model, message_text
from ..ledger import CallRecord
from ..settings import ColmSettings
from ..state import ClientTask, ColmState, Response
from .aggregate import latest_responses


def send_drafts(state: ColmState, *, settings: ColmSettings) -> list[Send]:
    """One ``draft`` task per selected client."""
    return [Send("draft", ClientTask(question=state["question"], client=name, round=0))
            for name in state["selected"]]


def send_revisions(state: ColmState, *, settings: ColmSettings) -> list[Send]:
    """One ``revise`` task per selected client, carrying this round's guidance."""
    r = state["rounds"]
    guidance = next(g for g in reversed(state["guidance"]) if g["round"] == r)
    latest = latest_responses(state)
    return [Send("revise", ClientTask(question=state["question"], client=name, round=r,
                                      previous=latest[name]["text"] if name in latest else "",
                                      guidance=guidance["text"]))
            for name in state["selected"]]


def _messages(task: ClientTask, settings: ColmSettings) -> list[BaseMessage]:
    entry = settings.pool.entry(task["client"])
    who = {"client_name": entry.name,
           "client_domains": ", ".join(entry.domains) or "general questions",
           "question": task["question"]}
    if "guidance" in task:
        return settings.prompts.messages("client_revise", previous=task.get("previous", ""),
                                         guidance=task["guidance"], **who)
    return settings.prompts.messages("client_draft", **who)


def _update(task: ClientTask, text: str, record: CallRecord) -> dict[str, Any]:
    response = Response(client=task["client"], round=task["round"], text=text,
                        answer=extract_answer(text))
    return {"responses": [response], "ledger": [record]}


def draft(task: ClientTask, config: RunnableConfig, *, settings: ColmSettings) -> dict[str, Any]:
    """A client's own first answer."""
    reply, record = call_model(settings.pool, task["client"], _messages(task, settings),
                               node="draft", role="client", round_=0, config=config)
    return _update(task, message_text(reply), record)


async def adraft(task: ClientTask, config: RunnableConfig, *,
                 settings: ColmSettings) -> dict[str, Any]:
    reply, record = await acall_model(settings.pool, task["client"], _messages(task, settings),
                                      node="draft", role="client", round_=0, config=config)
    return _update(task, message_text(reply), record)


def revise(task: ClientTask, config: RunnableConfig, *, settings: ColmSettings) -> dict[str, Any]:
    """A client's revision of its previous answer with the round's guidance."""
    reply, record = call_model(settings.pool, task["client"], _messages(task, settings),
                               node="revise", role="client", round_=task["round"],
                               config=config)
    return _update(task, message_text(reply), record)


async def arevise(task: ClientTask, config: RunnableConfig, *,
                  settings: ColmSettings) -> dict[str, Any]:
    reply, record = await acall_model(settings.pool, task["client"], _messages(task, settings),
                                      node="revise", role="client", round_=task["round"],
                                      config=config)
    return _update(task, message_text(reply), record)
