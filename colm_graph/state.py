"""State schemas of the protocol graphs. Lists that many nodes append to use the
``operator.add`` reducer; everything else is last-writer-wins."""

from __future__ import annotations

import operator
from typing import Annotated, NotRequired, Required, TypedDict

from .ledger import CallRecord

__all__ = ["ClientTask", "ColmInput", "ColmOutput", "ColmState", "Guidance", "Response"]


class Response(TypedDict):
    """One answer written by a client."""

    client: str
    """Pool name of the client model."""
    round: int
    """0 for the first draft, r for the revision after the guidance of round r."""
    text: str
    """The full response."""
    answer: str | None
    """Extracted answer (``None``: no answer)."""


class Guidance(TypedDict):
    """The server's guidance for one round."""

    round: int
    model: str
    text: str
    answer: str | None
    """The answer the guidance supports, when it states one."""


class ColmInput(TypedDict, total=False):
    """What a caller passes to a CoLM graph."""

    question: Required[str]
    """The question."""
    home: str | None
    """The client that asked: always selected, and its answer is the output (policy ``home``)."""
    clients: list[str] | None
    """Fixed clients for this run (skips selection)."""


class ColmOutput(TypedDict, total=False):
    """What a CoLM graph returns."""

    question: Required[str]
    answer: str | None
    """The final answer (``None``: no client gave one)."""
    answers: dict[str, str | None]
    """Each selected client's final answer, by name."""
    selected: list[str]
    """Clients chosen for the run, in order."""
    selection: dict[str, object]
    """How they were chosen: selector name, scores, notes."""
    responses: Annotated[list[Response], operator.add]
    """Every draft and revision."""
    guidance: Annotated[list[Guidance], operator.add]
    """The server's guidance, round by round."""
    rounds: int
    """Guidance rounds actually run."""
    stop_reason: str
    """``consensus``, ``agreed_before_guidance``, ``max_rounds`` or ``no_rounds``."""
    ledger: Annotated[list[CallRecord], operator.add]
    """One record per model call."""


class ColmState(ColmInput, ColmOutput, total=False):
    """Full state of a CoLM graph."""

    agreement: float
    """Share of the latest answers equal to their majority."""
    unanimous: bool
    """All latest answers present and equal (at least two clients)."""


class ClientTask(TypedDict):
    """Payload of one client's draft or revision (sent with ``Send``)."""

    question: str
    client: str
    round: int
    previous: NotRequired[str]
    guidance: NotRequired[str]
