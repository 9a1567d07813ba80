"""Every model call of every node goes through here: one place that plans, times, counts,
prices and records calls (:class:`~colm_graph.core.ledger.CallRecord`).

* **Paid calls** are planned against the run's budget (and the :class:`PaidAccount` runs
  share, ``configurable["colm_account"]``): their worst case (an upper bound of the prompt's
  tokens, :mod:`colm_graph.core.tokens`, plus the output they may write) must fit, their output
  is capped to it, and the account holds that worst case until the call is settled. Calls
  to OpenAI-compatible endpoints stream, read under an :class:`OutputGuard` that stops
  reading (closing the request) once the reply passes what the call may write. A call the
  budget cannot cover, or that fails (a stream without its end included), is made by the
  pool's first local model instead, with that model's own prompt (``reprompt``).
* **Local calls** are retried on transient faults (malformed or cut-off replies, resets,
  5xx) by tenacity, as LangChain's ``with_retry`` does (exponential back-off with jitter),
  around the model's own call: ``with_retry`` would wrap each call in a run of its own,
  which doubled the CPU of a call for no trace worth having (0.5 vs 1.2 ms a call on a fake
  model, measured side by side); a call that still
  fails raises :class:`~colm_graph.errors.ModelCallError` naming the model, its endpoint and
  the fault, secrets scrubbed.
* Every record is also handed, as soon as it exists, to ``configurable["colm_call_sink"]``
  when the caller set one (an eval keeps a failed item's calls this way).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs

from colm_graph.core.answers import json_object
from colm_graph.core.ledger import CallRecord
from colm_graph.core.secrets import pool_secrets, scrub, scrub_message
from colm_graph.core.tokens import BYTES, Counter, counter, prompt_bound
from colm_graph.errors import ColmGraphError, ModelCallError
from colm_graph.pool import ModelPool, PoolEntry
from colm_graph.pool.wire import Meter, metered
from colm_graph.run.budget import (
    STREAM_FACTOR,
    STREAM_SLACK,
    Allowance,
    Fallback,
    PaidAccount,
    PaidPlan,
    Reservation,
    plan_paid_call,
)
from colm_graph.run.cache import cacheable, call_key, one_at_a_time
from colm_graph.run.constraints import may_hold_private
from colm_graph.run.record import build_record, charged_record, message_text, prompt_text
from colm_graph.run.stream_guard import (
    IncompleteStream,
    OutputGuard,
    astream_guarded,
    stream_guarded,
)

__all__ = ["SCHEMAS", "acall_model", "body_extra", "call_model", "endpoint_of", "message_text",
           "request_size"]

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

LOCAL_ATTEMPTS = 3
"""Tries of a local call with a transient fault (on top of the client's own retries)."""
LOCAL_BACKOFF = {"initial": 0.05, "max": 1.0, "exp_base": 2.0, "jitter": 0.05}
"""Back-off between them, seconds (LangChain's exponential jitter parameters)."""


def _backoff() -> dict[str, float]:
    """:data:`LOCAL_BACKOFF` as the installed tenacity names it: 9.2 renamed ``initial``
    to ``multiplier`` (and warns on the old name, which LangChain still documents)."""
    import inspect

    from tenacity import wait_exponential_jitter

    params = inspect.signature(wait_exponential_jitter.__init__).parameters
    if "multiplier" in params:
        rest = {k: v for k, v in LOCAL_BACKOFF.items() if k != "initial"}
        return {**rest, "multiplier": LOCAL_BACKOFF["initial"]}
    return dict(LOCAL_BACKOFF)


_BACKOFF = _backoff()


@dataclass(frozen=True)
class _Retried:
    """``model`` whose ``invoke``/``ainvoke`` try again on a transient fault
    (:data:`LOCAL_ATTEMPTS` tries, :data:`LOCAL_BACKOFF`), raising the last fault."""

    model: Any

    def _policy(self) -> dict[str, Any]:
        from tenacity import retry_if_exception, stop_after_attempt, wait_exponential_jitter

        return {"stop": stop_after_attempt(LOCAL_ATTEMPTS),
                "wait": wait_exponential_jitter(**_BACKOFF),
                "retry": retry_if_exception(_retry_worthy), "reraise": True}

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        from tenacity import Retrying

        for attempt in Retrying(**self._policy()):
            with attempt:
                return self.model.invoke(*args, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

    async def ainvoke(self, *args: Any, **kwargs: Any) -> Any:
        from tenacity import AsyncRetrying

        async for attempt in AsyncRetrying(**self._policy()):
            with attempt:
                return await self.model.ainvoke(*args, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover

class DeadlineReached(Exception):
    """A paid call was still running at the run's deadline, or the deadline passed before
    it could start (it is made locally instead)."""

    def __init__(self, model: str, *, started: bool = True) -> None:
        super().__init__(model)
        self.started = started


Reprompt = Callable[[str], Sequence[BaseMessage]]
"""``reprompt(model_name)``: the call's messages written for another pool model (a
fallback), so that it gets its own prompt rather than the paid model's."""


def endpoint_of(entry: PoolEntry) -> str:
    """Where a pool model answers, for error messages (no credentials, no query)."""
    spec = entry.spec
    if spec is None:
        return f"in-process {type(entry._model).__name__}"
    if spec.provider == "openai":
        from urllib.parse import urlsplit

        url = urlsplit(spec.base_url or "https://api.openai.com/v1")
        host = url.hostname or ""
        return f"{url.scheme}://{host}{f':{url.port}' if url.port else ''}{url.path}"
    if spec.provider == "sim":
        return "the simulator"
    return f"local {spec.provider} {spec.model}"


def _transient(exc: BaseException) -> bool:
    """Faults worth another try: malformed, empty or cut-off replies, dropped connections,
    rate limits and server errors. Not user mistakes, not 4xx refusals."""
    if isinstance(exc, ColmGraphError | ModelCallError | NotImplementedError | TypeError):
        return False
    if isinstance(exc, IncompleteStream | ValueError | LookupError | ConnectionError |
                  TimeoutError):
        return True
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai is a core dependency
        return False
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    if isinstance(exc, openai.APIConnectionError | openai.APIResponseValidationError):
        return True
    import httpx

    return isinstance(exc, httpx.TransportError)


def _retry_worthy(exc: BaseException) -> bool:
    """Transient faults the provider client does not retry itself: malformed, empty or
    cut-off replies, and dropped connections of clients without retries of their own
    (the ``openai`` client already retried its 429s, 5xx, timeouts and resets)."""
    if not _transient(exc):
        return False
    try:
        import openai
    except ImportError:  # pragma: no cover
        return True
    return not isinstance(exc, openai.APIStatusError | openai.APIConnectionError)


def _fault(pool: ModelPool, exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return scrub(text, pool_secrets(pool)).splitlines()[0][:300]


def _call_config(entry: PoolEntry, config: RunnableConfig | None, node: str, role: str,
                 round_: int) -> RunnableConfig:
    extra: RunnableConfig = {
        "tags": [f"colm:{role}", f"tier:{entry.tier}", f"model:{entry.name}"],
        "metadata": {"colm_node": node, "colm_role": role, "colm_tier": entry.tier,
                     "colm_model": entry.name, "colm_round": round_},
    }
    return merge_configs(config, extra) if config else extra


def _configurable(config: RunnableConfig | None, key: str) -> Any:
    return ((config or {}).get("configurable") or {}).get(key)


def _tighter(a: Allowance | None, b: Allowance) -> Allowance:
    """The smaller of two allowances, limit by limit."""
    if a is None:
        return b

    def low(x: Any, y: Any) -> Any:
        return y if x is None else x if y is None else min(x, y)
    return Allowance(low(a.usd, b.usd), low(a.tokens, b.tokens), a.down, a.upload,
                     a.deadline, a.private)


def _limits(allowance: Allowance | None, config: RunnableConfig | None) -> Allowance:
    """The call's limits: what its node passed, else the deadline and privacy of the
    ``configurable`` (a call made outside a graph)."""
    if allowance is not None:
        return allowance
    at, private = _configurable(config, "colm_deadline"), _configurable(config, "private")
    return Allowance(deadline=None if at is None else float(at), private=bool(private))


def request_size(messages: Sequence[BaseMessage], extra: int = 0) -> int:
    """About the bytes a request with ``messages`` sends (the JSON of their text, as the
    chat completions API encodes it, plus a little for the request's other fields, plus
    ``extra``: what :func:`body_extra` says the call adds)."""
    import json

    return len(json.dumps([{"role": m.type, "content": m.content} for m in messages])
               .encode("utf-8")) + 128 + extra


def _json_format(schema: str) -> dict[str, Any]:
    """The ``response_format`` that asks for a reply matching :data:`SCHEMAS` ``[schema]``."""
    return {"type": "json_schema",
            "json_schema": {"name": schema, "schema": SCHEMAS[schema], "strict": True}}


_BODY_KWARGS = ("tools", "tool_choice", "parallel_tool_calls", "response_format")


def body_extra(entry: PoolEntry, schema: str | None, kwargs: dict[str, Any]) -> int:
    """Bytes a call's request adds to its messages: the tools and the response format it
    sends (a JSON schema for entries with ``answer_format: json``)."""
    import json

    extra = {k: kwargs[k] for k in _BODY_KWARGS if kwargs.get(k) is not None}
    if schema is not None and getattr(entry, "answer_format", "text") == "json" and \
            "response_format" not in extra:
        extra["response_format"] = _json_format(schema)
    return len(json.dumps(extra, default=str).encode("utf-8")) if extra else 0


def _in_thread(make: Callable[[], AIMessage]) -> Future[AIMessage]:
    """``make()`` in a daemon thread of its own, with this context: how a sync paid call is
    made under a deadline (the caller waits at most the time left, then goes on; the call is
    stopped at its next stream chunk). Not a pool's: a process that exits does not wait for
    an abandoned call (a pool's threads are joined at exit), and a call never waits for a
    free worker, so none starts after the deadline."""
    future: Future[AIMessage] = Future()
    run = contextvars.copy_context().run

    def work() -> None:
        try:
            future.set_result(run(make))
        except BaseException as exc:  # for the caller, or dropped with an abandoned call
            future.set_exception(exc)

    threading.Thread(target=work, name="colm-deadline", daemon=True).start()
    return future


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
    if "tools" in kwargs or "response_format" in kwargs:
        return _with_tools(entry, model, kwargs)
    if schema is None or getattr(entry, "answer_format", "text") != "json":
        return model, kwargs
    if entry.provider == "openai" or _is_chat_openai(model):
        return model, {**kwargs, "response_format": _json_format(schema)}
    try:
        return model.with_structured_output(SCHEMAS[schema] | {"title": schema},
                                            include_raw=True), {}
    except NotImplementedError:  # this chat model has no structured output: plain text
        return model, kwargs


_TOOL_KWARGS = ("tools", "tool_choice", "parallel_tool_calls")


def _with_tools(entry: PoolEntry, model: Any, kwargs: dict[str, Any]
                ) -> tuple[Any, dict[str, Any]]:
    """An agent turn's call (:mod:`colm_graph.core.agent`): OpenAI-compatible endpoints take
    the tools and the response format in the request as they are; other chat models get
    the tools through their own ``bind_tools`` (the simulator also reads the format; a
    format other models cannot take is left to the reply's check)."""
    if entry.provider == "openai" or _is_chat_openai(model):
        if kwargs.get("response_format") and kwargs.get("tools"):
            # with a response format, ChatOpenAI parses the reply, which takes strict tools
            # only (its own bind_tools makes them strict the same way)
            from langchain_core.utils.function_calling import convert_to_openai_tool

            kwargs = {**kwargs, "tools": [
                t if t.get("function", {}).get("strict") is False
                else convert_to_openai_tool(t.get("function", t), strict=True)
                for t in kwargs["tools"]]}
        return model, kwargs
    rest = {k: v for k, v in kwargs.items() if k not in _TOOL_KWARGS}
    if entry.provider != "sim":
        rest.pop("response_format", None)
    if "tools" not in kwargs:
        return model, rest
    extra = {k: kwargs[k] for k in ("tool_choice", "parallel_tool_calls")
             if kwargs.get(k) is not None}
    try:
        return model.bind_tools(kwargs["tools"], **extra), rest
    except NotImplementedError as exc:
        raise ColmGraphError(f"model {entry.name} ({type(model).__name__}) cannot call tools:"
                             f" its chat model has no bind_tools") from exc
    except TypeError:  # a bind_tools without parallel_tool_calls
        extra.pop("parallel_tool_calls", None)
        return model.bind_tools(kwargs["tools"], **extra), rest


def _is_chat_openai(model: Any) -> bool:
    """A ``ChatOpenAI`` (or subclass) added as an object: it takes ``response_format``.
    Checked without importing ``langchain_openai`` where nothing has imported it yet."""
    import sys

    module = sys.modules.get("langchain_openai.chat_models.base")
    base = getattr(module, "BaseChatOpenAI", None)
    return base is not None and isinstance(model, base)


def _prepared(entry: PoolEntry, messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    if getattr(entry, "system_prompt", "separate") == "fold":
        from colm_graph.core.prompts import fold_system

        return fold_system(messages)
    return list(messages)


def _mark_structured(record: CallRecord, entry: PoolEntry, schema: str | None,
                     reply: AIMessage) -> None:
    if schema is not None and getattr(entry, "answer_format", "text") == "json":
        record["structured"] = "valid" if _valid(message_text(reply), schema) else \
            "invalid: read as text"


def _streams(entry: PoolEntry, model: Any) -> bool:
    """Paid calls to OpenAI-compatible endpoints stream (structured ones too), except
    through a LangChain cache, which only ``invoke`` reads: a cached model's calls are
    capped by ``max_tokens`` alone."""
    if entry.provider != "openai" and not _is_chat_openai(model):
        return False
    from langchain_core.caches import BaseCache
    from langchain_core.globals import get_llm_cache

    cache = getattr(model, "cache", None)
    return not (isinstance(cache, BaseCache) or (cache is None and get_llm_cache()))


def _stream_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``response_format`` goes in the request body as such: LangChain would otherwise
    switch to the SDK's parsing stream helper, which hides the chunks."""
    if "response_format" not in kwargs:
        return kwargs
    rest = {k: v for k, v in kwargs.items() if k != "response_format"}
    return {**rest, "extra_body": {**(kwargs.get("extra_body") or {}),
                                   "response_format": kwargs["response_format"]}}


@dataclass
class _Paid:
    """A paid call as planned: its model, request, plan and what it holds of the account."""

    entry: PoolEntry
    plan: PaidPlan
    worst_in: int
    held: Reservation | None
    count: Counter
    streams: bool
    model: Any
    messages: list[BaseMessage]
    config: RunnableConfig
    kwargs: dict[str, Any]

    def guard(self) -> OutputGuard | None:
        """The stream's reader, for streamed calls."""
        return OutputGuard(self.plan.stop_after, self.count) if self.streams else None


class _Call:
    """One call of one node: what is asked, of whom, and where its records go."""

    def __init__(self, pool: ModelPool, name: str, messages: Sequence[BaseMessage], *,
                 node: str, role: str, round_: int, stage: int, config: RunnableConfig | None,
                 allowance: Allowance | None, schema: str | None, reprompt: Reprompt | None,
                 kwargs: dict[str, Any]) -> None:
        self.pool, self.name, self.messages = pool, name, list(messages)
        self.node, self.role, self.round, self.stage = node, role, round_, stage
        self.config, self.schema = config, schema
        self.allowance: Allowance = _limits(allowance, config)
        self.meter: Meter | None = None  # of the attempt in progress
        self.reprompt, self.kwargs = reprompt, kwargs
        self.account: PaidAccount | None = _configurable(config, "colm_account")
        self.sink: Callable[[CallRecord], None] | None = _configurable(config,
                                                                       "colm_call_sink")
        self.cache: Any = _configurable(config, "colm_call_cache")
        self.log: Callable[[CallRecord, str, str], None] | None = _configurable(
            config, "colm_call_log")
        self.sent: Sequence[BaseMessage] = self.messages  # the prompt of the latest call

    # -- the call cache (colm_graph.run.cache) ---------------------------------------------
    def cache_key(self, entry: PoolEntry, messages: Sequence[BaseMessage]
                  ) -> tuple[str, str] | None:
        if self.cache is None or not cacheable(entry):
            return None
        return call_key(entry, _prepared(entry, messages),
                        {**self.kwargs, "schema": self.schema}, endpoint_of(entry))

    def cached(self, entry: PoolEntry, messages: Sequence[BaseMessage],
               key: tuple[str, str]) -> tuple[AIMessage, CallRecord] | None:
        started, start = time.time(), time.perf_counter()
        return self.hit(entry, messages, self.cache.lookup(*key), started, start)

    async def acached(self, entry: PoolEntry, messages: Sequence[BaseMessage],
                      key: tuple[str, str]) -> tuple[AIMessage, CallRecord] | None:
        started, start = time.time(), time.perf_counter()
        return self.hit(entry, messages, await self.cache.alookup(*key), started, start)

    def hit(self, entry: PoolEntry, messages: Sequence[BaseMessage], found: Any,
            started: float, start: float) -> tuple[AIMessage, CallRecord] | None:
        """The reply and record of a cache hit (``None``: a miss)."""
        if not found:
            return None
        gen = found[0]
        reply, kept = _as_ai(gen.message), dict((gen.generation_info or {}).get("colm") or {})
        record = self.record(entry, reply, messages, started, time.perf_counter() - start)
        record["input_tokens"] = int(kept.get("input_tokens", record["input_tokens"]))
        record["output_tokens"] = int(kept.get("output_tokens", record["output_tokens"]))
        record["cached_usd"] = float(kept.get("usd", record["usd"]))
        record["usd"] = 0.0
        record["cached"] = True
        record["request_bytes"] = record["response_bytes"] = 0  # nothing travelled
        record.pop("bytes_estimated", None)
        return reply, record

    def stored(self, key: tuple[str, str] | None, reply: AIMessage, record: CallRecord
               ) -> Any:
        """The cache entry of a finished call (``None``: not to be kept): never one cut
        short, and never a key a reply echoed."""
        if key is None or record.get("truncated") or record.get("stopped"):
            return None
        from langchain_core.outputs import ChatGeneration

        kept = {k: record[k] for k in ("input_tokens", "output_tokens", "usd")}
        return [ChatGeneration(message=scrub_message(reply, pool_secrets(self.pool)),
                               generation_info={"colm": kept})]

    def store(self, key: tuple[str, str] | None, reply: AIMessage,
              record: CallRecord) -> tuple[AIMessage, CallRecord]:
        if key is not None and (value := self.stored(key, reply, record)):
            self.cache.update(*key, value)
        return reply, record

    async def astore(self, key: tuple[str, str] | None, reply: AIMessage,
                     record: CallRecord) -> tuple[AIMessage, CallRecord]:
        if key is not None and (value := self.stored(key, reply, record)):
            await self.cache.aupdate(*key, value)
        return reply, record

    # -- shared steps ---------------------------------------------------------------------
    def emit(self, reply: AIMessage, record: CallRecord) -> tuple[AIMessage, CallRecord]:
        reply = scrub_message(reply, pool_secrets(self.pool))  # a reply that echoes a key
        if not record.get("cached"):
            self.pool.latency.observe(record["model"], float(record["latency_s"]))
        if self.log is not None:  # the prompt and the reply, for an eval's samples.jsonl
            self.log(record, prompt_text(self.sent), message_text(reply))
        if self.sink is not None:
            for earlier in record.get("earlier_calls", []):  # type: ignore[attr-defined]
                self.sink(earlier)
            self.sink(record)
        return reply, record

    def record(self, entry: PoolEntry, reply: AIMessage, messages: Sequence[BaseMessage],
               started: float, latency: float, counted: tuple[int, int] | None = None
               ) -> CallRecord:
        record = build_record(entry, reply, messages, node=self.node, role=self.role,
                              round_=self.round, stage=self.stage, started=started,
                              latency=latency, counted=counted)
        _mark_structured(record, entry, self.schema, reply)
        meter = self.meter
        if meter is not None and meter.requests:
            record["request_bytes"], record["response_bytes"] = meter.sent, meter.received
        else:  # no wire: what would have travelled
            record["request_bytes"] = len(prompt_text(messages).encode("utf-8"))
            record["response_bytes"] = len(message_text(reply).encode("utf-8"))
            record["bytes_estimated"] = True
        if self.allowance.deadline is not None:
            record["time_left_s"] = round(self.allowance.deadline - started, 4)
        return record

    def local_setup(self, entry: PoolEntry, messages: Sequence[BaseMessage]
                    ) -> tuple[Any, list[BaseMessage], RunnableConfig, dict[str, Any]]:
        model, kwargs = _runnable(entry, self.schema, self.kwargs)
        return _Retried(model), _prepared(entry, messages), _call_config(
            entry, self.config, self.node, self.role, self.round), kwargs

    def model_error(self, entry: PoolEntry, exc: BaseException) -> ModelCallError:
        return ModelCallError(entry.name, endpoint_of(entry), _fault(self.pool, exc),
                              transient=_transient(exc))

    @contextlib.contextmanager
    def local_attempt(self, entry: PoolEntry) -> Iterator[tuple[float, float]]:
        """Around a local call (yields its wall-clock and counter start): the model's
        failure becomes a :class:`ModelCallError` naming the model and its endpoint."""
        started, start = time.time(), time.perf_counter()
        with metered() as self.meter:
            try:
                yield started, start
            except Exception as exc:
                raise self.model_error(entry, exc) from exc

    def paid(self, entry: PoolEntry) -> _Paid:
        """Everything a paid call needs, worked out once: its plan against the budget (and
        the shared account, from which its worst case is then held), the request."""
        count = counter(entry)
        prepared = _prepared(entry, self.messages)
        worst_in = prompt_bound(prepared, count)
        allowance = self.allowance
        if self.account is not None:
            allowance = _tighter(allowance, self.account.available())
        streams = _streams(entry, entry.chat_model)
        plan = plan_paid_call(entry, worst_in, allowance,
                              stream_factor=STREAM_FACTOR if streams and count is BYTES else 1,
                              slack=STREAM_SLACK if streams else 0)
        held = None
        if plan.refusal is None and self.account is not None:
            held = self.account.reserve(plan.usd, plan.tokens)
            if held is None:
                left = self.account.available()
                plan = PaidPlan(refusal=Fallback(
                    "budget", f"paid budget: {entry.name} may cost up to ${plan.usd:.6f};"
                    f" ${max(left.usd or 0.0, 0.0):.6f} of the shared budget is free"))
        kwargs = self.kwargs if plan.max_tokens is None else \
            {**self.kwargs, "max_tokens": plan.max_tokens}
        model, kwargs = _runnable(entry, self.schema, kwargs)
        return _Paid(entry, plan, worst_in, held, count, streams, model, prepared,
                     _call_config(entry, self.config, self.node, self.role, self.round),
                     _stream_kwargs(kwargs) if streams else kwargs)

    def settle(self, held: Reservation | None, records: Sequence[CallRecord]) -> None:
        if self.account is not None and held is not None:
            paid = [r for r in records if r["tier"] == "paid"]
            self.account.settle(held, sum(r["usd"] for r in paid),
                                sum(r["input_tokens"] + r["output_tokens"] for r in paid))

    def settle_worst(self, held: Reservation | None) -> None:
        if self.account is not None and held is not None:
            self.account.settle(held, held.usd, held.tokens)

    def paid_done(self, call: _Paid, reply: AIMessage, guard: OutputGuard | None,
                  started: float, start: float) -> tuple[AIMessage, CallRecord]:
        out = guard.tokens() if guard is not None else call.count(message_text(reply))
        record = self.record(call.entry, reply, self.messages, started,
                             time.perf_counter() - start, (call.worst_in, out))
        self.settle(call.held, [record])
        return self.emit(reply, record)

    def paid_failed(self, call: _Paid, exc: BaseException, started: float, start: float
                    ) -> Fallback:
        """Why the call failed (the fallback's reason), and what of it was charged."""
        elapsed = time.perf_counter() - start
        earlier = self.charged(call.entry, exc, call.worst_in, started, elapsed)
        self.settle(call.held, earlier)
        sent = self.meter.sent if self.meter is not None else 0
        got = self.meter.received if self.meter is not None else 0
        if earlier:
            earlier[0]["request_bytes"] = sent
            earlier[0]["response_bytes"] = got
            sent = got = 0
        if isinstance(exc, DeadlineReached) and not exc.started:
            return Fallback("deadline", f"deadline: no time left to call paid model"
                            f" {call.entry.name}")
        if isinstance(exc, DeadlineReached):
            self.pool.latency.cut(call.entry.name, elapsed)  # took longer than this
            return Fallback("deadline", f"deadline: paid model {call.entry.name} was still"
                            f" running at the run's deadline (cancelled after {elapsed:.3f} s)",
                            tuple(earlier), sent, got)
        return Fallback("failed", f"paid model {call.entry.name} at {endpoint_of(call.entry)}"
                        f" failed: {_fault(self.pool, exc)}", tuple(earlier), sent, got)

    @contextlib.contextmanager
    def attempt(self, call: _Paid, failed: list[Fallback]) -> Iterator[tuple[float, float]]:
        """Around a paid call (yields its wall-clock and counter start): a failure after the
        client's retries is swallowed into ``failed`` (the caller falls back); errors of
        ours and cancellation settle the call's reservation and propagate."""
        started, start = time.time(), time.perf_counter()
        with metered() as self.meter:
            try:
                yield started, start
            except ColmGraphError:
                self.settle(call.held, [])
                raise
            except Exception as exc:  # transient faults were retried by the client already
                failed.append(self.paid_failed(call, exc, started, start))
            except BaseException:  # cancelled mid-call: counted at its worst case
                self.settle_worst(call.held)
                raise

    def charged(self, entry: PoolEntry, exc: BaseException, worst_in: int, started: float,
                latency: float) -> list[CallRecord]:
        if not isinstance(exc, IncompleteStream) or not exc.tokens:
            return []
        return [charged_record(entry, node=self.node, role=self.role, round_=self.round,
                               stage=self.stage, started=started, latency=latency,
                               input_tokens=worst_in, output_tokens=exc.tokens,
                               fault=_fault(self.pool, exc))]

    def fallback(self, why: Fallback) -> tuple[PoolEntry, list[BaseMessage]]:
        local = self.pool.names("local")
        if self.allowance.private:
            local = [n for n in local if may_hold_private(self.pool.entry(n))]
            if not local:
                raise ColmGraphError(f"{why.reason}; the pool has no local model that may"
                                     f" hold private data (set residency: local on one)")
        if not local:
            raise ColmGraphError(f"{why.reason}; the pool has no local model to fall back to")
        entry = self.pool.entry(local[0])
        messages = list(self.reprompt(entry.name)) if self.reprompt else self.messages
        return entry, messages

    def degrade(self, reply: AIMessage, record: CallRecord, why: Fallback
                ) -> tuple[AIMessage, CallRecord]:
        """The stand-in's reply and record, marked with why it stood in."""
        record["degraded"] = why.reason
        record["fallback"] = why.kind
        record["fallback_for"] = self.name
        if why.earlier:
            record["earlier_calls"] = list(why.earlier)  # type: ignore[typeddict-unknown-key]
        if why.sent_bytes:
            record["lost_request_bytes"] = why.sent_bytes
        if why.received_bytes:
            record["lost_response_bytes"] = why.received_bytes
        return self.emit(reply, record)

    def refusal(self, entry: PoolEntry) -> Fallback | None:
        """Why ``entry`` must not be called at all in this run: privacy (any tier), or for a
        paid model, a deadline its expected latency does not fit or an upload cap its
        request would pass."""
        limits = self.allowance
        if limits.private and not may_hold_private(entry):
            return Fallback("private", f"private run: model {entry.name} may not receive its"
                            f" data (residency {entry.residency or 'cloud'})")
        if entry.tier != "paid":
            return None
        left = limits.time_left()
        if left is not None:
            expected = self.pool.latency.expected(entry.name)
            if left <= 0:
                return Fallback("deadline", f"deadline: no time left for paid model"
                                f" {entry.name}")
            if expected is not None and expected >= left:
                return Fallback("deadline", f"deadline: {left:.3f} s left, paid model"
                                f" {entry.name} is expected to take {expected:.3f} s")
        if limits.upload is not None:
            size = request_size(_prepared(entry, self.messages),
                                body_extra(entry, self.schema, self.kwargs))
            if size > limits.upload:
                return Fallback("upload", f"max_upload_bytes: the request to {entry.name} is"
                                f" about {size} bytes, {max(limits.upload, 0)} left")
        return None

    # -- sync -----------------------------------------------------------------------------
    def local(self, entry: PoolEntry, messages: Sequence[BaseMessage]
              ) -> tuple[AIMessage, CallRecord]:
        self.sent = messages
        key = self.cache_key(entry, messages)
        if key is not None and (hit := self.cached(entry, messages, key)) is not None:
            return hit
        model, prepared, config, kwargs = self.local_setup(entry, messages)
        with self.local_attempt(entry) as (started, start):
            reply = _as_ai(model.invoke(prepared, config, **kwargs))
        return self.store(key, reply, self.record(entry, reply, messages, started,
                                                  time.perf_counter() - start))

    def run(self) -> tuple[AIMessage, CallRecord]:
        entry = self.pool.entry(self.name)
        refused = self.refusal(entry)
        if refused is not None:
            return self.degrade(*self.local(*self.fallback(refused)), refused)
        if entry.tier != "paid":
            return self.emit(*self.local(entry, self.messages))
        key = self.cache_key(entry, self.messages)
        if key is not None and (hit := self.cached(entry, self.messages, key)) is not None:
            return self.emit(*hit)
        call = self.paid(entry)
        failed: list[Fallback] = []
        if call.plan.refusal is None:
            guard = call.guard()
            with self.attempt(call, failed) as (started, start):
                def make() -> AIMessage:
                    if guard is not None:
                        return stream_guarded(call.model.stream(call.messages, call.config,
                                                                **call.kwargs), guard)
                    return _as_ai(call.model.invoke(call.messages, call.config,
                                                    **call.kwargs))
                reply = self.bounded(make, guard)
                return self.store(key, *self.paid_done(call, reply, guard, started, start))
        why = call.plan.refusal or failed[0]
        return self.degrade(*self.local(*self.fallback(why)), why)

    # -- async ----------------------------------------------------------------------------
    async def alocal(self, entry: PoolEntry, messages: Sequence[BaseMessage]
                     ) -> tuple[AIMessage, CallRecord]:
        self.sent = messages
        key = self.cache_key(entry, messages)
        if key is None:
            return await self.alocal_call(entry, messages, None)
        async with one_at_a_time(self.cache, key):  # an identical call in flight: its reply
            hit = await self.acached(entry, messages, key)
            return hit if hit is not None else await self.alocal_call(entry, messages, key)

    async def alocal_call(self, entry: PoolEntry, messages: Sequence[BaseMessage],
                          key: tuple[str, str] | None) -> tuple[AIMessage, CallRecord]:
        model, prepared, config, kwargs = self.local_setup(entry, messages)
        with self.local_attempt(entry) as (started, start):
            reply = _as_ai(await model.ainvoke(prepared, config, **kwargs))
        return await self.astore(key, reply, self.record(entry, reply, messages, started,
                                                         time.perf_counter() - start))

    def bounded(self, make: Callable[[], AIMessage], guard: OutputGuard | None
                ) -> AIMessage:
        """``make()``, given at most the time left before the deadline: it runs in a worker
        thread (with this context) that the caller stops waiting for; a stream is then
        closed at its next chunk."""
        left = self.allowance.time_left()
        if left is None:
            return make()
        if left <= 0:  # the set-up took what was left: not started
            raise DeadlineReached(self.name, started=False)
        future = _in_thread(make)
        try:
            return future.result(timeout=max(left, 0.0))
        except FutureTimeout:
            if guard is not None:
                guard.abandoned = True
            future.add_done_callback(lambda f: f.exception())  # its fault is not ours now
            raise DeadlineReached(self.name) from None

    async def abounded(self, made: Any) -> AIMessage:
        """Await ``made`` for at most the time left before the deadline (then it is
        cancelled, which closes its request)."""
        left = self.allowance.time_left()
        if left is None:
            return await made
        if left <= 0:  # the set-up took what was left: not started
            made.close()
            raise DeadlineReached(self.name, started=False)
        try:
            async with asyncio.timeout(max(left, 0.0)) as scope:
                return await made
        except TimeoutError:
            if scope.expired():
                raise DeadlineReached(self.name) from None
            raise

    async def arun(self) -> tuple[AIMessage, CallRecord]:
        entry = self.pool.entry(self.name)
        refused = self.refusal(entry)
        if refused is not None:
            return self.degrade(*await self.alocal(*self.fallback(refused)), refused)
        if entry.tier != "paid":
            return self.emit(*await self.alocal(entry, self.messages))
        key = self.cache_key(entry, self.messages)
        if key is None:
            done = await self.apaid(entry, None)
        else:
            async with one_at_a_time(self.cache, key):
                hit = await self.acached(entry, self.messages, key)
                done = self.emit(*hit) if hit is not None else await self.apaid(entry, key)
        if isinstance(done, Fallback):  # made outside the key: the stand-in has its own
            return self.degrade(*await self.alocal(*self.fallback(done)), done)
        return done

    async def apaid(self, entry: PoolEntry, key: tuple[str, str] | None
                    ) -> tuple[AIMessage, CallRecord] | Fallback:
        """The paid call's reply and record, or why the local tier must stand in."""
        call = self.paid(entry)
        failed: list[Fallback] = []
        if call.plan.refusal is None:
            guard = call.guard()
            with self.attempt(call, failed) as (started, start):
                async def make() -> AIMessage:
                    if guard is not None:
                        return await astream_guarded(call.model.astream(
                            call.messages, call.config, **call.kwargs), guard)
                    return _as_ai(await call.model.ainvoke(call.messages, call.config,
                                                           **call.kwargs))
                reply = await self.abounded(make())
                return await self.astore(key, *self.paid_done(call, reply, guard, started,
                                                              start))
        return call.plan.refusal or failed[0]


def call_model(pool: ModelPool, name: str, messages: Sequence[BaseMessage], *, node: str,
               role: str, round_: int, stage: int = 0, config: RunnableConfig | None = None,
               allowance: Allowance | None = None, schema: str | None = None,
               reprompt: Reprompt | None = None, **kwargs: Any) -> tuple[AIMessage, CallRecord]:
    """Call pool model ``name``; return its reply and ledger record.

    A paid call is first checked against ``allowance`` (and the shared account, if the
    config has one) at its worst case and capped to it; a paid call the budget cannot
    cover, or that fails after the client's own retries, is made by the pool's first local
    model instead (with ``reprompt(name)``'s messages when given) and its record says why
    (``degraded``; a paid stream cut off after it began is in ``earlier_calls``). A local
    model's failure, after retries of transient faults, raises ``ModelCallError``.
    ``schema`` (a key of :data:`SCHEMAS`) asks entries with ``answer_format: json`` for a
    structured reply.
    """
    return _Call(pool, name, messages, node=node, role=role, round_=round_, stage=stage,
                 config=config, allowance=allowance, schema=schema, reprompt=reprompt,
                 kwargs=kwargs).run()


async def acall_model(pool: ModelPool, name: str, messages: Sequence[BaseMessage], *,
                      node: str, role: str, round_: int, stage: int = 0,
                      config: RunnableConfig | None = None, allowance: Allowance | None = None,
                      schema: str | None = None, reprompt: Reprompt | None = None,
                      **kwargs: Any) -> tuple[AIMessage, CallRecord]:
    """Async :func:`call_model`."""
    return await _Call(pool, name, messages, node=node, role=role, round_=round_,
                       stage=stage, config=config, allowance=allowance, schema=schema,
                       reprompt=reprompt, kwargs=kwargs).arun()
