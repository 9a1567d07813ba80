"""A LangChain chat model whose every reply is a whole collaboration protocol run.

:class:`CollaborativeChatModel` wraps a graph variant and a model pool as a ``BaseChatModel``:
``invoke``/``ainvoke``/``batch`` run the graph on the conversation (see
:func:`~colm_graph.core.messages.messages_to_input`) and reply with the text of the answer that
won; ``stream`` runs it the same way and streams that text. ``astream`` sends the tokens of the
model call that writes the reply while it writes them, for variants whose reply is one model
call (``single``, ``route``, a ``cascade`` that escalates, COPE's last stage, MoA; see
:mod:`colm_graph.integrations.reply_stream`), and the reply once the run is done for the
others; its last chunk's ``response_metadata["stream"]`` says whether it streamed live and
whether a reply that did not go on from the streamed text followed it. Usage is the sum over
every model call of the run, and the run's inner model calls are child runs of the chat model
run in callbacks and LangSmith (each tagged with the ``colm_*`` metadata). Each node that
finishes is reported to callbacks as a custom event named :data:`STEP_EVENT`.

A run's constraints (:mod:`colm_graph.run.constraints`) are the model's fields
``deadline_s``, ``private``, ``private_detect`` and ``max_upload_bytes``, each overridden per
call by the ``configurable`` key of the same name (``config={"configurable":
{"deadline_s": 0.5}}``); the deadline of each ``invoke``/``ainvoke``/``stream``/``astream``
(each input of a ``batch``) counts from that call. The reply's
``response_metadata["constraints"]`` says how they came out.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr

from colm_graph.core.agent import TURN_KEY, AgentTurn, turn_reply
from colm_graph.core.images import check_image_host
from colm_graph.core.messages import messages_to_input
from colm_graph.core.result import RunResult
from colm_graph.core.secrets import pool_secrets, scrub, scrub_value
from colm_graph.errors import ColmGraphError
from colm_graph.integrations.reply_stream import ReplyTokens, cancel_and_wait, deltas
from colm_graph.pool import ModelPool
from colm_graph.run.constraints import with_constraints
from colm_graph.spec import GraphSpec, load_graph, load_spec
from colm_graph.spec.compile import reply_nodes_of
from colm_graph.spec.fused import node_updates
from colm_graph.spec.reply import tools_refusal, tools_refused

__all__ = ["STEP_EVENT", "CollaborativeChatModel", "step_event"]

STEP_EVENT = "colm_step"
"""Name of the custom callback event sent when a graph node finishes."""

_MODEL_PREFIX = "colm-graph/"
_PARENT_KWARG = "_colm_parent"
_LIMITS_KWARG = "_colm_constraints"
_CONSTRAINTS = ("deadline_s", "private", "private_detect", "max_upload_bytes")
_WORD = re.compile(r"(?<=\s)(?=\S)")
_STREAM_MODES = ["updates", "values"]
_STEP_SCALARS = ("answer", "answers", "selected", "rounds", "stage", "stop_reason", "degraded",
                 "degraded_reasons", "agreement", "majority", "score", "scores")


def step_event(variant: str, node: str, update: Any) -> dict[str, Any]:
    """Payload of a :data:`STEP_EVENT`: what node ``node`` of ``variant`` wrote.

    Args:
        variant: Name of the graph variant.
        node: Node that finished.
        update: The state update the node returned.

    Returns:
        ``variant``, ``node``, the answers it wrote (``responses``: client, model, round,
        stage, answer), its ``guidance`` and ``plans``, the scalar results it set (answer,
        stop_reason, rounds, ...) and the ``calls``/``usd`` of its model calls.
    """
    event: dict[str, Any] = {"variant": variant, "node": node}
    if not isinstance(update, Mapping):
        return event
    if update.get("responses"):
        event["responses"] = [{k: r.get(k) for k in ("client", "model", "round", "stage",
                                                     "answer")} for r in update["responses"]]
    for key in ("guidance", "plans"):
        if update.get(key):
            event[key] = [dict(g) for g in update[key]]
    event.update({k: update[k] for k in _STEP_SCALARS if k in update})
    if update.get("ledger"):
        event["calls"] = len(update["ledger"])
        event["usd"] = round(sum(float(r["usd"]) for r in update["ledger"]), 10)
    return event


def _children(run_id: uuid.UUID, run: Any, manager_cls: type[Any]) -> Any:
    """A callback manager for runs below run ``run_id``, whose callbacks are ``run``'s (a
    run manager or a configured callback manager)."""
    manager = manager_cls(handlers=[], parent_run_id=run_id)
    manager.set_handlers(run.inheritable_handlers)
    manager.add_tags(run.inheritable_tags)
    manager.add_metadata(run.inheritable_metadata)
    return manager


@dataclass(frozen=True)
class _Parent:
    """The chat-model run a ``stream()`` call is about to start, for its ``_stream``."""

    run_id: uuid.UUID
    callbacks: CallbackManager | AsyncCallbackManager


def _with_parent(config: RunnableConfig | None,
                 manager_cls: type[CallbackManager] | type[AsyncCallbackManager],
                 ) -> tuple[RunnableConfig, _Parent]:
    """Fix the run id of a ``stream()`` call and configure its callbacks once, so that the
    chat-model run and the graph's runs below it share the same handler objects."""
    config = ensure_config(config)
    run_id = config.get("run_id") or uuid.uuid4()
    callbacks = manager_cls.configure(config.get("callbacks"), None, False,
                                      config.get("tags"), None, config.get("metadata"))
    return {**config, "run_id": run_id, "callbacks": callbacks}, _Parent(run_id, callbacks)


def _child_callbacks(run_manager: Any, kwargs: dict[str, Any]) -> Any:
    """Callbacks for the graph run: children of the chat-model run (given by its run manager,
    or fixed beforehand by ``stream()``), else none."""
    parent: _Parent | None = kwargs.pop(_PARENT_KWARG, None)
    if run_manager is not None:
        cls = AsyncCallbackManager if isinstance(run_manager, AsyncCallbackManagerForLLMRun) \
            else CallbackManager
        return _children(run_manager.run_id, run_manager, cls)
    if parent is not None:
        return _children(parent.run_id, parent.callbacks, type(parent.callbacks))
    return None


def _usage(run: RunResult) -> UsageMetadata:
    tokens = run.usage
    return UsageMetadata(input_tokens=tokens.input_tokens, output_tokens=tokens.output_tokens,
                         total_tokens=tokens.total_tokens)


class _Steps:
    """Reads a graph run's ``updates``/``values`` stream for :class:`CollaborativeChatModel`:
    keeps the last state and gives the :data:`STEP_EVENT` payloads to send (only under a
    parent run; none for the hidden first step, the run reset)."""

    def __init__(self, variant: str,
                 callbacks: CallbackManager | AsyncCallbackManager | None,
                 replies: frozenset[str] = frozenset(), turn: AgentTurn | None = None,
                 limits: Mapping[str, Any] | None = None) -> None:
        self.variant = variant
        self.replies = replies  # the graph's reply nodes, whose tokens astream sends
        self.turn = turn
        self.config: RunnableConfig = {"callbacks": callbacks} if callbacks is not None else {}
        conf = dict(limits or {})  # the run's constraints
        if turn is not None:
            conf[TURN_KEY] = turn
        if conf:
            self.config["configurable"] = conf
        self.events = callbacks is not None and callbacks.parent_run_id is not None
        self.state: Mapping[str, Any] | None = None

    def take(self, mode: str, chunk: Any) -> list[dict[str, Any]]:
        """The events of one streamed chunk (a ``values`` chunk is kept as the state)."""
        if mode == "values":
            self.state = chunk
            return []
        if not self.events:
            return []
        return [step_event(self.variant, node, update) for step, whole in chunk.items()
                for node, update in node_updates(step, whole) if not node.startswith("_")]

    def final(self) -> Mapping[str, Any]:
        """The run's final state."""
        if self.state is None:
            raise ColmGraphError(f"graph {self.variant!r}: the run ended without a state")
        return self.state


class CollaborativeChatModel(BaseChatModel):
    """A chat model that answers by running a collaboration protocol on a model pool.

    Every call runs the whole graph: the last user message is the question, earlier
    messages are context, its images go to vision-language clients. The reply's
    ``usage_metadata`` sums every model call of the run; its ``response_metadata`` holds
    ``model_name`` (``colm-graph/<variant>``), ``variant``, ``answer``, ``ledger_totals``,
    ``degraded``, ``stop_reason``, ``simulated`` and, for a run with constraints
    (``deadline_s``, ``private``, ...), ``constraints``. A failing run raises, so
    ``with_fallbacks`` can take over.

    A per-call ``model=`` keyword runs another variant (``"single"`` or
    ``"colm-graph/single"``, or a spec path) with the same pool and that variant's own
    defaults. ``temperature``, ``max_tokens``, ``stop``, ``timeout``, ``max_retries`` and
    ``api_key`` are accepted, for drop-in use where LangChain passes them, and not applied:
    each pool model keeps its own settings, and the reply is the protocol's whole answer.

    Example:
        >>> from colm_graph.integrations.chat_model import CollaborativeChatModel
        >>> chat = CollaborativeChatModel(graph="cascade")
        >>> chat.invoke("What is 17 * 23 + 48?").response_metadata["answer"]
        '439'
    """

    graph: str | Path | GraphSpec = "colm"
    """Variant: a shipped variant's name, a path to a spec file, or a GraphSpec."""
    pool: ModelPool | None = Field(default=None, exclude=True)
    """Models the graph may call; ``None``: the built-in simulated pool."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Parameter overrides for the variant."""
    roles: dict[str, Any] = Field(default_factory=dict)
    """Role bindings (role -> model name, list of names or RoleBinding)."""
    compiled: Any = Field(default=None, exclude=True)
    """An already compiled graph to run instead of building ``graph``."""
    graph_kwargs: dict[str, Any] = Field(default_factory=dict, exclude=True)
    """Further keyword arguments of :func:`~colm_graph.load_graph` (``prompts``,
    ``selector``, ``embeddings``, ``scorer``)."""

    temperature: float | None = None
    """Accepted for compatibility; not applied (pool models keep their own)."""
    max_tokens: int | None = None
    """Accepted for compatibility; not applied."""
    stop: list[str] | None = None
    """Accepted for compatibility; not applied."""
    timeout: float | None = None
    """Accepted for compatibility; not applied (pool models keep their own)."""
    max_retries: int | None = None
    """Accepted for compatibility; not applied (pool models keep their own)."""
    streaming: bool = False
    """Accepted for compatibility; ``invoke`` always returns the whole reply at once."""
    api_key: SecretStr | None = Field(default=None, exclude=True)
    """Accepted for compatibility; not used (pool models carry their own credentials)."""
    allow_image_hosts: list[str] = Field(default_factory=list)
    """Hosts (exact names or IP addresses) whose ``http(s)`` image URLs messages may carry;
    without them only ``data:`` image URLs are accepted (see
    :func:`~colm_graph.core.images.check_image_url`)."""
    deadline_s: float | None = None
    """Seconds each call's run may take, from that call (``None``: no deadline): a paid step
    that does not fit is skipped for the local path, one still running then is cancelled."""
    private: bool = False
    """``True``: no byte of a run reaches a model not allowed private data."""
    private_detect: bool | Callable[[str], Any] = False
    """``True``: a run is private when its question looks private
    (:func:`colm_graph.run.privacy.looks_private`); or any callable of the question."""
    max_upload_bytes: int | None = None
    """Request bytes each run may send to paid models, in all (``None``: no cap)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    _spec: GraphSpec | None = PrivateAttr(default=None)
    _pool: ModelPool | None = PrivateAttr(default=None)
    _graphs: dict[str, Any] = PrivateAttr(default_factory=dict)
    _replies: dict[str, frozenset[str]] = PrivateAttr(default_factory=dict)
    _refusals: dict[str, str | None] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _warm: bool = PrivateAttr(default=False)

    def model_post_init(self, context: Any, /) -> None:
        """Check the variant now (its spec is read; the graph is built on first use)."""
        super().model_post_init(context)
        self.allow_image_hosts = sorted({check_image_host(h, flag="allow_image_hosts")
                                         for h in self.allow_image_hosts})
        try:
            with_constraints(**self._own_constraints())
        except ValueError as exc:
            raise ColmGraphError(str(exc)) from None
        if self.compiled is None:
            self._spec = self.graph if isinstance(self.graph, GraphSpec) else \
                load_spec(self.graph)
        elif not (hasattr(self.compiled, "stream") and hasattr(self.compiled, "astream")):
            raise ColmGraphError(f"compiled: expected a compiled LangGraph graph, got"
                                 f" {type(self.compiled).__name__}")
        else:
            unused = [k for k in ("graph", "params", "roles", "graph_kwargs")
                      if k in self.model_fields_set and getattr(self, k)]
            if unused:
                raise ColmGraphError(f"compiled: {', '.join(unused)} would be ignored: they"
                                     f" apply only when the model builds the graph itself")

    # -- identity -----------------------------------------------------------------
    @property
    def variant(self) -> str:
        """Name of the variant this model runs."""
        if self._spec is not None:
            return self._spec.name
        return str(getattr(self.compiled, "name", None) or "graph")

    @property
    def model_name(self) -> str:
        """``colm-graph/<variant>``: the ``model_name`` of its replies."""
        return _MODEL_PREFIX + self.variant

    @property
    def _llm_type(self) -> str:
        return "colm-graph"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        roles = {k: v.model_dump() if hasattr(v, "model_dump") else v
                 for k, v in self.roles.items()}
        pool = self.pool.source if self.pool is not None else "default (simulated)"
        return {"variant": self.variant, "params": dict(self.params), "roles": roles,
                "pool": pool}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_provider="colm_graph", ls_model_type="chat",
                                 ls_model_name=self.model_name)
        if isinstance(kwargs.get("model"), str):
            params["ls_model_name"] = kwargs["model"]
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        return params

    def _get_invocation_params(self, stop: list[str] | None = None,
                               **kwargs: Any) -> dict[str, Any]:
        kwargs.pop(_PARENT_KWARG, None)
        kwargs.pop(_LIMITS_KWARG, None)
        return super()._get_invocation_params(stop=stop, **kwargs)

    # -- run constraints --------------------------------------------------------------
    def _own_constraints(self) -> dict[str, Any]:
        """The fields' constraints that are set (a ``False`` leaves a graph parameter be)."""
        own = {"deadline_s": self.deadline_s, "private": self.private or None,
               "private_detect": self.private_detect or None,
               "max_upload_bytes": self.max_upload_bytes}
        return {k: v for k, v in own.items() if v is not None}

    def _constraints(self, config: RunnableConfig | None, model: Any = None) -> dict[str, Any]:
        """The ``configurable`` of a call's graph run: the model's constraints, those of the
        call's ``configurable`` winning, the deadline counted from now (once the graph and
        the pool's clients are built: a first build must not eat it)."""
        conf = ensure_config(config).get("configurable") or {}
        settings = {**self._own_constraints(),
                    **{k: conf[k] for k in _CONSTRAINTS if conf.get(k) is not None}}
        if "deadline_s" in settings and not self._warm:
            self._graph_for(model)
            if self._pool is not None:
                self._pool.warm_clients()
            self._warm = True
        try:
            limits = dict(with_constraints(**settings)["configurable"])
        except ValueError as exc:
            raise ColmGraphError(f"configurable {exc}") from None
        if conf.get("colm_deadline") is not None and conf.get("deadline_s") is None:
            limits["colm_deadline"] = conf["colm_deadline"]  # a Unix time, given as such
        return limits

    def invoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> AIMessage:
        """Run the graph once on ``input``; the reply is the answer's text."""
        kwargs.setdefault(_LIMITS_KWARG, self._constraints(config, kwargs.get("model")))
        return super().invoke(input, config, stop=stop, **kwargs)

    async def ainvoke(self, input: LanguageModelInput, config: RunnableConfig | None = None,
                      *, stop: list[str] | None = None, **kwargs: Any) -> AIMessage:
        """Async :meth:`invoke`."""
        kwargs.setdefault(_LIMITS_KWARG, self._constraints(config, kwargs.get("model")))
        return await super().ainvoke(input, config, stop=stop, **kwargs)

    # -- the graph ----------------------------------------------------------------
    def _graph_for(self, model: Any) -> tuple[str, Any, frozenset[str]]:
        """(variant name, compiled graph, its reply nodes) for a call, building it once."""
        key = "" if model is None or model in (self.variant, self.model_name) else str(model)
        with self._lock:
            if self._pool is None:
                self._pool = self.pool if self.pool is not None else ModelPool.default()
            graph = self._graphs.get(key)
            if graph is None:
                replies: frozenset[str] = frozenset()  # a graph compiled elsewhere: none
                refusal: str | None = "it was compiled elsewhere, so its shape is not known"
                if not key:
                    if self.compiled is not None:
                        graph = self.compiled
                    else:
                        spec = self._spec  # read in model_post_init
                        assert spec is not None
                        graph = load_graph(spec, pool=self._pool, params=self.params,
                                           roles=self.roles, **self.graph_kwargs)
                        replies = reply_nodes_of(spec, pool=self._pool, params=self.params,
                                                 roles=self.roles)
                        refusal = tools_refusal(spec, replies)
                else:
                    spec = load_spec(key.removeprefix(_MODEL_PREFIX))
                    graph = load_graph(spec, pool=self._pool, **self.graph_kwargs)
                    replies = reply_nodes_of(spec, pool=self._pool)
                    refusal = tools_refusal(spec, replies)
                self._graphs[key], self._replies[key] = graph, replies
                self._refusals[key] = refusal
        return (self.variant if not key else str(graph.name)), graph, self._replies[key]

    def _tools_refusal(self, model: Any = None) -> str | None:
        """Why the variant (or the per-call ``model``) cannot call tools, or ``None``."""
        variant, _, _ = self._graph_for(model)
        key = "" if model is None or model in (self.variant, self.model_name) else str(model)
        return self._refusals[key]

    def _check_tools(self, what: str, model: Any = None) -> None:
        reason = self._tools_refusal(model)
        if reason is not None:
            variant = self.variant if model is None else str(model).removeprefix(_MODEL_PREFIX)
            raise ColmGraphError(tools_refused(variant, reason, what))

    # -- tools and structured output ---------------------------------------------------------
    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None,
                   parallel_tool_calls: bool | None = None, strict: bool | None = None,
                   **kwargs: Any) -> Any:
        """Bind tools (LangChain tools, functions, pydantic models or OpenAI tool dicts) to
        the variant's models: the reply is the answering model's ``AIMessage``, its tool
        calls included, checked against the tools' schemas (a cascade escalates a local
        call that does not check out). Only variants whose reply is one model call can
        (``single``, ``route``, ``cascade``, or a spec of that shape); the others refuse
        with one line (:func:`~colm_graph.spec.reply.tools_refused`). ``strict`` is
        accepted for compatibility; every call is checked either way."""
        self._check_tools("bind_tools")
        turn = AgentTurn.of([], tools=tools, tool_choice=tool_choice,
                            parallel_tool_calls=parallel_tool_calls, where="bind_tools")
        assert turn is not None or not tools
        bound: dict[str, Any] = {"tools": list(turn.tools) if turn else []}
        if turn is not None and turn.tool_choice is not None:
            bound["tool_choice"] = turn.tool_choice
        if parallel_tool_calls is not None:
            bound["parallel_tool_calls"] = parallel_tool_calls
        return self.bind(**bound, **kwargs)

    def with_structured_output(self, schema: Any, *, include_raw: bool = False,
                               method: str = "function_calling", strict: bool | None = None,
                               **kwargs: Any) -> Any:
        """Replies parsed into ``schema`` (a pydantic model, TypedDict or JSON schema),
        with ``method`` as in ``ChatOpenAI``: ``function_calling`` (a forced tool call),
        ``json_schema`` (``response_format`` with the schema) or ``json_mode``
        (``response_format: json_object``). The reply is checked against the schema
        before the run accepts it, so a cascade escalates a local reply that does not
        validate; ``include_raw`` returns ``{"raw", "parsed", "parsing_error"}``."""
        from colm_graph.integrations.structured import structured_runnable

        if kwargs:
            raise ColmGraphError(f"with_structured_output: unsupported arguments"
                                 f" {', '.join(sorted(kwargs))}")
        self._check_tools("with_structured_output")
        return structured_runnable(self, schema, method=method, include_raw=include_raw,
                                   strict=strict)

    def _input(self, messages: Sequence[BaseMessage], turn: AgentTurn | None = None
               ) -> dict[str, Any]:
        question = messages_to_input(messages, allow_image_hosts=self.allow_image_hosts,
                                     flag="allow_image_hosts", trailing=turn is not None)
        if turn is not None:  # replies are compared by what they do, as text
            question["answer_type"] = "text"
        return question

    def _turn(self, messages: Sequence[BaseMessage], kwargs: dict[str, Any]
              ) -> AgentTurn | None:
        """The agent turn of a call (its tools, tool choice and response format), checked
        against the variant; ``None``: a plain question."""
        kwargs.pop("ls_structured_output_format", None)
        turn = AgentTurn.of(messages, tools=kwargs.pop("tools", None),
                            tool_choice=kwargs.pop("tool_choice", None),
                            parallel_tool_calls=kwargs.pop("parallel_tool_calls", None),
                            response_format=kwargs.pop("response_format", None))
        if turn is not None:
            self._check_tools("tools", kwargs.get("model"))
        return turn

    def _reply(self, variant: str, state: Mapping[str, Any], turn: AgentTurn | None = None
               ) -> AIMessage:
        run = RunResult.from_state(state, graph=variant)
        secrets = pool_secrets(self._pool) if self._pool is not None else []
        outcome, content, calls = run.outcome(), run.reply_text, []
        extra: dict[str, Any] = {}
        if turn is not None:  # the answering model's own message, tool calls and all
            reply = turn_reply(state)
            outcome, content, calls = reply.outcome(outcome), reply.text, reply.tool_calls
            extra = {"finish_reason": reply.finish_reason}
        meta: dict[str, Any] = {"model_name": _MODEL_PREFIX + variant, "variant": variant,
                                **outcome, "ledger_totals": dict(run.totals), **extra}
        return AIMessage(content=scrub(content, secrets), usage_metadata=_usage(run),
                         tool_calls=scrub_value(calls, secrets),
                         response_metadata=scrub_value(meta, secrets))

    def _start(self, messages: Sequence[BaseMessage],
               callbacks: CallbackManager | AsyncCallbackManager | None,
               kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any], _Steps]:
        """(graph, its input, the reader of its stream) for a call."""
        limits = kwargs.pop(_LIMITS_KWARG, None)
        if limits is None:  # called other than through invoke/stream: counted from now
            limits = self._constraints(None)
        turn = self._turn(messages, kwargs)
        question = self._input(messages, turn)
        variant, graph, replies = self._graph_for(kwargs.get("model"))
        return graph, question, _Steps(variant, callbacks, replies, turn, limits)

    def _run(self, messages: Sequence[BaseMessage], callbacks: CallbackManager | None,
             kwargs: dict[str, Any]) -> AIMessage:
        graph, question, steps = self._start(messages, callbacks, kwargs)
        for mode, chunk in graph.stream(question, steps.config, stream_mode=_STREAM_MODES):
            for payload in steps.take(mode, chunk):
                dispatch_custom_event(STEP_EVENT, payload, config=steps.config)
        return self._reply(steps.variant, steps.final(), steps.turn)

    async def _arun(self, graph: Any, question: dict[str, Any], steps: _Steps,
                    tokens: ReplyTokens | None = None) -> AIMessage:
        """Run the graph; with ``tokens``, feed them the reply nodes' tokens."""
        modes = _STREAM_MODES if tokens is None else [*_STREAM_MODES, "messages"]
        async for mode, chunk in graph.astream(question, steps.config, stream_mode=modes):
            if mode == "messages":
                if tokens is not None:
                    tokens.message(chunk, steps.replies)
                continue
            for payload in steps.take(mode, chunk):
                await adispatch_custom_event(STEP_EVENT, payload, config=steps.config)
        return self._reply(steps.variant, steps.final(), steps.turn)

    # -- BaseChatModel --------------------------------------------------------------
    def _should_stream(self, *, async_api: bool,
                       run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun
                       | None = None, **kwargs: Any) -> bool:
        # invoke() streams through _stream only when a streaming handler is attached, and
        # then without the run manager; _generate keeps the graph's runs under this run.
        if run_manager is not None:
            return False
        return super()._should_stream(async_api=async_api, **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        callbacks = _child_callbacks(run_manager, kwargs)
        reply = self._run(messages, callbacks, kwargs)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> ChatResult:
        callbacks = _child_callbacks(run_manager, kwargs)
        graph, question, steps = self._start(messages, callbacks, kwargs)
        reply = await self._arun(graph, question, steps)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    @staticmethod
    def _chunks(reply: AIMessage, text: str | None = None) -> Iterator[ChatGenerationChunk]:
        """``text`` (default: the reply's) as chunks, the last with the reply's tool calls,
        usage and metadata."""
        import json

        from langchain_core.messages.tool import tool_call_chunk

        text = reply.text if text is None else text
        words = [w for w in _WORD.split(text) if w] or [""]
        calls = [tool_call_chunk(name=c["name"], args=json.dumps(c["args"]), id=c.get("id"),
                                 index=i) for i, c in enumerate(reply.tool_calls)]
        for i, word in enumerate(words):
            if i < len(words) - 1:
                yield ChatGenerationChunk(message=AIMessageChunk(content=word))
            else:
                yield ChatGenerationChunk(message=AIMessageChunk(
                    content=word, usage_metadata=reply.usage_metadata,
                    tool_call_chunks=calls,
                    response_metadata=reply.response_metadata, chunk_position="last"))

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        callbacks = _child_callbacks(run_manager, kwargs)
        reply = self._run(messages, callbacks, kwargs)
        for chunk in self._chunks(reply):
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        callbacks = _child_callbacks(run_manager, kwargs)
        graph, question, steps = self._start(messages, callbacks, kwargs)
        secrets = pool_secrets(self._pool) if self._pool is not None else []
        # an agent turn's reply is checked before it goes out: no live tokens
        tokens = ReplyTokens(secrets) if steps.replies and steps.turn is None else None
        work = asyncio.ensure_future(self._arun(graph, question, steps, tokens))
        try:
            async with aclosing(deltas(work, tokens)) as texts:
                async for text in texts:
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                    if run_manager is not None:
                        await run_manager.on_llm_new_token(text, chunk=chunk)
                    yield chunk
            reply = work.result()
            rest, replaced = (tokens.rest(reply.text) if tokens is not None
                              else (reply.text, False))
            reply.response_metadata["stream"] = {
                "live": tokens is not None and tokens.live, "replaced": replaced}
            for chunk in self._chunks(reply, rest):
                if run_manager is not None:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        finally:
            await cancel_and_wait(work)

    # BaseChatModel.stream/astream call _stream/_astream without the run manager; these
    # fix the run's id and callbacks beforehand and hand them down, so that the graph's
    # runs and step events land under the streamed run too.
    def stream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> Iterator[AIMessageChunk]:
        """Run the graph and stream its reply text; the last chunk carries the usage."""
        limits = kwargs.pop(_LIMITS_KWARG, None) or self._constraints(config,
                                                                      kwargs.get("model"))
        config, parent = _with_parent(config, CallbackManager)
        yield from super().stream(input, config, stop=stop,
                                  **{**kwargs, _PARENT_KWARG: parent, _LIMITS_KWARG: limits})

    async def astream(self, input: LanguageModelInput, config: RunnableConfig | None = None,
                      *, stop: list[str] | None = None,
                      **kwargs: Any) -> AsyncIterator[AIMessageChunk]:
        """Async :meth:`stream`."""
        limits = kwargs.pop(_LIMITS_KWARG, None) or self._constraints(config,
                                                                      kwargs.get("model"))
        config, parent = _with_parent(config, AsyncCallbackManager)
        async for chunk in super().astream(input, config, stop=stop,
                                           **{**kwargs, _PARENT_KWARG: parent,
                                              _LIMITS_KWARG: limits}):
            yield chunk
