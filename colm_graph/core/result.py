"""One run's result, built once from a protocol graph's final state and read by every adapter
(CLI text and JSON, eval rows, the OpenAI-compatible server, the chat model, the tool, the
HTML trace), so that they all report the same answer, usage, degradation and ``simulated``."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Any, NamedTuple

from colm_graph.core.ledger import LedgerTotals, ledger_totals, link_changed_path

__all__ = ["RunResult", "TokenCounts", "summarize"]

Record = Mapping[str, Any]


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _records(items: Iterable[Mapping[str, Any]] | None) -> tuple[Record, ...]:
    return tuple(MappingProxyType(dict(x)) for x in items or ())


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


class TokenCounts(NamedTuple):
    """The tokens of every model call of a run, as chat APIs report usage."""

    input_tokens: int
    """Prompt tokens, summed over the calls."""
    output_tokens: int
    """Completion tokens, summed over the calls."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def _answers(items: Iterable[Record]) -> list[dict[str, Any]]:
    return [{"client": x["client"], "node": x.get("node"), "sample": x.get("sample", 0),
             "answer": x["answer"], "text": x["text"]} for x in items]


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """What a protocol run came to, read from its final state once
    (:meth:`from_state`); :meth:`to_dict` is the JSON summary (``colm-graph run --json``).

    Fields copy the state (sequences as tuples, mappings read-only); ``totals``, ``usage``,
    ``simulated`` and ``degraded`` are derived from ``ledger`` and decided here only:

    * ``simulated``: the run made at least one model call and every call was answered by
      the built-in simulator (a run with no calls, or with one real call, is not simulated);
    * ``degraded``: the state says so (a local model stood in for a paid one, or a
      participant was dropped), or a call in the ledger is marked ``degraded``.
    """

    graph: str | None = None
    """The graph (variant, model id or eval label) the run is reported under."""
    question: str | None = None
    answer: str | None = None
    """The final answer as written (``None``: nobody gave one)."""
    answer_normalized: str | None = None
    reported_answer: str | None = None
    """The answer the chat model and the server report: ``answer_normalized`` where the
    state has that field (every shipped graph), else the raw ``answer``."""
    answer_source: str | None = None
    tie: Mapping[str, Any] = field(default_factory=_empty)
    answers: Mapping[str, str | None] = field(default_factory=_empty)
    """Each participant's final answer, by participant id."""
    selected: tuple[str, ...] = ()
    selection: Mapping[str, Any] = field(default_factory=_empty)
    rounds: int = 0
    stage: int | None = None
    stop_reason: str | None = None
    degraded_reasons: tuple[str, ...] = ()
    failures: tuple[Record, ...] = ()
    scores: Mapping[str, float] = field(default_factory=_empty)
    path: tuple[str, ...] = ()
    """The nodes that ran, in order."""
    responses: tuple[Record, ...] = ()
    """Every answer written (:class:`~colm_graph.core.state.Response`), as in the state."""
    guidance: tuple[Record, ...] = ()
    plans: tuple[Record, ...] = ()
    ledger: tuple[Record, ...] = ()
    """One record per model call (:class:`~colm_graph.core.ledger.CallRecord`)."""
    constraints: Mapping[str, Any] = field(default_factory=_empty)
    """For a run with a deadline, privacy or an upload cap: ``private``, ``time_left_s``,
    ``deadline_hit``, ``upload_left_bytes`` (see :mod:`colm_graph.run.constraints`)."""
    flagged_degraded: bool = False
    """The state's own ``degraded`` flag (see :attr:`degraded`)."""
    error: str | None = None
    """Why the run stopped early (its state is what it had done by then); ``None``: it
    finished."""

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None, *, graph: str | None = None,
                   error: str | None = None) -> RunResult:
        """The result of a run whose final (or last seen) state is ``state``."""
        s: Mapping[str, Any] = state or {}
        return cls(
            graph=graph, question=s.get("question"), answer=s.get("answer"),
            answer_normalized=s.get("answer_normalized"),
            reported_answer=s.get("answer_normalized", s.get("answer")),
            answer_source=s.get("answer_source"), tie=_frozen(s.get("tie")),
            answers=_frozen(s.get("answers")), selected=tuple(s.get("selected") or ()),
            selection=_frozen(s.get("selection")), rounds=int(s.get("rounds") or 0),
            stage=s.get("stage"), stop_reason=s.get("stop_reason"),
            degraded_reasons=tuple(s.get("degraded_reasons") or ()),
            failures=_records(s.get("failures")), scores=_frozen(s.get("scores")),
            path=tuple(p["node"] for p in s.get("path") or ()),
            responses=_records(s.get("responses")), guidance=_records(s.get("guidance")),
            plans=_records(s.get("plans")), ledger=_records(s.get("ledger")),
            constraints=_frozen(s.get("constraints")),
            flagged_degraded=bool(s.get("degraded")), error=error,
        )

    def with_ledger(self, records: Iterable[Mapping[str, Any]]) -> RunResult:
        """This result over ``records`` instead of the state's ledger (an eval item's calls
        as its call sink saw them: they include the calls of a run that failed before its
        state had them)."""
        return replace(self, ledger=_records(records))

    # -- derived from the ledger ----------------------------------------------------------
    @cached_property
    def totals(self) -> LedgerTotals:
        """:func:`~colm_graph.core.ledger.ledger_totals` of the ledger."""
        return ledger_totals(self.ledger)

    @property
    def usage(self) -> TokenCounts:
        """Input, output and total tokens of every call (the server's ``usage``, the chat
        model's ``usage_metadata``)."""
        return TokenCounts(self.totals["input_tokens"], self.totals["output_tokens"])

    @cached_property
    def simulated(self) -> bool:
        """The run made model calls and the simulator answered every one of them."""
        return bool(self.ledger) and all(r.get("simulated") for r in self.ledger)

    @cached_property
    def degraded(self) -> bool:
        """The state is marked degraded, or a call in the ledger is."""
        return self.flagged_degraded or any(r.get("degraded") for r in self.ledger)

    # -- views ----------------------------------------------------------------------------
    @property
    def reply_text(self) -> str:
        """The reply for chat APIs: the full response that carries the answer (see
        :func:`~colm_graph.core.messages.result_text`)."""
        from colm_graph.core.messages import result_text

        return result_text({"answer": self.answer, "responses": self.responses})

    def transcript(self) -> dict[str, list[Record]]:
        """What the participants wrote, in state form: ``responses``, ``guidance`` and
        ``plans`` (for readers that take those state fields)."""
        return {"responses": list(self.responses), "guidance": list(self.guidance),
                "plans": list(self.plans)}

    def outcome(self) -> dict[str, Any]:
        """How the run came out, as the chat model and the server report it: ``answer``
        (:attr:`reported_answer`), ``answer_raw``, ``answer_source``, ``stop_reason``,
        ``degraded`` and ``simulated``."""
        out: dict[str, Any] = {"answer": self.reported_answer, "answer_raw": self.answer,
               "answer_source": self.answer_source, "stop_reason": self.stop_reason,
               "degraded": self.degraded, "simulated": self.simulated}
        if self.constraints:
            out["constraints"] = dict(self.constraints)
        return out

    @cached_property
    def deadline_hit(self) -> bool:
        """The deadline changed what the run did (a paid step skipped or cut)."""
        return bool(self.constraints.get("deadline_hit")) or any(
            r.get("fallback") == "deadline" for r in self.ledger) or any(
            str(x).startswith("deadline") for x in self.degraded_reasons)

    @cached_property
    def link_changed_path(self) -> bool:
        """A paid endpoint being down changed the run's path (see
        :func:`colm_graph.core.ledger.link_changed_path`)."""
        return link_changed_path(self.ledger, self.degraded_reasons)

    @cached_property
    def staged(self) -> bool:
        """The run went stage by stage (a cascade or COPE) rather than round by round."""
        return any(r.get("stage") for r in self.responses) or bool(self.plans)

    @cached_property
    def round_detail(self) -> tuple[dict[str, Any], ...]:
        """Round by round (not for staged runs): its guidance and the answers written."""
        if self.staged:
            return ()
        last = max([r["round"] for r in self.responses] + [g["round"] for g in self.guidance]
                   + [0])
        out = []
        for n in range(last + 1):
            g = next((x for x in self.guidance if x["round"] == n), None)
            out.append({
                "round": n,
                "guidance": None if g is None else {"model": g["model"], "text": g["text"],
                                                    "answer": g["answer"]},
                "responses": _answers(x for x in self.responses if x["round"] == n),
            })
        return tuple(out)

    @cached_property
    def stage_detail(self) -> tuple[dict[str, Any], ...]:
        """Stage by stage (staged runs only): its plan and the answers written."""
        if not self.staged:
            return ()
        out = []
        for s in sorted({r.get("stage", 0) for r in self.responses}
                        | {p["stage"] for p in self.plans}):
            plan = next((p for p in self.plans if p["stage"] == s), None)
            out.append({
                "stage": s,
                "plan": None if plan is None else {"model": plan["model"], "text": plan["text"]},
                "responses": _answers(x for x in self.responses if x.get("stage", 0) == s),
            })
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary: answer, per-participant answers, round-by-round (or
        stage-by-stage) detail and the ledger with its totals; ``error`` only when the run
        stopped early. Every container is a fresh copy."""
        out: dict[str, Any] = {
            "graph": self.graph,
            "question": self.question,
            "answer": self.answer,
            "answer_normalized": self.answer_normalized,
            "answer_source": self.answer_source,
            "tie": dict(self.tie),
            "answers": dict(self.answers),
            "selected": list(self.selected),
            "selection": dict(self.selection),
            "rounds": self.rounds,
            "stage": self.stage,
            "stop_reason": self.stop_reason,
            "degraded": self.degraded,
            "degraded_reasons": list(self.degraded_reasons),
            "failures": [dict(f) for f in self.failures],
            "scores": dict(self.scores),
            "path": list(self.path),
            "round_detail": copy.deepcopy(list(self.round_detail)),
            "stage_detail": copy.deepcopy(list(self.stage_detail)),
            "simulated": self.simulated,
            "ledger": {"calls": [dict(r) for r in self.ledger], "totals": dict(self.totals)},
        }
        if self.constraints:
            out["constraints"] = dict(self.constraints)
        if self.error is not None:
            out["error"] = self.error
        return out


def summarize(result: Mapping[str, Any], *, graph: str | None = None) -> dict[str, Any]:
    """The JSON summary of a run's output state: ``RunResult.from_state(...).to_dict()``."""
    return RunResult.from_state(result, graph=graph).to_dict()
