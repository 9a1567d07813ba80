"""Every model call of every node goes through here: one place that times the call, reads
or counts its tokens, prices it and writes its :class:`~colm_graph.ledger.CallRecord`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs

from ._secrets import pool_secrets, scrub
from .answers import json_object
from .budget import Allowance, plan_paid_call
from .errors import ColmGraphError
from .ledger import CallRecord, call_cost_usd, estimate_tokens
from .pool import ModelPool, PoolEntry

__all__ = ["SCHEMAS", "call_model", "acall_model", "message_text"]

SCHEMAS: dict[str, dict[str, Any]] = {
    "answer": {"type": "object", "additionalProperties": False,
               "required": ["reasoning", "answer"],
               "properties": {"reasoning": {"type": "string"}, "answer": {"type": "string"}}},
    "confidence": {"type": "object", "additionalProperties": False,
                   "required": ["reasoning", "confidence"],
                   "properties": {"reasoning": {"type": "string"},
                                  "confidence": {"type": "number", "minimum": 0,
                                                 "maximum": 1}}},
    "difficulty": {"type": "object", "additionalProperties": False,
                   "required": ["difficulty"],
                   "properties": {"difficulty": {"type": "number", "minimum": 0,
                                                 "maximum": 10}}},
}
"""JSON schemas of structured replies, by what a node reads: an answer, a verifier's
confidence, a router's difficulty rating. Asked for from pool entries with
``answer_format: json``; a reply that does not validate is read as text."""


def message_text(message: BaseMessage) -> str:
    """Text of a message whose content is a string or a list of content blocks."""
    return message.text if isinstance(message.text, str) else str(message.content)


def _prompt_text(messages: Sequence[BaseMessage]) -> str:
    return "\n".join(message_text(m) for m in messages)


def _call_config(entry: PoolEntry, config: RunnableConfig | None, node: str, role: str,
                 round_: int) -> RunnableConfig:
    extra: RunnableConfig = {
        "tags": [f"colm:{role}", f"tier:{entry.tier}", f"model:{entry.name}"],
        "metadata": {"colm_node": node, "colm_role": role, "colm_tier": entry.tier,
                     "colm_model": entry.name, "colm_round": round_},
    }
    return merge_configs(config, extra) if config else extra


def _record(entry: PoolEntry, reply: AIMessage, messages: Sequence[BaseMessage], *,
            node: str, role: str, round_: int, stage: int, started: float,
            latency: float) -> CallRecord:
    usage = reply.usage_metadata
    corrected: list[str] = []
    if usage and (usage.get("input_tokens") or usage.get("output_tokens")):
        in_bound, out_bound = _usage_bounds(messages, reply)
        tin = _checked(usage.get("input_tokens"), in_bound, "input", corrected)
        tout = _checked(usage.get("output_tokens"), out_bound, "output", corrected)
        estimated = False
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
    return record


def _content_bytes(content: Any) -> tuple[int, int]:
    """UTF-8 bytes of a message's text, and its number of non-text blocks (images...)."""
    if isinstance(content, str):
        return len(content.encode("utf-8", "replace")), 0
    size, blocks = 0, 0
    for block in content if isinstance(content, list) else [content]:
        if isinstance(block, dict) and block.get("type") == "text":
            size += len(str(block.get("text", "")).encode("utf-8", "replace"))
        elif isinstance(block, str):
            size += len(block.encode("utf-8", "replace"))
        else:
            blocks += 1
    return size, blocks


IMAGE_TOKEN_BOUND = 2_000
"""Most tokens one image may cost (OpenAI's high-detail 2048 px tiling is 1,105)."""


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


def _as_ai(reply: Any) -> AIMessage:
    if isinstance(reply, dict) and "raw" in reply:  # with_structured_output(include_raw=True)
        reply = reply["raw"]
    return reply if isinstance(reply, AIMessage) else AIMessage(content=str(reply))


def _valid(text: str, schema: str) -> bool:
    """Whether ``text`` is a JSON object with the schema's required fields, typed."""
    data = json_object(text)
    if data is None:
        return False
    spec = SCHEMAS[schema]
    for key in spec["required"]:
        want = spec["properties"][key]["type"]
        value = data.get(key)
        ok = isinstance(value, str) if want == "string" else \
            isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            return False
    return True


def _runnable(entry: PoolEntry, schema: str | None, kwargs: dict[str, Any]
              ) -> tuple[Any, dict[str, Any]]:
    """The model to invoke and its call kwargs: a JSON-schema reply is asked for from
    entries with ``answer_format: json`` (``response_format`` for OpenAI-compatible
    endpoints, which keeps the call's output cap; LangChain's ``with_structured_output``
    for other chat models)."""
    model = entry.chat_model
    if schema is None or getattr(entry, "answer_format", "text") != "json":
        return model, kwargs
    fmt = {"type": "json_schema",
           "json_schema": {"name": schema, "schema": SCHEMAS[schema], "strict": True}}
    if entry.provider == "openai" or _is_chat_openai(model):
        return model, {**kwargs, "response_format": fmt}
    try:
        return model.with_structured_output(SCHEMAS[schema] | {"title": schema},
                                            include_raw=True), {}
    except NotImplementedError:  # this chat model has no structured output: plain text
        return model, kwargs


def _is_chat_openai(model: Any) -> bool:
    """A ``ChatOpenAI`` (or subclass) added as an object: it takes ``response_format``.
    Checked without importing ``langchain_openai`` where nothing has imported it yet."""
    import sys

    module = sys.modules.get("langchain_openai.chat_models.base")
    base = getattr(module, "BaseChatOpenAI", None)
    return base is not None and isinstance(model, base)


def _prepared(entry: PoolEntry, messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    if getattr(entry, "system_prompt", "separate") == "fold":
        from .prompts import fold_system

        return fold_system(messages)
    return list(messages)


def _mark_structured(record: CallRecord, entry: PoolEntry, schema: str | None,
                     reply: AIMessage) -> None:
    if schema is not None and getattr(entry, "answer_format", "text") == "json":
        record["structured"] = "valid" if _valid(message_text(reply), schema) else \
            "invalid: read as text"


def _failure(pool: ModelPool, name: str, exc: BaseException) -> str:
    text = scrub(f"{type(exc).__name__}: {exc}", pool_secrets(pool)).splitlines()[0][:300]
    return f"paid model {name} failed: {text}"


def _fallback(pool: ModelPool, name: str, reason: str) -> PoolEntry:
    local = pool.names("local")
    if not local:
        raise ColmGraphError(f"{reason}; the pool has no local model to fall back to")
    return pool.entry(local[0])


def _kwargs(entry: PoolEntry, limit: int | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "max_tokens": limit} if limit is not None else kwargs


def call_model(pool: ModelPool, name: str, messages: Sequence[BaseMessage], *, node: str,
               role: str, round_: int, stage: int = 0, config: RunnableConfig | None = None,
               allowance: Allowance | None = None, schema: str | None = None,
               **kwargs: Any) -> tuple[AIMessage, CallRecord]:
    """Call pool model ``name``; return its reply and ledger record.

    A paid call is first checked against ``allowance`` (its worst-case cost) and capped to
    it; a paid call the budget cannot cover, or that fails after the client's own retries,
    is made by the pool's first local model instead and its record says why (``degraded``).
    A local model's failure propagates. ``schema`` (a key of :data:`SCHEMAS`) asks entries
    with ``answer_format: json`` for a structured reply.
    """
    entry = pool.entry(name)
    if entry.tier != "paid":
        return _invoke(entry, messages, node, role, round_, stage, config, kwargs, schema)
    limit, reason = plan_paid_call(entry, _prompt_text(messages), allowance)
    if reason is None:
        try:
            return _invoke(entry, messages, node, role, round_, stage, config,
                           _kwargs(entry, limit, kwargs), schema)
        except ColmGraphError:
            raise
        except Exception as exc:  # transient faults were retried by the client already
            reason = _failure(pool, name, exc)
    local = _fallback(pool, name, reason)
    reply, record = _invoke(local, messages, node, role, round_, stage, config, kwargs, schema)
    record["degraded"] = reason
    record["fallback_for"] = name
    return reply, record


async def acall_model(pool: ModelPool, name: str, messages: Sequence[BaseMessage], *,
                      node: str, role: str, round_: int, stage: int = 0,
                      config: RunnableConfig | None = None, allowance: Allowance | None = None,
                      schema: str | None = None,
                      **kwargs: Any) -> tuple[AIMessage, CallRecord]:
    """Async :func:`call_model`."""
    entry = pool.entry(name)
    if entry.tier != "paid":
        return await _ainvoke(entry, messages, node, role, round_, stage, config, kwargs, schema)
    limit, reason = plan_paid_call(entry, _prompt_text(messages), allowance)
    if reason is None:
        try:
            return await _ainvoke(entry, messages, node, role, round_, stage, config,
                                  _kwargs(entry, limit, kwargs), schema)
        except ColmGraphError:
            raise
        except Exception as exc:  # transient faults were retried by the client already
            reason = _failure(pool, name, exc)
    local = _fallback(pool, name, reason)
    reply, record = await _ainvoke(local, messages, node, role, round_, stage, config, kwargs,
                                   schema)
    record["degraded"] = reason
    record["fallback_for"] = name
    return reply, record


def _invoke(entry: PoolEntry, messages: Sequence[BaseMessage], node: str, role: str,
            round_: int, stage: int, config: RunnableConfig | None,
            kwargs: dict[str, Any], schema: str | None = None) -> tuple[AIMessage, CallRecord]:
    model, call_kwargs = _runnable(entry, schema, kwargs)
    started, start = time.time(), time.perf_counter()
    reply = _as_ai(model.invoke(_prepared(entry, messages),
                                _call_config(entry, config, node, role, round_), **call_kwargs))
    latency = time.perf_counter() - start
    record = _record(entry, reply, messages, node=node, role=role, round_=round_,
                     stage=stage, started=started, latency=latency)
    _mark_structured(record, entry, schema, reply)
    return reply, record


async def _ainvoke(entry: PoolEntry, messages: Sequence[BaseMessage], node: str, role: str,
                   round_: int, stage: int, config: RunnableConfig | None,
                   kwargs: dict[str, Any], schema: str | None = None
                   ) -> tuple[AIMessage, CallRecord]:
    model, call_kwargs = _runnable(entry, schema, kwargs)
    started, start = time.time(), time.perf_counter()
    reply = _as_ai(await model.ainvoke(_prepared(entry, messages),
                                       _call_config(entry, config, node, role, round_),
                                       **call_kwargs))
    latency = time.perf_counter() - start
    record = _record(entry, reply, messages, node=node, role=role, round_=round_,
                     stage=stage, started=started, latency=latency)
    _mark_structured(record, entry, schema, reply)
    return reply, record
