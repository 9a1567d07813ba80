"""The trace of a run: a LangChain callback that records every model call's prompt and
response, and :func:`write_trace`, which writes one self-contained HTML page of the run (the
graph with the path taken highlighted, then each call round by round or stage by stage).

Example:
    >>> recorder = TraceRecorder()
    >>> graph = load_graph("colm", pool=pool)
    >>> result = graph.invoke({"question": q}, {"callbacks": [recorder]})
    >>> write_trace("run.html", result=result, spec="colm", pool=pool, recorder=recorder)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from colm_graph.core.ledger import estimate_tokens
from colm_graph.core.result import RunResult
from colm_graph.core.secrets import pool_secrets
from colm_graph.run.calls import message_text
from colm_graph.run.record import prompt_text
from colm_graph.viz.trace_html import Card, record_fields, render_page

if TYPE_CHECKING:
    from colm_graph.pool import ModelPool
    from colm_graph.spec import GraphSpec

__all__ = ["TraceRecorder", "TracedCall", "trace_cards", "write_trace"]


@dataclass(frozen=True)
class TracedCall:
    """One model call as the recorder saw it."""

    run_id: str
    node: str
    """``colm_node`` metadata (else the LangGraph node)."""
    role: str
    tier: str
    model: str
    round: int
    prompt: str
    """The prompt messages as text, each under a ``[type]`` line; images as ``[image MIME]``."""
    started_at: float
    input_tokens: int
    """Input tokens as the ledger counts them (estimated from the prompt text)."""
    response: str | None = None
    output_tokens: int | None = None
    error: str | None = None
    ended_at: float | None = None


def _ledger_input_tokens(messages: Sequence[BaseMessage]) -> int:
    return estimate_tokens("\n".join(message_text(m) for m in messages))


class TraceRecorder(BaseCallbackHandler):
    """Records each chat-model call of a run (prompt, response, ``colm_*`` metadata).

    Pass it in the run's config: ``graph.invoke(inputs, {"callbacks": [recorder]})`` (or
    ``ainvoke``). Thread-safe; in async runs it runs inline in the event loop. Use one
    recorder per run (or :meth:`clear` it between runs).
    """

    run_inline = True
    raise_error = False

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._calls: dict[str, TracedCall] = {}

    @property
    def calls(self) -> list[TracedCall]:
        """Recorded calls, in the order they started."""
        with self._lock:
            calls = list(self._calls.values())
        return sorted(calls, key=lambda c: c.started_at)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)

    def _start(self, run_id: UUID, prompt: str, input_tokens: int,
               metadata: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> None:
        meta = metadata or {}
        call = TracedCall(
            run_id=str(run_id),
            node=str(meta.get("colm_node") or meta.get("langgraph_node") or "?"),
            role=str(meta.get("colm_role") or "?"),
            tier=str(meta.get("colm_tier") or "?"),
            model=str(meta.get("colm_model") or meta.get("ls_model_name") or "?"),
            round=int(meta.get("colm_round") or 0),
            prompt=prompt, started_at=time.time(), input_tokens=input_tokens,
        )
        with self._lock:
            self._calls[str(run_id)] = call

    def _update(self, run_id: UUID, **changes: Any) -> None:
        with self._lock:
            call = self._calls.get(str(run_id))
            if call is not None:
                self._calls[str(run_id)] = replace(call, ended_at=time.time(), **changes)

    def on_chat_model_start(self, serialized: dict[str, Any],
                            messages: list[list[BaseMessage]], *, run_id: UUID,
                            parent_run_id: UUID | None = None, tags: list[str] | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        flat = [m for batch in messages for m in batch]
        self._start(run_id, prompt_text(flat), _ledger_input_tokens(flat), metadata, kwargs)

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
                     parent_run_id: UUID | None = None, tags: list[str] | None = None,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        text = "\n".join(prompts)
        self._start(run_id, text, estimate_tokens(text), metadata, kwargs)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID,
                   parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        gens = response.generations[0] if response.generations else []
        if not gens:
            self._update(run_id, response="")
            return
        gen = gens[0]
        text, tokens = gen.text, None
        if isinstance(gen, ChatGeneration):
            text = message_text(gen.message)
            usage = getattr(gen.message, "usage_metadata", None)
            if usage and (usage.get("input_tokens") or usage.get("output_tokens")):
                tokens = int(usage["output_tokens"])
        self._update(run_id, response=text,
                     output_tokens=estimate_tokens(text) if tokens is None else tokens)

    def on_llm_error(self, error: BaseException, *, run_id: UUID,
                     parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._update(run_id, error=f"{type(error).__name__}: {error}")


# --- joining the ledger with what was recorded ------------------------------------------


def _card(rec: Mapping[str, Any], call: TracedCall | None, text: str | None) -> Card:
    return Card(
        node=str(rec["node"]), role=str(rec["role"]), model=str(rec["model"]),
        tier=str(rec["tier"]), round=int(rec.get("round", 0)), stage=rec.get("stage"),
        input_tokens=int(rec["input_tokens"]), output_tokens=int(rec["output_tokens"]),
        usd=float(rec["usd"]), latency_s=float(rec.get("latency_s", 0.0)),
        started_at=float(rec.get("started_at", 0.0)),
        tokens_estimated=bool(rec.get("tokens_estimated")), simulated=bool(rec.get("simulated")),
        prompt=call.prompt if call else None,
        response=call.response if call else text, error=call.error if call else None,
        sample=None, in_ledger=True, notes=_notes(rec), **record_fields(rec),
    )


def _notes(rec: Mapping[str, Any]) -> tuple[str, ...]:
    notes = []
    if rec.get("score_unknown"):
        notes.append("No readable score in this reply: the node's 'unknown' value was used.")
    if rec.get("structured"):
        notes.append(f"Structured (JSON-schema) reply: {rec['structured']}.")
    if rec.get("failed"):
        notes.append(f"The reply began to arrive and then failed ({rec['failed']}): counted "
                     "at the bounds of what was sent and received.")
    if rec.get("upload_trimmed"):
        notes.append(f"Drafts trimmed to the upload cap: {rec['upload_trimmed']}.")
    return tuple(notes)


def _from_recorder(ledger: list[Mapping[str, Any]], calls: list[TracedCall]) -> list[Card]:
    left = list(calls)
    cards = []
    for rec in sorted(ledger, key=lambda r: float(r.get("started_at", 0.0))):
        same = [c for c in left if (c.node, c.model, c.round) ==
                (rec["node"], rec["model"], rec.get("round", 0)) and c.error is None]
        exact = [c for c in same if (c.input_tokens, c.output_tokens) ==
                 (rec["input_tokens"], rec["output_tokens"])]
        call = (exact or same)[0] if same else None
        if call is not None:
            left.remove(call)
        cards.append(_card(rec, call, None))
    for c in left:  # failed calls write no ledger record; others are from another run
        if c.error is None and c.response is not None:
            continue
        cards.append(Card(node=c.node, role=c.role, model=c.model, tier=c.tier, round=c.round,
                          stage=None, input_tokens=c.input_tokens,
                          output_tokens=c.output_tokens or 0, usd=0.0,
                          latency_s=(c.ended_at or c.started_at) - c.started_at,
                          started_at=c.started_at, tokens_estimated=True, simulated=False,
                          prompt=c.prompt, response=c.response, error=c.error,
                          sample=None, in_ledger=False))
    return cards


def _key(node: Any, model: Any, round_: Any, stage: Any) -> tuple[Any, ...]:
    return (node, model, ("stage", stage) if stage else ("round", round_ or 0))


def _from_state(ledger: list[Mapping[str, Any]], result: Mapping[str, Any]) -> list[Card]:
    texts: list[tuple[tuple[Any, ...], str]] = []
    for r in result.get("responses") or []:
        texts.append((_key(r["node"], r["model"], r["round"], r.get("stage")), r["text"]))
    for g in result.get("guidance") or []:
        texts.append((_key(g.get("node"), g["model"], g["round"], 0), g["text"]))
    for p in result.get("plans") or []:
        texts.append((_key(p["node"], p["model"], 0, p["stage"]), p["text"]))
    cards = []
    for rec in sorted(ledger, key=lambda r: float(r.get("started_at", 0.0))):
        key = _key(rec["node"], rec["model"], rec.get("round", 0), rec.get("stage"))
        loose = (None, *key[1:])
        hit = next((t for t in texts if t[0] == key), None) or next(
            (t for t in texts if t[0] == loose), None)
        if hit is not None:
            texts.remove(hit)
        cards.append(_card(rec, None, hit[1] if hit else None))
    return cards


def trace_cards(result: Mapping[str, Any] | RunResult,
                recorder: TraceRecorder | None = None) -> list[Card]:
    """One card per ledger record (plus failed calls the recorder saw), with the prompt and
    response from ``recorder`` or, without one, the response from the run's result (its
    output state, or the :class:`RunResult` of it)."""
    run = result if isinstance(result, RunResult) else RunResult.from_state(result)
    ledger = list(run.ledger)
    cards = (_from_recorder(ledger, recorder.calls) if recorder is not None
             else _from_state(ledger, run.transcript()))
    return _with_samples(cards, list(run.responses))


def _with_samples(cards: list[Card], responses: list[Mapping[str, Any]]) -> list[Card]:
    """Number the samples of nodes that drew several (by the responses' texts)."""
    drew = {(r["node"], r["model"], r["round"], r.get("stage") or 0)
            for r in responses if r.get("sample")}
    left = list(responses)
    out = []
    for c in cards:
        key = (c.node, c.model, c.round, c.stage or 0)
        hit = next((r for r in left if key in drew and r["text"] == c.response and
                    (r["node"], r["model"], r["round"], r.get("stage") or 0) == key), None)
        if hit is not None:
            left.remove(hit)
            c = replace(c, sample=int(hit["sample"]))
        out.append(c)
    return out


# --- the page -----------------------------------------------------------------------


def _graph_svg(spec: GraphSpec, pool: ModelPool | None, highlight: list[str],
               params: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """The drawing (an ``<svg>`` element), or ``""`` and why there is none."""
    try:
        from colm_graph.viz import draw

        svg = str(draw.to_svg(spec, pool, highlight=highlight, params=params))
    except Exception as exc:  # a broken drawing must not lose the trace of a run
        return "", f"The graph could not be drawn: {type(exc).__name__}: {exc}"
    start = svg.find("<svg")
    return (svg[start:], None) if start >= 0 else ("", "The drawing held no <svg> element.")


def write_trace(path: str | Path, *, result: Mapping[str, Any],
                spec: GraphSpec | str | Path, pool: ModelPool | None,
                recorder: TraceRecorder | None = None, secrets: Iterable[str] = (),
                params: Mapping[str, Any] | None = None) -> Path:
    """Write the trace of a run as one self-contained HTML page (nothing is fetched).

    Args:
        path: the file to write (parent folders are created).
        result: the graph's output state.
        spec: the graph variant that ran (a GraphSpec, a shipped name or a spec file).
        pool: the pool it ran on (for the drawing; its models' API keys are scrubbed).
        recorder: the :class:`TraceRecorder` passed in the run's callbacks, for prompts and
            responses; without one, responses come from the output state and prompts are
            not shown.
        secrets: strings that must not appear in the page (replaced by ``[redacted]``).
        params: the parameter overrides the run used (for the drawing's conditions).
    """
    from colm_graph.spec import GraphSpec, load_spec

    graph_spec = spec if isinstance(spec, GraphSpec) else load_spec(spec)
    highlight = [str(p["node"]) for p in result.get("path") or []]
    svg, problem = _graph_svg(graph_spec, pool, highlight, params)
    page = render_page(
        result=result, spec=graph_spec, pool=pool, cards=trace_cards(result, recorder),
        svg=svg, svg_problem=problem, recorded=recorder is not None,
        secrets=[s for s in (*secrets, *(pool_secrets(pool) if pool else [])) if s],
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
