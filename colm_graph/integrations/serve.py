"""An OpenAI-compatible HTTP server over the protocol graphs: each graph is a model id.

:func:`create_app` builds a FastAPI app with ``GET /v1/models``, ``GET /v1/models/{id}`` and
``POST /v1/chat/completions`` (JSON, or Server-Sent Events with ``stream``); any OpenAI
client can call it. A request runs the graph once on the conversation (the last user message
is the question, earlier messages its context, its ``image_url`` parts the images) and
replies with the response that carries the graph's answer. ``usage`` sums the tokens of every
model call of the run; the extra top-level ``colm`` object (ignored by OpenAI clients) has
the answer, stop reason, degradation and the ledger totals with the USD spent.

Sampling options (``temperature``, ``top_p``, ``max_tokens``, ``stop``, ``seed``, ...) are
accepted and ignored: the graph and the pool decide how each model is called; ``n`` must
be 1.

Tool calling goes through the variants whose reply is one model call (``single``,
``route``, ``cascade``, or a spec of that shape; see :mod:`colm_graph.spec.reply`):
``tools``, ``tool_choice``, ``parallel_tool_calls`` and ``response_format`` (``json_object``
or ``json_schema``) make the request an agent turn (:mod:`colm_graph.core.agent`), as does a
conversation with assistant ``tool_calls`` and ``tool`` results (legacy ``function_call``
and ``function`` messages too). The answering models get the conversation itself with the
tools, and every reply is checked (tools and their argument schemas, the tool choice, the
format) before the run accepts it, so a cascade escalates a local reply that does not check
out; the router and the verifier read the conversation as text, its tool calls and results
included. The reply is the answering model's message: its ``content`` (``null`` when it
only calls tools), its ``tool_calls`` in OpenAI's format and ``finish_reason``
``tool_calls``; ``colm`` adds ``answered_by`` (the model) and ``invalid`` (why the reply
did not check out, when it did not). Other variants (CoLM, COPE, MoA, debate,
self-consistency) refuse tools, a forcing ``tool_choice`` and a ``response_format`` with a
400 naming the field; ``tools: []`` and ``tool_choice`` ``auto``/``none`` without tools are
accepted as nothing asked.

A stream (:mod:`colm_graph.integrations.serve_stream`) sends the tokens of the model call
that writes the reply as they arrive, for graphs that end in one model's reply (``single``,
``route``, ``cascade``, COPE, MoA), and ``: colm-graph: working`` comments while other runs
work; a run that is done (or failed) before its first token and its first comment answers
in one go, so a failed run is an HTTP error, not a broken stream. Then come the rest of the
reply, a chunk with ``finish_reason`` (and the ``colm`` object), a usage chunk with
``stream_options.include_usage``, and ``[DONE]``. An agent turn is not streamed live (its
reply is checked first): comments, then its content and its tool calls as OpenAI's tool-call
deltas.

A request's run constraints (:mod:`colm_graph.run.constraints`) come in headers,
``x-colm-deadline-s: SECONDS`` (a positive number) and ``x-colm-private: true|false``, or in
the request's own ``colm`` object beside the OpenAI fields (``extra_body={"colm": {...}}``
with the ``openai`` client): ``deadline_s`` (seconds, a positive number), ``private`` and
``private_detect`` (``true``/``false``) and ``max_upload_bytes`` (a whole number >= 0);
unknown keys there are refused. Given both ways, and against the server's own ``params`` of
the same names, the tighter holds: the shorter deadline, private when any says so, the
smaller upload cap (a request cannot lift the server's ``private``). The deadline counts
from the moment the request is accepted, before its body is read; a bad value is a 400
naming the header or field. The reply's ``colm.constraints`` says how they came out
(``private``, ``time_left_s``, ``deadline_hit``, ``upload_left_bytes``).

Requests are bounded before they cost anything: the body is read up to
:data:`MAX_BODY_BYTES` and answered 413 the moment it passes it (a chunked body too; the rest
is never read into memory); it is parsed and validated in a worker thread, message by message,
so that other requests are answered meanwhile; the conversation stops being read once its
question is sure to pass :data:`~colm_graph.core.messages.MAX_QUESTION_CHARS`; and every image must
be a ``data:`` URL, or an ``http(s)`` URL on a host given with ``allow_image_hosts``
(``--allow-image-host``). Replies (JSON and streamed) are scrubbed of the pool's API keys and
of the bearer token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from colm_graph.core.agent import TURN_KEY, AgentTurn, json_of_reply, turn_reply
from colm_graph.core.images import check_image_host, check_image_url
from colm_graph.core.messages import Conversation, Turn, tool_calls_text
from colm_graph.core.result import RunResult
from colm_graph.core.secrets import pool_secrets, scrub, scrub_value
from colm_graph.core.yamlfile import format_loc
from colm_graph.errors import ColmGraphError, ConfigError
from colm_graph.integrations.idempotency import IdempotencyStore, SQLiteIdempotency
from colm_graph.integrations.operator import Operator, Refused
from colm_graph.integrations.reply_stream import ReplyTokens, cancel_and_wait, stream_graph
from colm_graph.integrations.serve_stream import sse_reply
from colm_graph.pool import ModelPool
from colm_graph.spec import GraphSpec, load_graph, load_spec
from colm_graph.spec.compile import reply_nodes_of
from colm_graph.spec.reply import tools_refusal, tools_refused
from colm_graph.spec.validate import IMPLICIT_PARAMS

if TYPE_CHECKING:
    from colm_graph.integrations.metrics import ServeMetrics

__all__ = ["MAX_BODY_BYTES", "OWNER", "create_app", "run_server"]

MAX_BODY_BYTES = 32 * 1024 * 1024
"""Largest request body accepted (images travel inline as data URLs)."""
OWNER = "colm-graph"
_STRICT = ConfigDict(strict=True, extra="ignore")


# -- request bodies -------------------------------------------------------------------------
class _Strict(BaseModel):
    """A request body part: strict types, unknown fields ignored."""

    model_config = _STRICT


class _TextPart(_Strict):
    type: Literal["text"]
    text: str


class _ImageUrl(_Strict):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class _ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: _ImageUrl


class _RefusalPart(_Strict):
    type: Literal["refusal"]
    refusal: str


_Part = Annotated[_TextPart | _ImagePart | _RefusalPart, Field(discriminator="type")]


class _Function(_Strict):
    """A call's function: its name and its arguments as a JSON string."""

    name: str = Field(min_length=1)
    arguments: str


class _ToolCall(_Strict):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: _Function


class _Message(BaseModel):
    model_config = _STRICT
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[_Part] | None = None
    tool_call_id: str | None = None
    tool_calls: list[_ToolCall] | None = None
    function_call: _Function | None = None  # legacy (before tools): one call
    name: str | None = None


class _FunctionDef(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _Tool(_Strict):
    type: Literal["function"]
    function: _FunctionDef


class _StreamOptions(BaseModel):
    model_config = _STRICT
    include_usage: bool = False


class _ColmOptions(BaseModel):
    """The request's ``colm`` object: its run constraints."""

    model_config = ConfigDict(strict=True, extra="forbid")
    deadline_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    private: bool | None = None
    private_detect: bool | None = None
    max_upload_bytes: int | None = Field(default=None, ge=0)


class _ChatRequest(BaseModel):
    """The fields of a chat completion request the server reads; others are ignored. The
    messages are validated one by one (:data:`_MESSAGE`) as the body is read: ``messages``
    here only holds a placeholder for them (for the "at least one" check)."""

    model_config = _STRICT
    model: str = Field(min_length=1)
    messages: list[Any] = Field(min_length=1)
    stream: bool | None = None
    stream_options: _StreamOptions | None = None
    n: int | None = None
    tools: list[_Tool] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    response_format: Any = None
    colm: _ColmOptions | None = None


_MESSAGE: TypeAdapter[_Message] = TypeAdapter(_Message)
_TOP_FIELDS = tuple(_ChatRequest.model_fields)


# -- errors ---------------------------------------------------------------------------------
class _ApiError(Exception):
    """An error answered as ``{"error": {message, type, param, code}}``."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (status, message, type,
                                                                        param, code)

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}
        return JSONResponse(body, status_code=self.status)


_UNION_TAG = re.compile(r"^(str|int|float|bool|none|(list|dict|tagged-union)\[.*\]|function-.*)$")


def _clean_loc(loc: Sequence[str | int]) -> list[str | int]:
    """The field path of an error without pydantic's union-member and discriminator tags."""
    out: list[str | int] = []
    skip_tag = tagged = False
    for part in loc:
        if skip_tag:
            skip_tag = False
            continue
        if isinstance(part, str) and _UNION_TAG.match(part):
            tagged = tagged or "tagged-union" in part
            continue
        if isinstance(part, int) and tagged:
            skip_tag, tagged = True, False
        out.append(part)
    return out


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, BaseModel) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _invalid(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> _ApiError:
    errors: list[Any] = [{**e, "loc": (*prefix, *e["loc"])}
                         for e in exc.errors(include_url=False)]
    err = max(errors, key=lambda e: len(e["loc"]))
    loc = _clean_loc(err["loc"])
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "json_invalid":
        return _ApiError(400, f"the request body is not valid JSON: {ctx.get('error', '')}")
    if kind == "missing":
        where = format_loc(loc[:-1]) if len(loc) > 1 else "request body"
        return _ApiError(400, f"{where}: missing required field {str(loc[-1])!r}",
                         param=format_loc(loc))
    where = format_loc(loc) if loc else "request body"
    if kind == "too_short":
        return _ApiError(400, f"{where}: expected at least {ctx.get('min_length', 1)} item(s),"
                         " got none", param=where)
    if kind == "union_tag_invalid":
        return _ApiError(400, f"{where}: unsupported {ctx.get('discriminator', 'type')} value"
                         f" {ctx.get('tag')!r} (supported: {ctx.get('expected_tags')})",
                         param=where)
    siblings = [e["msg"] for e in errors
                if _clean_loc(e["loc"]) == loc and e["loc"] and isinstance(e["loc"][-1], str)
                and _UNION_TAG.match(e["loc"][-1])]
    if len(siblings) > 1:
        msg = "input should be " + " or ".join(m.removeprefix("Input should be ")
                                                for m in siblings)
    else:
        msg = err["msg"][:1].lower() + err["msg"][1:]
    return _ApiError(400, f"{where}: {msg}, got {_short(err.get('input'))}",
                     param=where if loc else None)


# -- reading the body ----------------------------------------------------------------------
async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, read chunk by chunk and refused (413) as soon as it passes
    ``limit`` bytes, whatever its declared length or transfer encoding."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _ApiError(413, f"request body of {declared} bytes, expected at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _ApiError(413, f"request body of more than {limit} bytes, expected at most"
                            f" {limit}")
        chunks.append(chunk)
    return b"".join(chunks)


_WS = re.compile(r"[ \t\n\r]*")
_KINDS = {"[": "an array", '"': "a string", "t": "a boolean", "f": "a boolean", "n": "null"}


def _not_json(message: str, text: str, pos: int) -> _ApiError:
    return _ApiError(400, f"the request body is not valid JSON:"
                     f" {json.JSONDecodeError(message, text, pos)}")


class _Reader:
    """Reads the body's JSON object field by field and its ``messages`` array item by item
    (each item parsed, validated and handed on before the next is read), so that no single
    step holds the interpreter for long, whatever the body holds."""

    def __init__(self, body: bytes) -> None:
        try:
            self.text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _ApiError(400, f"the request body is not valid JSON: not UTF-8 text (byte"
                            f" {exc.start})") from None
        self.decoder = json.JSONDecoder()

    def skip(self, pos: int) -> int:
        return _WS.match(self.text, pos).end()  # type: ignore[union-attr]

    def value(self, pos: int) -> tuple[Any, int]:
        try:
            return self.decoder.raw_decode(self.text, pos)
        except json.JSONDecodeError as exc:
            raise _ApiError(400, f"the request body is not valid JSON: {exc}") from None
        except RecursionError:
            raise _ApiError(400, "the request body is not valid JSON: nested too deeply"
                            ) from None

    def expect(self, pos: int, chars: str, what: str) -> int:
        if pos < len(self.text) and self.text[pos] in chars:
            return pos
        raise _not_json(f"Expecting {what}", self.text, pos)

    def read(self, on_message: Callable[[int, Any, int, int], None]) -> dict[str, Any]:
        """The top-level fields (``messages`` as a list of ``None`` when it is an array:
        its items go to ``on_message(index, item, start, end)``)."""
        text = self.text
        pos = self.skip(0)
        if pos == len(text):
            raise _not_json("Expecting value", text, pos)
        if text[pos] != "{":
            kind = _KINDS.get(text[pos], "a number")
            if kind != "an array":  # a JSON error first, if it is one (an array: not read)
                self.value(pos)
            raise _ApiError(400, f"request body: input should be an object, got {kind}")
        fields: dict[str, Any] = {}
        pos = self.skip(pos + 1)
        if text.startswith("}", pos):
            pos += 1
        else:
            while True:
                self.expect(pos, '"', "property name enclosed in double quotes")
                key, pos = self.value(pos)
                pos = self.skip(self.expect(self.skip(pos), ":", "':' delimiter") + 1)
                if key == "messages" and key in fields:
                    raise _ApiError(400, "request body: field 'messages' given twice",
                                    param="messages")
                if key == "messages" and text.startswith("[", pos):
                    fields[key], pos = self.items(pos, on_message)
                else:
                    fields[key], pos = self.value(pos)
                pos = self.skip(pos)
                if text.startswith(",", pos):
                    pos = self.skip(pos + 1)
                    continue
                pos = self.expect(pos, "}", "',' delimiter") + 1
                break
        pos = self.skip(pos)
        if pos != len(text):
            raise _not_json("Extra data", text, pos)
        return fields

    def items(self, pos: int, on_message: Callable[[int, Any, int, int], None]
              ) -> tuple[list[None], int]:
        count = 0
        pos = self.skip(pos + 1)
        if self.text.startswith("]", pos):
            return [], pos + 1
        while True:
            item, end = self.value(pos)
            on_message(count, item, pos, end)
            count += 1
            pos = self.skip(end)
            if self.text.startswith(",", pos):
                pos = self.skip(pos + 1)
                continue
            pos = self.expect(pos, "]", "',' delimiter")
            return [None] * count, pos + 1


# -- conversation -> protocol input ---------------------------------------------------------
_KIND = {"system": "system", "developer": "system", "user": "human", "assistant": "ai",
         "tool": "tool", "function": "tool"}


def _text_of(content: str | list[Any] | None) -> str:
    """The text of a message's content (its text and refusal parts, one per line)."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = [p.text if isinstance(p, _TextPart) else p.refusal for p in content
             if isinstance(p, _TextPart | _RefusalPart)]
    return "\n".join(t for t in texts if t)


def _turn(message: _Message, i: int, hosts: Sequence[str],
          calls: Sequence[Mapping[str, Any]] = ()) -> Turn:
    """The message as a turn of the conversation, its image URLs checked (an assistant's
    tool calls written after its text)."""
    kind = _KIND[message.role]
    images: list[dict[str, Any]] = []
    for j, part in enumerate(message.content if isinstance(message.content, list) else ()):
        if isinstance(part, _ImagePart):
            where = f"messages[{i}].content[{j}].image_url.url"
            try:
                check_image_url(part.image_url.url, where, hosts)
            except ColmGraphError as exc:
                raise _ApiError(400, str(exc), param=where) from None
            images.append({"type": "image_url",
                           "image_url": part.image_url.model_dump(exclude_none=True)})
    text = _text_of(message.content)
    if calls:
        text = f"{text}\n{tool_calls_text(calls)}".strip()
    return Turn(kind, text, tuple(images))


def _arguments(text: str, where: str) -> dict[str, Any]:
    """A call's arguments (a JSON object in a string; an empty string: none)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise _ApiError(400, f"{where}: expected a JSON object encoded as a string, got text"
                        f" that is not JSON ({exc}): {_short(text)}", param=where) from None
    except RecursionError:
        raise _ApiError(400, f"{where}: the arguments' JSON is nested too deeply",
                        param=where) from None
    if not isinstance(value, dict):
        raise _ApiError(400, f"{where}: expected a JSON object, got {_short(value)}",
                        param=where)
    return value


def _calls_of(message: _Message, i: int, legacy: dict[str, str]) -> list[dict[str, Any]]:
    """An assistant message's tool calls (``name``, ``args``, ``id``), their arguments
    parsed; a legacy ``function_call`` is one call (its id kept in ``legacy`` by name, for
    the ``function`` message that answers it)."""
    if message.role != "assistant":
        return []
    items = [(f"messages[{i}].tool_calls[{j}].function", call.id, call.function)
             for j, call in enumerate(message.tool_calls or ())]
    if not items and message.function_call is not None:
        legacy[message.function_call.name] = f"call_legacy_{i}"
        items.append((f"messages[{i}].function_call", f"call_legacy_{i}",
                      message.function_call))
    return [{"name": fn.name, "args": _arguments(fn.arguments, f"{where}.arguments"),
             "id": call_id} for where, call_id, fn in items]


def _chat_message(message: _Message, i: int, calls: list[dict[str, Any]],
                  legacy: Mapping[str, str]) -> BaseMessage:
    """The message as LangChain's (what an agent turn sends to the answering model)."""
    role, content = message.role, message.content
    named: dict[str, Any] = {"name": message.name} if message.name else {}
    if role in ("system", "developer"):
        return SystemMessage(content=_text_of(content), **named)
    if role == "user":
        if not isinstance(content, list):
            return HumanMessage(content=content or "", **named)
        blocks: list[str | dict[str, Any]] = []
        for part in content:
            if isinstance(part, _ImagePart):
                blocks.append({"type": "image_url",
                               "image_url": part.image_url.model_dump(exclude_none=True)})
            else:
                blocks.append({"type": "text", "text": _text_of([part])})
        return HumanMessage(content=blocks, **named)
    if role == "assistant":
        return AIMessage(content=_text_of(content), tool_calls=calls, **named)
    call_id = message.tool_call_id
    if call_id is None and role == "function":
        if not message.name:
            raise _ApiError(400, f"messages[{i}]: missing required field 'name'",
                            param=f"messages[{i}].name")
        call_id = legacy.get(message.name, f"call_legacy_{message.name}")
    if call_id is None:
        raise _ApiError(400, f"messages[{i}]: missing required field 'tool_call_id'",
                        param=f"messages[{i}].tool_call_id")
    return ToolMessage(content=_text_of(content), tool_call_id=call_id)


def _plain_format(fmt: Any) -> bool:
    """``response_format`` asks for nothing (none, or plain text)."""
    return fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text")


def _request(body: bytes, hosts: Sequence[str]
             ) -> tuple[_ChatRequest, Conversation, list[BaseMessage] | None]:
    """The request, its conversation (read up to the point where it is sure to be too
    long) and its messages as LangChain's (``None`` for a plain request: no tools, no
    response format, no tool calls or results in the conversation). Runs in a worker
    thread: a big body must not hold up other requests."""
    conversation = Conversation()
    reader = _Reader(body)
    kept: list[BaseMessage] = []
    legacy: dict[str, str] = {}
    talks_tools = False

    def on_message(i: int, item: Any, start: int, end: int) -> None:
        nonlocal talks_tools
        try:
            message = _MESSAGE.validate_python(item)
        except ValidationError as exc:
            error = exc
            try:  # the same errors in the words of JSON (an object, an array)
                _MESSAGE.validate_json(reader.text[start:end])
            except ValidationError as in_json:
                error = in_json
            raise _invalid(error, ("messages", i)) from None
        calls = _calls_of(message, i, legacy)
        try:
            conversation.add(_turn(message, i, hosts, calls))
        except ColmGraphError as exc:
            raise _ApiError(400, str(exc), param="messages") from None
        kept.append(_chat_message(message, i, calls, legacy))
        talks_tools = talks_tools or bool(calls) or message.role in ("tool", "function")

    fields = reader.read(on_message)
    top = {k: fields[k] for k in _TOP_FIELDS if k in fields}
    if isinstance(top.get("messages"), list):
        top["messages"] = top["messages"][:1]
    try:
        req = _ChatRequest.model_validate_json(json.dumps(top))
    except ValidationError as exc:
        raise _invalid(exc) from None
    plain = not req.tools and _plain_format(req.response_format) and not talks_tools
    return req, conversation, None if plain else kept


def _protocol_input(req: _ChatRequest, conversation: Conversation,
                    messages: Sequence[BaseMessage] | None, refusal: str | None
                    ) -> tuple[dict[str, Any], AgentTurn | None]:
    """The graph's input and the request's agent turn (``None``: a plain question). A
    variant that cannot call tools (``refusal`` says why) refuses tools, a forcing
    ``tool_choice`` and a ``response_format``; for one that can, every setting is checked
    (:meth:`AgentTurn.of`) and an agent turn's question ends with the turns after the last
    user message, its answers compared as text."""
    if req.n is not None and req.n != 1:
        raise _ApiError(400, f"n: only n=1 is supported (a protocol run gives one answer),"
                        f" got {req.n}", param="n")
    choice = req.tool_choice
    if not req.tools and choice in ("none", "auto"):
        choice = None  # nothing to choose from: as if not given
    turn: AgentTurn | None = None
    if refusal is not None:
        field = ("tools" if req.tools else "tool_choice" if choice is not None
                 else None if _plain_format(req.response_format) else "response_format")
        if field is not None:
            raise _ApiError(400, tools_refused(req.model, refusal, field), param=field)
    else:
        try:
            turn = AgentTurn.of(messages or (),
                                tools=[t.model_dump(exclude_none=True) for t in req.tools or ()],
                                tool_choice=choice, parallel_tool_calls=req.parallel_tool_calls,
                                response_format=req.response_format)
        except ConfigError as exc:
            text = str(exc).splitlines()[0]
            raise _ApiError(400, text, param=text.split(":", 1)[0]) from None
    try:
        inputs = conversation.result(trailing=turn is not None)
    except ColmGraphError as exc:
        raise _ApiError(400, str(exc), param="messages") from None
    if turn is not None:  # replies are compared by what they do, as text
        inputs["answer_type"] = "text"
    return inputs, turn


def _json_content(text: str) -> str:
    """A reply that checked out against a ``response_format`` as the JSON the check read:
    unchanged when it is bare JSON, else without its ``<think>`` block, Markdown fence and
    words around it (what a client of a JSON format parses)."""
    try:
        json.loads(text)
    except ValueError:
        value = json_of_reply(text)
        return json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else text
    return text


def _openai_calls(calls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls (``name``, ``args``, ``id``) in OpenAI's format (arguments as JSON)."""
    return [{"id": str(c.get("id") or f"call_{uuid.uuid4().hex[:24]}"), "type": "function",
             "function": {"name": str(c["name"]),
                          "arguments": json.dumps(c.get("args") or {})}} for c in calls]


DEADLINE_HEADER, PRIVATE_HEADER = "x-colm-deadline-s", "x-colm-private"


def _header_constraints(headers: Mapping[str, str]) -> dict[str, Any]:
    """``deadline_s`` / ``private`` from the request's headers (400 for a bad value)."""
    out: dict[str, Any] = {}
    raw = headers.get(DEADLINE_HEADER)
    if raw is not None:
        try:
            seconds = float(raw)
        except ValueError:
            seconds = float("nan")
        if not (seconds > 0 and seconds != float("inf")):
            raise _ApiError(400, f"{DEADLINE_HEADER}: expected a positive number of seconds,"
                            f" got {_short(raw)}", param=DEADLINE_HEADER)
        out["deadline_s"] = seconds
    raw = headers.get(PRIVATE_HEADER)
    if raw is not None:
        flag = {"true": True, "false": False}.get(raw.strip().lower())
        if flag is None:
            raise _ApiError(400, f"{PRIVATE_HEADER}: expected true or false, got"
                            f" {_short(raw)}", param=PRIVATE_HEADER)
        out["private"] = flag
    return out


def _run_constraints(given: Sequence[Mapping[str, Any]], params: Mapping[str, Any],
                     accepted: float) -> dict[str, Any]:
    """The ``configurable`` of a request's run from its constraints ``given`` (headers,
    body) and the server's ``params``: the tighter of each, the deadline (a Unix time)
    counted from ``accepted``; a ``false`` adds nothing."""
    def values(key: str) -> list[Any]:
        return [g[key] for g in (*given, params) if g.get(key) is not None]

    out: dict[str, Any] = {}
    deadlines = values("deadline_s")
    if deadlines and any(g.get("deadline_s") is not None for g in given):
        out["colm_deadline"] = accepted + min(float(d) for d in deadlines)
    for key in ("private", "private_detect"):
        if any(v is True for v in values(key)):
            out[key] = True
    caps = values("max_upload_bytes")
    if caps:
        out["max_upload_bytes"] = min(int(c) for c in caps)
    return out


# -- responses ------------------------------------------------------------------------------
def _usage(run: RunResult) -> tuple[dict[str, int], dict[str, Any]]:
    """The reply's ``usage`` (every call of the run) and its ``colm`` object."""
    usage = {"prompt_tokens": run.usage.input_tokens,
             "completion_tokens": run.usage.output_tokens,
             "total_tokens": run.usage.total_tokens}
    colm = {**run.outcome(), "degraded_reasons": list(run.degraded_reasons),
            "totals": dict(run.totals)}
    return usage, colm


# -- the app --------------------------------------------------------------------------------
def _compile(pool: ModelPool, graphs: Sequence[str | Path | GraphSpec] | None,
             params: Mapping[str, Any] | None
             ) -> tuple[dict[str, Any], dict[str, frozenset[str]], dict[str, str | None]]:
    """Each graph by name, compiled, its reply nodes (whose tokens a stream sends) and why
    it cannot call tools (``None``: it can)."""
    if graphs is None:
        graphs = _bundled()
    elif isinstance(graphs, str | Path | GraphSpec):
        graphs = [graphs]
    specs = [g if isinstance(g, GraphSpec) else load_spec(g) for g in graphs]
    if not specs:
        raise ConfigError("graphs: expected at least one graph to serve")
    params = dict(params or {})
    for key in params:
        if not any(key in {**IMPLICIT_PARAMS, **s.parameters} for s in specs):
            raise ConfigError(f"parameter {key!r}: no served graph has it")
    compiled: dict[str, Any] = {}
    replies: dict[str, frozenset[str]] = {}
    refusals: dict[str, str | None] = {}
    for spec in specs:
        if spec.name in compiled:
            raise ConfigError(f"graphs: graph name {spec.name!r} given twice")
        known = {**IMPLICIT_PARAMS, **spec.parameters}
        mine = {k: v for k, v in params.items() if k in known}
        compiled[spec.name] = load_graph(spec, pool=pool, params=mine)
        replies[spec.name] = reply_nodes_of(spec, pool=pool, params=mine)
        refusals[spec.name] = tools_refusal(spec, replies[spec.name])
    return compiled, replies, refusals


def _bundled() -> list[str]:
    from colm_graph.spec import bundled_graphs

    return bundled_graphs()


DISCONNECT_POLL_S = 0.05
"""How often a running request checks that its client is still there."""


IDEMPOTENCY_POLL_S = 0.1
"""How often a repeat of a running idempotent request looks for its result."""


def _respond(req: _ChatRequest, reply: Mapping[str, Any]) -> Response:
    """The reply (see ``run_reply`` in :func:`create_app`) as JSON."""
    head = {"id": reply["id"], "created": reply["created"], "model": req.model,
            "system_fingerprint": None}
    text, usage, colm = reply["text"], reply["usage"], reply["colm"]
    calls = reply.get("tool_calls") or []
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else ""),
                               "refusal": None}
    if calls:
        message["tool_calls"] = calls
    finish = reply.get("finish_reason") or ("tool_calls" if calls else "stop")
    return JSONResponse({
        **head, "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish}],
        "usage": usage, "colm": colm})


PROGRESS_S = 5.0
"""How often a streamed request is sent a comment while its run works."""


def _error_event(exc: BaseException) -> dict[str, Any] | None:
    """A failure once a stream has started, as an OpenAI-shaped ``error`` event."""
    if not isinstance(exc, _ApiError):
        return None
    return {"error": {"message": exc.message, "type": exc.type, "param": exc.param,
                      "code": exc.code}}


class _Gone(Exception):
    """The client went away while its run was working; the run was cancelled."""


async def _unless_gone(request: Request, work: Any, within_s: float | None = None,
                       early: asyncio.Event | None = None) -> Any:
    """Await ``work`` while the client is connected; when it disconnects, cancel the work
    (no model call starts after that, calls in flight are cancelled and the paid ones are
    settled at what they may have cost) and raise :class:`_Gone`. With ``within_s``, a
    ``TimeoutError`` once that long has passed, or as soon as ``early`` is set (the work
    is cancelled: pass it shielded)."""
    task = asyncio.ensure_future(work)
    deadline = None if within_s is None else time.monotonic() + within_s
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if deadline is not None and (time.monotonic() >= deadline
                                         or (early is not None and early.is_set())):
                task.cancel()
                raise TimeoutError
            if await request.is_disconnected():
                await cancel_and_wait(task)
                raise _Gone
    except asyncio.CancelledError:
        await cancel_and_wait(task)
        raise


class _Counted:
    """ASGI middleware: counts and times chat requests for the metrics, and names the worker
    that answered (``x-colm-worker``). Pure ASGI, so the endpoint still sees a client's
    disconnect."""

    def __init__(self, app: Any, metrics: ServeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/chat/completions":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]
        worker = str(os.getpid()).encode()

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-colm-worker", worker)]}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            model = scope.get("state", {}).get("model", "-")
            self.metrics.request(model, status[0], time.perf_counter() - started)


def _metrics(operator: Operator | None) -> ServeMetrics | None:
    """The app's metrics; ``None`` without prometheus-client (``/metrics`` says so)."""
    try:
        from colm_graph.integrations.metrics import ServeMetrics
    except ImportError:
        return None
    return ServeMetrics(operator)


def _process_claims() -> IdempotencyStore:
    """Idempotency claims in a file of this process (no operator file: nothing to share)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="colm-graph-serve-"))
    return SQLiteIdempotency(folder / "idempotency.sqlite")


def _refused(exc: Refused) -> _ApiError:
    kind = {401: "authentication_error", 403: "permission_error"}.get(exc.status)
    if kind is None:
        kind = "insufficient_quota" if exc.code == "insufficient_quota" else "rate_limit_error"
    return _ApiError(exc.status, str(exc), type=kind, code=exc.code)


def _tighter_caps(params: Mapping[str, Any], conf: Mapping[str, Any]) -> dict[str, Any]:
    """A key's per-request caps combined with the server's (the smaller of each)."""
    out = dict(conf)
    for name in ("max_paid_usd", "max_paid_tokens"):
        if params.get(name) is not None and name in out:
            out[name] = min(out[name], params[name])
    return out


def create_app(pool: ModelPool, *, graphs: Sequence[str | Path | GraphSpec] | None = None,
               token: str | None = None, params: Mapping[str, Any] | None = None,
               allow_image_hosts: Iterable[str] = (),
               max_body_bytes: int = MAX_BODY_BYTES,
               operator: Operator | None = None,
               idempotency: IdempotencyStore | None = None,
               idempotency_keep_s: float = 86400.0,
               idempotency_lease_s: float = 600.0,
               progress_s: float = PROGRESS_S) -> FastAPI:
    """An OpenAI-compatible app serving ``graphs`` (default: every shipped graph) over
    ``pool``; each graph's name is a model id. ``params`` (e.g. ``{"max_paid_usd": 0.01}``)
    go to every graph that has them. With ``token``, every request needs
    ``Authorization: Bearer <token>``. Image URLs must be ``data:`` URLs, or ``http(s)`` URLs
    on one of ``allow_image_hosts`` (host names or IP addresses, matched exactly); request
    bodies over ``max_body_bytes`` are refused (413). ``app.state.models`` lists the model
    ids. A streamed request gets an SSE comment every ``progress_s`` while its run works (so
    that proxies do not time it out), then the reply. A request with an
    ``Idempotency-Key`` header runs once: repeats get the first run's reply (kept
    ``idempotency_keep_s``; see :mod:`colm_graph.integrations.idempotency`), its
    claims kept in ``idempotency`` (default: the operator's store, else a file of this
    process). With ``operator`` (:mod:`colm_graph.integrations.operator`), requests need one of
    its API keys instead of ``token``, are admitted by its rules, and every paid call draws on
    its shared spend store; ``GET /v1/spend`` (its admin token) shows the spend. ``GET
    /health`` needs no key. The clients of the pool's ``openai`` models are built here,
    so that no request's deadline pays for it. Raises :class:`ColmGraphError` for a bad
    graph, parameter or host."""
    if operator is not None and token is not None:
        raise ConfigError("token: give either a bearer token or an operator file, not both")
    hosts = sorted({check_image_host(h, flag="allow_image_hosts") for h in allow_image_hosts})
    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) \
            or max_body_bytes < 1:
        raise ConfigError(f"max_body_bytes: expected a positive number of bytes, got"
                          f" {max_body_bytes!r}")
    compiled, replies, refusals = _compile(pool, graphs, params)
    pool.warm_clients()  # now, not in the first request's deadline (the SDK's import)
    if operator is not None:
        operator.check_graphs(list(compiled))
    created = int(time.time())
    shared = idempotency or (operator.idempotency if operator is not None else None)
    claims: list[IdempotencyStore] = [shared] if shared is not None else []

    def claims_store() -> IdempotencyStore:
        """Where claims live: given, the operator's, else (first keyed request) a file."""
        if not claims:
            claims.append(_process_claims())
        return claims[0]
    running: set[asyncio.Task[Any]] = set()  # idempotent runs that outlive their request
    metrics = _metrics(operator)
    app = FastAPI(title="colm-graph", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.models = list(compiled)

    @app.exception_handler(_ApiError)
    async def _api_error(request: Request, exc: _ApiError) -> Response:
        return exc.response()

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        message = (f"Invalid URL ({request.method} {request.url.path})" if exc.status_code == 404
                   else str(exc.detail))
        return _ApiError(exc.status_code, message).response()

    async def authorize(request: Request) -> None:
        if operator is not None:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            try:
                request.state.key = operator.key_for(
                    value.strip() if scheme.lower() == "bearer" else None)
            except Refused as exc:
                raise _refused(exc) from None
            return
        if token is None:
            return
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _ApiError(401, "missing bearer token: send the header 'Authorization: Bearer"
                            " <token>'", code="invalid_api_key")
        if not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise _ApiError(401, "incorrect API key provided", code="invalid_api_key")

    auth = [Depends(authorize)]

    def model_card(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": created, "owned_by": OWNER}

    def graph_for(name: str, param: str | None = "model") -> Any:
        if name not in compiled:
            raise _ApiError(404, f"The model {name!r} does not exist (models:"
                            f" {', '.join(compiled)})", param=param, code="model_not_found")
        return compiled[name]

    if metrics is not None:
        app.add_middleware(_Counted, metrics=metrics)

    @app.get("/metrics")
    async def metrics_page(request: Request) -> Response:
        if metrics is None:
            raise _ApiError(404, "no metrics: install prometheus-client"
                            " (pip install 'colm-graph[serve]')", code="not_found")
        if operator is not None and operator.admin_token is not None:
            check_admin(request, "/metrics")
        data, kind = await run_in_threadpool(metrics.render)
        return Response(data, media_type=kind)

    def check_admin(request: Request, path: str) -> None:
        assert operator is not None and operator.admin_token is not None
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode(), operator.admin_token.encode()):
            raise _ApiError(401, f"GET {path} needs the admin token",
                            type="authentication_error", code="invalid_api_key")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": list(compiled), "pid": os.getpid()}

    @app.get("/v1/spend")
    async def spend(request: Request) -> dict[str, Any]:
        if operator is None or operator.admin_token is None:
            raise _ApiError(404, "no spend endpoint: serve with an operator file that names"
                            " admin_token_env", code="not_found")
        check_admin(request, "/v1/spend")
        return await run_in_threadpool(operator.spend)

    @app.get("/v1/models", dependencies=auth)
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card(n) for n in compiled]}

    @app.get("/v1/models/{model_id:path}", dependencies=auth)
    async def get_model(model_id: str) -> dict[str, Any]:
        graph_for(model_id, param=None)
        return model_card(model_id)

    @app.post("/v1/chat/completions", dependencies=auth)
    async def chat_completions(request: Request) -> Response:
        accepted = time.time()  # a deadline counts from here
        headed = _header_constraints(request.headers)
        body = await _read_body(request, max_body_bytes)
        req, conversation, messages = await run_in_threadpool(_request, body, hosts)
        digest = hashlib.sha256(body + (json.dumps(headed, sort_keys=True).encode()
                                        if headed else b"")).hexdigest()
        del body
        graph_for(req.model)
        request.state.model = req.model
        inputs, turn = _protocol_input(req, conversation, messages, refusals[req.model])
        limits = _run_constraints(
            [headed, req.colm.model_dump(exclude_none=True) if req.colm else {}],
            params or {}, accepted)
        del messages
        idem = request.headers.get("idempotency-key")

        # an agent turn's reply is checked before it goes out: no live tokens
        nodes = replies[req.model] if req.stream and turn is None else frozenset()
        tokens = ReplyTokens(pool_secrets(pool, [token])) if nodes else None
        if idem is None:
            config = await admit(request, req, limits)  # refusals keep their HTTP status
            work: Any = run_reply(req, inputs, config, tokens, turn)
        else:
            if not 1 <= len(idem) <= 255:
                raise _ApiError(400, "Idempotency-Key: expected 1 to 255 characters",
                                code="invalid_idempotency_key")
            who = request.state.key.name if operator is not None else "-"

            async def start() -> dict[str, Any]:
                return await run_reply(req, inputs, await admit(request, req, limits), tokens,
                                       turn)

            work = idempotent(f"{who}:{idem}", digest, start)
        task = asyncio.ensure_future(work)
        try:  # a streamed request that is done (or failed) before its first token and
            # progress tick gets its reply (or its error's status) in one go
            reply = await _unless_gone(request, asyncio.shield(task),
                                       progress_s if req.stream else None,
                                       tokens.changed if tokens is not None else None)
        except _Gone:
            await cancel_and_wait(task)
            return Response(status_code=499)  # nobody reads it (nginx's "client closed")
        except asyncio.CancelledError:  # the server is stopping: so is the run
            await cancel_and_wait(task)
            raise
        except TimeoutError:  # (streamed requests only) still working: stream it
            reply = None
        if req.stream:
            head = {"id": reply["id"] if reply else f"chatcmpl-{uuid.uuid4().hex}",
                    "created": reply["created"] if reply else int(time.time()),
                    "model": req.model, "system_fingerprint": None}
            include = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(sse_reply(head, task, tokens, progress_s, include,
                                               _error_event),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache",
                                              "X-Accel-Buffering": "no"})
        return _respond(req, reply)

    async def admit(request: Request, req: _ChatRequest, limits: Mapping[str, Any]
                    ) -> RunnableConfig:
        """The run's config (with its constraints ``limits``), once the operator (if any)
        lets the request in."""
        config: RunnableConfig = {"run_name": f"colm-graph serve {req.model}"}
        if limits:
            config["configurable"] = dict(limits)
        if operator is not None:
            try:
                admitted = await run_in_threadpool(operator.admit, request.state.key,
                                                   req.model)
            except Refused as exc:
                raise _refused(exc) from None
            config["configurable"] = {**dict(limits), "colm_account": admitted.account,
                                      **_tighter_caps(params or {}, admitted.configurable)}
        return config

    async def run_reply(req: _ChatRequest, inputs: dict[str, Any], config: RunnableConfig,
                        tokens: ReplyTokens | None = None, turn: AgentTurn | None = None
                        ) -> dict[str, Any]:
        """Run one admitted request: the parts of its reply (id, created, text, usage,
        colm; for an agent turn also tool_calls and finish_reason), as kept for an
        idempotent repeat. With ``tokens``, the reply nodes' tokens are fed to it as they
        arrive; with ``turn``, the answer nodes send its conversation with its tools, and
        the reply is the answering model's message."""
        secrets = pool_secrets(pool, [token])
        graph = graph_for(req.model)
        if turn is not None:
            config = {**config, "configurable": {**(config.get("configurable") or {}),
                                                 TURN_KEY: turn}}
        try:
            if tokens is None:
                state = await graph.ainvoke(inputs, config)
            else:
                state = await stream_graph(graph, inputs, config, replies[req.model], tokens)
        except Exception as exc:  # a model or provider failure: one line, no secrets
            text = scrub(f"{type(exc).__name__}: {exc}", secrets)
            status = 500 if isinstance(exc, ColmGraphError) else 502
            message = f"graph {req.model!r} failed: {(text.splitlines() or [''])[0][:500]}"
            raise _ApiError(status, message, type="server_error",
                            code="server_error") from None
        run = RunResult.from_state(state, graph=req.model)
        if metrics is not None:
            metrics.run(req.model, run)
        usage, colm = _usage(run)
        text, extra = run.reply_text, {}
        if turn is not None:  # the answering model's own message, tool calls and all
            reply = turn_reply(state)
            colm = reply.outcome(colm)
            if reply.answered_by is not None:  # else no model answered: the run's text
                text = reply.text
            if turn.response_format is not None and not reply.tool_calls and not reply.invalid:
                text = _json_content(text)
            extra = {"tool_calls": scrub_value(_openai_calls(reply.tool_calls), secrets),
                     "finish_reason": reply.finish_reason}
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()),
                "text": scrub(text, secrets), "usage": usage,
                "colm": scrub_value(colm, secrets), **extra}

    async def idempotent(scope: str, digest: str, start: Callable[[], Any]) -> dict[str, Any]:
        """The reply of the one run for ``scope``: run it (kept for ``idempotency_keep_s``),
        or wait for the run that has it. The run goes on if this client leaves: a retry
        gets its reply."""
        while True:
            claim = await run_in_threadpool(claims_store().claim, scope, digest,
                                            idempotency_lease_s)
            if claim.state == "done" and claim.result is not None:
                return claim.result
            if claim.state == "mismatch":
                raise _ApiError(422, "Idempotency-Key was used for a different request",
                                code="idempotency_key_reused")
            if claim.state == "run":
                task = asyncio.ensure_future(owned(scope, start))
                running.add(task)
                task.add_done_callback(running.discard)
                result: dict[str, Any] = await asyncio.shield(task)
                return result
            await asyncio.sleep(IDEMPOTENCY_POLL_S)

    async def owned(scope: str, start: Callable[[], Any]) -> dict[str, Any]:
        try:
            reply: dict[str, Any] = await start()
        except BaseException:  # a failed run gives its key up: a retry runs again
            await run_in_threadpool(claims_store().abandon, scope)
            raise
        await run_in_threadpool(claims_store().finish, scope, reply, idempotency_keep_s)
        return reply

    return app


# -- running it -----------------------------------------------------------------------------
def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _url_of(sock: socket.socket) -> str:
    """``http://host:port/v1`` for a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"


def run_server(app: FastAPI, *, host: str = "127.0.0.1", port: int = 8000,
               ready: Callable[[str], None] | None = None, log_level: str = "info") -> None:
    """Serve ``app`` with uvicorn until SIGINT or SIGTERM (a graceful stop). ``port`` 0
    picks a free port; ``ready(url)`` is called once the server accepts requests. Raises
    ``OSError`` when the address cannot be bound."""
    import signal

    import uvicorn

    sock = _bind(host, port)
    url = _url_of(sock)

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and ready is not None:
                ready(url)

    server = _Server(uvicorn.Config(app, log_level=log_level, ws="none", lifespan="off"))
    # uvicorn re-sends a captured SIGINT or SIGTERM after its graceful shutdown: let that (or
    # one that comes before uvicorn listens) just stop the server, so the process exits 0.
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, lambda *_: setattr(server, "should_exit", True))
                    for sig in signals}
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_workers(factory: str, *, workers: int, host: str = "127.0.0.1", port: int = 8000,
                ready: Callable[[str], None] | None = None, log_level: str = "warning") -> None:
    """Serve the app that ``factory`` (``"module:function"``, called in each worker) builds,
    from ``workers`` uvicorn processes sharing one listening socket, until SIGINT or SIGTERM.
    Counters go to a fresh ``PROMETHEUS_MULTIPROC_DIR`` so that ``/metrics`` of any worker
    sums them all; budgets and idempotency claims are shared through the operator's store.
    ``ready(url)`` is called once the socket is bound (the workers then start)."""
    import tempfile

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="colm-metrics-"))
    sock = _bind(host, port)
    url = _url_of(sock)
    config = uvicorn.Config(factory, factory=True, fd=sock.fileno(), workers=workers,
                            log_level=log_level, ws="none", lifespan="off")
    if ready is not None:
        ready(url)
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
