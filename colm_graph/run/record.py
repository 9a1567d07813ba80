"""The ledger record of one model call: tokens as reported (checked against what the call
could have used) or counted, priced from the pool entry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from colm_graph.core.ledger import CallRecord, call_cost_usd, estimate_tokens
from colm_graph.core.tokens import BYTES, IMAGE_TOKEN_BOUND, content_parts
from colm_graph.pool import PoolEntry

__all__ = ["build_record", "charged_record", "message_text", "prompt_text"]


def message_text(message: BaseMessage) -> str:
    """Text of a message whose content is a string or a list of content blocks."""
    return message.text if isinstance(message.text, str) else str(message.content)


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if not isinstance(block, Mapping):
        return f"[{type(block).__name__}]"
    kind = str(block.get("type", "?"))
    if kind == "text":
        return str(block.get("text", ""))
    if kind in ("image_url", "image", "file", "audio", "video"):
        mime = block.get("mime_type") or block.get("mimeType")
        url = block.get("image_url", block.get("url"))
        if isinstance(url, Mapping):
            url = url.get("url")
        if not mime and isinstance(url, str) and url.startswith("data:"):
            mime = url[5:].split(";", 1)[0].split(",", 1)[0]
        label = "image" if kind == "image_url" else kind
        return f"[{label} {mime}]" if mime else f"[{label}]"
    return f"[{kind}]"


def prompt_text(messages: Sequence[BaseMessage]) -> str:
    """Messages as readable text; content blocks other than text are named, never inlined
    (no base64 payload, no image URL)."""
    parts = []
    for m in messages:
        content = m.content
        body = content if isinstance(content, str) else "\n".join(_block_text(b) for b in content)
        parts.append(f"[{m.type}]\n{body}")
    return "\n\n".join(parts)


def _prompt_text(messages: Sequence[BaseMessage]) -> str:
    return "\n".join(message_text(m) for m in messages)


def build_record(entry: PoolEntry, reply: AIMessage, messages: Sequence[BaseMessage], *,
                 node: str, role: str, round_: int, stage: int, started: float,
                 latency: float, counted: tuple[int, int] | None = None) -> CallRecord:
    """The record of a call that returned ``reply``. ``counted`` (paid calls): upper
    bounds of its input and output tokens by the model's tokenizer or the byte bound
    (:mod:`colm_graph.core.tokens`), used where the provider reported no usage, and for a
    streamed reply the client stopped reading (its usage never came)."""
    usage = reply.usage_metadata
    corrected: list[str] = []
    stopped = reply.response_metadata.get("colm_stopped")
    if stopped is not None and counted is not None:
        tin, tout, estimated = counted[0], max(counted[1], int(stopped)), True
        corrected.append(f"the provider wrote past max_tokens: the client stopped reading"
                         f" after {tout} output tokens (bound); input counted as {tin}")
    elif usage and (usage.get("input_tokens") or usage.get("output_tokens")):
        in_bound, out_bound = _usage_bounds(messages, reply)
        tin = _checked(usage.get("input_tokens"), in_bound, "input", corrected)
        tout = _checked(usage.get("output_tokens"), out_bound, "output", corrected)
        estimated = False
    elif counted is not None:
        tin, tout, estimated = counted[0], counted[1], True
        corrected.append(f"no usage reported: counted as {tin} input and {tout} output"
                         " tokens (bounds)")
    else:
        tin = estimate_tokens(_prompt_text(messages))
        tout = estimate_tokens(message_text(reply))
        estimated = True
    # LangChain marks a reply served from the model's cache with ``total_cost: 0`` in its
    # usage: the tokens are the cached call's, but nothing was paid for this one.
    cache_hit = dict(usage or {}).get("total_cost") == 0
    record = CallRecord(
        node=node, role=role, model=entry.name, tier=entry.tier, round=round_,
        input_tokens=tin, output_tokens=tout,
        usd=0.0 if cache_hit else call_cost_usd(tin, tout, entry.price.model_dump()),
        latency_s=round(latency, 6), started_at=round(started, 6), tokens_estimated=estimated,
    )
    if stage:
        record["stage"] = stage
    if corrected:
        record["usage_corrected"] = "; ".join(corrected)
    if reply.response_metadata.get("finish_reason") == "length":
        record["truncated"] = True
    if reply.response_metadata.get("simulated"):
        record["simulated"] = True
    if stopped is not None:
        record["stopped"] = True
    return record


def charged_record(entry: PoolEntry, *, node: str, role: str, round_: int, stage: int,
                   started: float, latency: float, input_tokens: int, output_tokens: int,
                   fault: str) -> CallRecord:
    """The record of a paid call that failed after its reply had begun to arrive (a cut
    stream): providers bill what they sent, so the call is counted at its bounds."""
    record = CallRecord(
        node=node, role=role, model=entry.name, tier=entry.tier, round=round_,
        input_tokens=input_tokens, output_tokens=output_tokens,
        usd=call_cost_usd(input_tokens, output_tokens, entry.price.model_dump()),
        latency_s=round(latency, 6), started_at=round(started, 6), tokens_estimated=True)
    if stage:
        record["stage"] = stage
    record["failed"] = fault
    return record


def _content_bytes(content: Any) -> tuple[int, int]:
    """UTF-8 bytes of a message's text, and its number of non-text blocks (images...)."""
    texts, blocks = content_parts(content)
    return sum(BYTES(t) for t in texts), blocks


def _usage_bounds(messages: Sequence[BaseMessage], reply: AIMessage) -> tuple[int, int]:
    """Upper bounds of a call's real token counts from what was sent and received. No
    tokenizer makes more tokens than a text has bytes; the bounds are kept generous (four
    tokens a byte, 256 a message and 4,096 a call for chat templates and tool schemas,
    1,024 for a reply's hidden overhead, plus hidden reasoning tokens the provider reports
    apart) so that no honest report is ever cut, only impossible ones."""
    sent = 4096
    for m in messages:
        size, blocks = _content_bytes(m.content)
        sent += 4 * size + 256 + blocks * IMAGE_TOKEN_BOUND
    got, _ = _content_bytes(reply.content)
    for extra in ("reasoning_content",):
        value = reply.additional_kwargs.get(extra)
        if isinstance(value, str):
            got += len(value.encode("utf-8", "replace"))
    for call in reply.tool_calls or []:
        got += len(str(call.get("args", "")).encode()) + len(str(call.get("name", "")))
    usage: dict[str, Any] = dict(reply.usage_metadata or {})
    details: dict[str, Any] = dict(usage.get("output_token_details") or {})
    hidden = details.get("reasoning")
    if not (isinstance(hidden, int) and not isinstance(hidden, bool)
            and 0 <= hidden <= 10_000_000):
        hidden = 0
    return sent, 4 * got + hidden + 1024


def _checked(value: Any, bound: int, what: str, corrected: list[str]) -> int:
    """A reported token count, or ``bound`` (the worst case of what was sent or received)
    when the report is missing, not a number, negative, or more than could be."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and \
        value == value and 0 <= value <= bound  # value == value: not NaN
    if ok:
        return int(value)
    corrected.append(f"reported {what} tokens {value!r} replaced by the bound {bound}")
    return bound


