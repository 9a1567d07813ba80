"""The cost ledger: one record per model call, kept in graph state through a list reducer.

Records are plain dicts (JSON- and checkpoint-friendly). :class:`Usage` is the additive view
of a set of records; :func:`ledger_totals` splits it by tier.
"""

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "CallRecord",
    "FallbackKind",
    "LedgerTotals",
    "Usage",
    "call_cost_usd",
    "link_changed_path",
    "estimate_tokens",
    "ledger_totals",
]

Tier = Literal["local", "paid"]
FallbackKind = Literal["budget", "failed", "down", "deadline", "private", "upload"]
"""Why a local model stood in for a paid call: the budget could not cover it (``budget``),
the call failed after the client's retries (``failed``), the paid model had already
failed earlier in the run and was not tried again (``down``), the call's expected latency
did not fit the time left or it was still running at the deadline (``deadline``), the run
is private and the model may not receive its data (``private``), or its request would pass
the run's ``max_upload_bytes`` (``upload``)."""


class CallRecord(TypedDict):
    """One model call."""

    node: str
    """Graph node that made the call (``draft``, ``guide``, ...)."""
    role: str
    """Role the model played (``client``, ``server``, ``selector``, ...)."""
    model: str
    """Pool name of the model."""
    tier: Tier
    """``local`` or ``paid``."""
    round: int
    """Round (CoLM) or stage (cascades) the call belongs to; 0 before any guidance."""
    input_tokens: int
    output_tokens: int
    usd: float
    """Price of the call from the pool's per-million-token prices."""
    latency_s: float
    """Wall time of the call, seconds."""
    started_at: float
    """Unix time the call started."""
    tokens_estimated: bool
    """True when the provider reported no usage and tokens were counted by estimate."""
    stage: NotRequired[int]
    """Cascade stage of the call (COPE, cascade); absent where stages do not apply."""
    degraded: NotRequired[str]
    """Why a paid call was made by a local model instead (budget, or the paid call failed)."""
    fallback_for: NotRequired[str]
    """The paid model this call stood in for."""
    fallback: NotRequired[FallbackKind]
    """Why it stood in (``degraded`` says it in words)."""
    simulated: NotRequired[bool]
    """True when the built-in simulator produced the response."""
    cached: NotRequired[bool]
    """The reply came from the call cache (:mod:`colm_graph.run.cache`): ``usd`` is 0."""
    cached_usd: NotRequired[float]
    """For a cached reply, what the call cost when it was made."""
    truncated: NotRequired[bool]
    """The reply was cut off at its token limit (``finish_reason: length``): its answer is
    read from explicit statements only."""
    usage_corrected: NotRequired[str]
    """The provider's reported usage was missing, not a number, negative, or more than the
    call could have used: the worst case of what was sent and received is recorded."""
    structured: NotRequired[str]
    """For models with ``answer_format: json``: ``valid`` when the reply matched the JSON
    schema asked for, else ``invalid: read as text``."""
    stopped: NotRequired[bool]
    """A streamed paid reply went on past the call's output limit (the provider ignored
    ``max_tokens``): the client stopped reading and closed the request; its tokens are the
    bounds of what was sent and received (see ``usage_corrected``)."""
    failed: NotRequired[str]
    """A paid call whose reply began to arrive and then failed (a stream cut off): counted
    at the bounds of what was sent and received, since providers bill what they sent. The
    call's stand-in follows it in the ledger."""
    score_unknown: NotRequired[bool]
    """A verifier's or router's reply stated no readable score (the node's ``unknown``
    value was used)."""
    request_bytes: NotRequired[int]
    """Bytes of the request bodies sent for this call, every attempt counted (what went up
    the wire; for in-process models, the UTF-8 size of the prompt: ``bytes_estimated``)."""
    response_bytes: NotRequired[int]
    """Bytes of the response bodies received (the reply's UTF-8 size for in-process
    models)."""
    lost_request_bytes: NotRequired[int]
    """For a stand-in: request bytes the paid call it stood in for had sent before it
    failed or was cut at the deadline (counted in the paid tier's upload)."""
    lost_response_bytes: NotRequired[int]
    """For a stand-in: response bytes that paid call had received (error bodies of its
    attempts, a stream cut off), counted in the paid tier's download."""
    bytes_estimated: NotRequired[bool]
    """True when the model answered in process: its bytes are the prompt's and the reply's
    UTF-8 sizes, not bytes on a wire."""
    upload_trimmed: NotRequired[str]
    """The drafts in this paid call's prompt were trimmed to fit ``max_upload_bytes``: how
    (see :mod:`colm_graph.nodes.server`)."""
    time_left_s: NotRequired[float]
    """Seconds the run had left before its deadline when the call started (runs with a
    deadline only)."""


class LedgerTotals(TypedDict):
    """Totals of a ledger, split by tier."""

    calls: int
    paid_calls: int
    local_calls: int
    input_tokens: int
    output_tokens: int
    paid_input_tokens: int
    paid_output_tokens: int
    usd: float
    paid_usd: float
    local_usd: float
    latency_s: float
    paid_request_bytes: int
    """Bytes sent to paid models (request bodies, every attempt): the device-to-cloud
    upload."""
    paid_response_bytes: int
    local_request_bytes: int
    local_response_bytes: int


_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def estimate_tokens(text: str) -> int:
    """Rough token count for providers that report none: words, digits runs and punctuation,
    with long words counted as several tokens (about 4 characters each)."""
    return sum(max(1, math.ceil(len(t) / 4)) for t in _TOKEN.findall(text))


def call_cost_usd(input_tokens: int, output_tokens: int, price: Mapping[str, float]) -> float:
    """USD for a call given ``price`` in USD per million ``input``/``output`` tokens."""
    return (input_tokens * float(price.get("input", 0.0)) +
            output_tokens * float(price.get("output", 0.0))) / 1_000_000


@dataclass(frozen=True)
class Usage:
    """Additive usage: ``Usage.of(records) + Usage.of(more)``."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    latency_s: float = 0.0
    request_bytes: int = 0
    response_bytes: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.calls + other.calls,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.usd + other.usd,
            self.latency_s + other.latency_s,
            self.request_bytes + other.request_bytes,
            self.response_bytes + other.response_bytes,
        )

    @classmethod
    def of(cls, records: Iterable[Mapping[str, Any]]) -> "Usage":
        calls = tokens_in = tokens_out = sent = received = 0
        usd = latency = 0.0
        for r in records:  # summed in place: this runs before every node
            calls += 1
            tokens_in += int(r["input_tokens"])
            tokens_out += int(r["output_tokens"])
            usd += float(r["usd"])
            latency += float(r.get("latency_s", 0.0))
            sent += int(r.get("request_bytes") or 0)
            received += int(r.get("response_bytes") or 0)
        return cls(calls, tokens_in, tokens_out, usd, latency, sent, received)

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def ledger_totals(records: Iterable[Mapping[str, Any]]) -> LedgerTotals:
    """Totals of a ledger, split paid/local."""
    records = list(records)
    paid = Usage.of(r for r in records if r["tier"] == "paid")
    local = Usage.of(r for r in records if r["tier"] != "paid")
    every = paid + local
    return LedgerTotals(
        calls=every.calls,
        paid_calls=paid.calls,
        local_calls=local.calls,
        input_tokens=every.input_tokens,
        output_tokens=every.output_tokens,
        paid_input_tokens=paid.input_tokens,
        paid_output_tokens=paid.output_tokens,
        usd=round(every.usd, 10),
        paid_usd=round(paid.usd, 10),
        local_usd=round(local.usd, 10),
        latency_s=round(every.latency_s, 6),
        paid_request_bytes=paid.request_bytes + sum(int(r.get("lost_request_bytes") or 0)
                                                    for r in records),
        paid_response_bytes=paid.response_bytes + sum(int(r.get("lost_response_bytes") or 0)
                                                      for r in records),
        local_request_bytes=local.request_bytes,
        local_response_bytes=local.response_bytes,
    )


def link_changed_path(records: Iterable[Mapping[str, Any]], reasons: Iterable[str] = ()
                      ) -> bool:
    """Whether a run took another path because a paid endpoint was down: a paid call fell
    back after failing (or was skipped as down), or a branch found the paid tier
    unreachable (its degraded reason says so)."""
    if any(r.get("fallback") in ("failed", "down") for r in records):
        return True
    return any("unreachable" in str(reason) for reason in reasons)
