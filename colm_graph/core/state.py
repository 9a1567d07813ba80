"""State schemas shared by every protocol graph. Lists that many nodes append to use the
:func:`extend` reducer; everything else is last-writer-wins and written by one node at a
time (fan-out tasks only append)."""

from __future__ import annotations

from typing import Annotated, Any, NotRequired, Required, TypedDict, TypeGuard

from langgraph.types import Overwrite

from colm_graph.core.ledger import CallRecord

__all__ = [
    "ColmInput", "ColmOutput", "ColmState", "Failure", "Guidance", "PathStep", "Plan",
    "ProtocolInput",
    "ProtocolOutput", "ProtocolState", "RUN_RESET", "Response", "Task", "add_path",
    "extend", "is_task", "run_reset",
]


class Response(TypedDict):
    """One answer written by a participant (client, agent, executor, solver...)."""

    client: str
    """Participant id: the pool name, or ``name#i`` when one model plays several parts."""
    model: str
    """Pool name of the model."""
    role: str
    node: str
    round: int
    """0 for first answers; r for answers written after round r's guidance or exchange."""
    stage: int
    """Cascade stage (COPE, cascade); 0 where stages do not apply."""
    sample: int
    text: str
    answer: str | None
    """Extracted answer (``None``: no answer)."""
    reasoning: NotRequired[str]
    """Reasoning the provider returned apart from the content (``reasoning_content``):
    kept for the trace, never read for the answer."""
    truncated: NotRequired[bool]
    """The reply was cut off at its token limit (only explicit statements were read)."""
    tool_calls: NotRequired[list[dict[str, Any]]]
    """An agent turn's tool calls (``name``, ``args``, ``id``; see
    :mod:`colm_graph.core.agent`)."""
    invalid: NotRequired[str]
    """An agent turn's reply that does not do what was asked, and why (no ``answer``)."""
    answered_by: NotRequired[str]
    """An agent turn's model that wrote the reply (``model`` when it answered itself, else
    the local stand-in that answered for it)."""


class Guidance(TypedDict):
    """A server's guidance (CoLM) or an aggregator's synthesis."""

    round: int
    model: str
    text: str
    answer: str | None
    node: NotRequired[str]


class Plan(TypedDict):
    """A planner's plan (COPE)."""

    stage: int
    model: str
    node: str
    text: str
    prompt: NotRequired[str]
    """Name of the prompt the plan was written from (``planner`` unless the spec names one)."""
    reused_from: NotRequired[int]
    """The stage whose plan this one reuses (no model call was made for it)."""


class Failure(TypedDict):
    """A participant of a fan-out step whose model call failed after its retries
    (:class:`colm_graph.errors.ModelCallError`): it is dropped from the rest of the run."""

    node: str
    client: str
    """Participant id (as in :class:`Response`)."""
    model: str
    """Pool name of the model that failed."""
    endpoint: str
    """Where it was called: a URL without secrets, ``simulator`` or ``in-process``."""
    reason: str
    """The fault, one line."""
    round: int
    stage: int
    sample: int
    step: int
    """The LangGraph step of the fan-out."""


class PathStep(TypedDict):
    """A node that ran, and the LangGraph step it ran in."""

    node: str
    step: int
    wrote: NotRequired[dict[str, int]]
    """For a bookkeeping node run inside another node's step
    (:mod:`colm_graph.spec.fused`): the fields it wrote (list fields: how many items)."""


def extend(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Append ``right`` to ``left`` (a run's first step clears the field with LangGraph's
    ``Overwrite``, which bypasses reducers)."""
    return list(left or []) + list(right or [])


def add_records(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """:func:`extend` for ledger records: a record's ``earlier_calls`` (a paid call that was
    charged and then failed, before its stand-in) go into the ledger ahead of it."""
    out = list(left or [])
    for record in right or []:
        earlier = record.get("earlier_calls") if isinstance(record, dict) else None
        if earlier:
            out.extend(earlier)
            record = {k: v for k, v in record.items() if k != "earlier_calls"}
        out.append(record)
    return out


def add_path(left: list[PathStep] | None, right: list[PathStep] | None) -> list[PathStep]:
    """Append path entries; the parallel tasks of one fan-out node count once.

    Only an entry of the step the path ends in is a duplicate: a whole path written at once
    (a protocol graph run again as a node of a parent graph) is appended in full."""
    out = list(left or [])
    for entry in right or []:
        if not (out and entry["step"] == out[-1]["step"] and entry in out[-8:]):
            out.append(entry)
    return out


class ProtocolInput(TypedDict, total=False):
    """What a caller passes to a protocol graph."""

    question: Required[str]
    """The question."""
    images: list[Any] | None
    """Images for vision-language clients: URLs, data URLs, or LangChain image blocks."""
    home: str | None
    """The client that asked: always selected, and its answer is the output (CoLM)."""
    clients: list[str] | None
    """Fixed clients for this run (skips selection)."""
    answer_type: str | None
    """Expected answer type: ``auto`` (default), ``number``, ``choice``, ``math``, ``text``;
    guides extraction and equivalence (else the graph's ``answer_type`` parameter)."""
    choices: list[str] | None
    """Option texts of a multiple-choice question (letters A, B, ... in order)."""


class ProtocolOutput(TypedDict, total=False):
    """What a protocol graph returns."""

    question: Required[str]
    answer: str | None
    """The final answer (``None``: nobody gave one)."""
    answers: dict[str, str | None]
    """Each participant's final answer, by participant id."""
    selected: list[str]
    """Clients chosen for the run (CoLM), in order."""
    selection: dict[str, Any]
    """How they were chosen: selector name, scores, notes."""
    responses: Annotated[list[Response], extend]
    """Every answer written, in every round and stage."""
    guidance: Annotated[list[Guidance], extend]
    """Server guidance (CoLM) round by round."""
    plans: Annotated[list[Plan], extend]
    """Plans (COPE), stage by stage."""
    rounds: int
    """Rounds actually run (guidance, debate or layer rounds)."""
    stage: int
    """The last stage that ran (cascades)."""
    scores: dict[str, float]
    """Router and verifier scores by node name."""
    score_unknown: bool
    """The last router or verifier reply stated no readable score: its node's ``unknown``
    value was used (recorded in the call's ledger record too)."""
    stop_reason: str
    answer_normalized: str | None
    """``answer`` in canonical form (``"1{,}234"`` -> ``"1234"``, ``"(b)"`` -> ``"B"``); the
    raw answer as written stays in ``answer``."""
    answer_source: str
    """Where ``answer`` came from: ``home``, ``majority``, ``tie_break`` (see ``tie``),
    ``server`` (no participant answered; the server's stated answer), or ``none``."""
    tie: dict[str, Any]
    """When the final answers tied: the tied answers and the rule that broke the tie."""
    degraded: bool
    """True when the run fell back to the local tier (budget spent or paid tier unreachable)
    or went on without a participant whose model failed (``failures``)."""
    degraded_reasons: Annotated[list[str], extend]
    failures: Annotated[list[Failure], extend]
    """Participants dropped from the run: their call in a fan-out step failed after its
    retries; the run went on with the others (at least ``min_participants``)."""
    constraints: dict[str, Any]
    """For a run with a deadline, privacy or an upload cap (:mod:`colm_graph.run.constraints`):
    ``private``, ``time_left_s`` and ``deadline_hit``, ``upload_left_bytes``."""
    path: Annotated[list[PathStep], add_path]
    """The nodes that ran, in order."""
    ledger: Annotated[list[CallRecord], add_records]
    """One record per model call."""


class ProtocolState(ProtocolInput, ProtocolOutput, total=False):
    """Full state of a protocol graph."""

    agreement: float
    """Share of the latest answers equal to their majority."""
    majority: str | None
    """Normalised majority of the latest answers."""
    unanimous: bool
    """The latest answers are all present and equal (at least two)."""
    score: float
    """The last router or verifier score."""
    budget: dict[str, Any]
    """This run's paid caps ``{"usd", "tokens"}``, set by its first step."""


class Task(TypedDict):
    """Payload of one fan-out task (sent with ``Send``)."""

    fan_out: str
    """The fan-out node the task is for: every task says it is one (see :func:`is_task`);
    the graph's state has no such field."""
    question: str
    client: str
    model: str
    round: int
    stage: int
    sample: int
    images: NotRequired[list[Any] | None]
    allowance: NotRequired[dict[str, Any]]
    """This task's share of the paid budget left (``usd``, ``tokens``)."""
    context: NotRequired[str]
    """Guidance, peers' answers or a plan, for revisions and executions."""
    previous: NotRequired[str]
    answer_type: NotRequired[str]
    choices: NotRequired[list[str] | None]
    fan_id: NotRequired[str]
    """Names the fan-out step the task belongs to (its siblings share it)."""
    fan_size: NotRequired[int]
    """How many tasks that step sent."""


def is_task(state: Any) -> TypeGuard[Task]:
    """Whether a node was given a fan-out :class:`Task` rather than the graph's state."""
    return isinstance(state, dict) and "fan_out" in state


RUN_RESET: dict[str, Any] = {
    "responses": [], "guidance": [], "plans": [], "degraded_reasons": [], "failures": [],
    "path": [],
    "ledger": [], "selected": [], "selection": {}, "answers": {}, "scores": {}, "answer": None,
    "rounds": 0, "stage": None, "stop_reason": None, "degraded": False, "agreement": 0.0,
    "majority": None, "unanimous": False, "score": 0.0, "score_unknown": False,
    "answer_source": None, "tie": {}, "answer_normalized": None, "constraints": {},
}
"""What a new run on a reused thread (checkpointer) starts from: nothing of the last run."""
_REDUCED = ("responses", "guidance", "plans", "degraded_reasons", "failures", "path", "ledger")


def run_reset() -> dict[str, Any]:
    """The update that clears the previous run's fields (list fields, whose reducers
    append, are replaced with LangGraph's ``Overwrite``)."""
    return {k: Overwrite([]) if k in _REDUCED else v for k, v in RUN_RESET.items()}


ColmInput = ProtocolInput
ColmOutput = ProtocolOutput
ColmState = ProtocolState
