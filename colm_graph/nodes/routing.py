"""Node ``select``: choose the clients that will answer."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.runnables import RunnableConfig

from ..calls import call_model, message_text
from ..errors import ConfigError
from ..ledger import CallRecord
from ..selection import Selection
from ..settings import ColmSettings
from ..state import ColmState


def _select(state: ColmState, config: RunnableConfig | None,
            settings: ColmSettings) -> dict[str, Any]:
    pool = settings.pool
    records: list[CallRecord] = []
    home = state.get("home") or settings.home
    fixed = state.get("clients")
    if fixed:
        for name in fixed:
            pool.entry(name)
        names = list(dict.fromkeys(fixed))
        if home and home not in names:
            names.insert(0, home)
        selection = Selection(names, note="clients fixed by the caller")
        return _update(names, selection, "fixed", records, home)

    candidates = [pool.entry(n) for n in settings.candidates]
    if home:
        if home not in pool:
            raise ConfigError(f"home: unknown model {home!r}")
        others = [c for c in candidates if c.name != home]
    else:
        others = candidates
    k = min(settings.top_k - (1 if home else 0), len(others))

    def ask(prompt: str, values: dict[str, object]) -> str:
        messages = settings.prompts.messages(prompt, **values)
        reply, record = call_model(pool, settings.server, messages, node="select",
                                   role="selector", round_=0, config=config)
        records.append(record)
        return message_text(reply)

    selection = settings.selector.select(state["question"], others, k, ask) if k > 0 \
        else Selection([])
    names = ([home] if home else []) + selection.names
    if len(names) < settings.top_k:
        extra = f"top_k={settings.top_k} but only {len(names)} client(s) available"
        selection.note = "; ".join(filter(None, [selection.note, extra]))
    return _update(names, selection, settings.selector.name, records, home)


def _update(names: list[str], selection: Selection, selector: str,
            records: list[CallRecord], home: str | None) -> dict[str, Any]:
    info: dict[str, object] = {"selector": selector, "scores": selection.scores}
    if selection.note:
        info["note"] = selection.note
    return {"selected": names, "selection": info, "ledger": records, "home": home,
            "rounds": 0}


def select(state: ColmState, config: RunnableConfig, *, settings: ColmSettings) -> dict[str, Any]:
    """Pick the top-k clients (the home client first, when named)."""
    return _select(state, config, settings)


async def aselect(state: ColmState, config: RunnableConfig, *,
                  settings: ColmSettings) -> dict[str, Any]:
    """Async :func:`select` (a selector that asks a model runs in a worker thread)."""
    if settings.selector.name == "llm":
        return await asyncio.to_thread(_select, state, config, settings)
    return _select(state, config, settings)
