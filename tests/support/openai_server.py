"""A local, stdlib-only, OpenAI-compatible chat-completions server for tests, which writes
like a real provider and can misbehave like one.

It speaks enough of the Chat Completions API for the real ``openai`` / ``langchain_openai``
clients::

    with FakeOpenAIServer(responder=lambda body: "Answer: 7") as srv:
        llm = ChatOpenAI(base_url=srv.base_url, api_key="sk-test", model="fake")
        llm.invoke("hi").content            # "Answer: 7"
        srv.requests[-1]["body"]["messages"]  # what the client sent

    schedule = {"m-big": ["429", "503", "ok"]}         # successive requests for model m-big
    with FaultServer(schedule) as srv:                 # every other request: "ok"
        llm = ChatOpenAI(base_url=srv.base_url, api_key="sk-test", model="m-big")
        llm.invoke("hi")                               # 3 requests on the wire, one answer
        srv.behaviours("m-big")                        # ["429", "503", "ok"]

Endpoints (anything else is a 404 with an OpenAI-shaped error body):

* ``POST /v1/chat/completions`` -- JSON answer, or Server-Sent Events when the body has
  ``"stream": true`` (usage last with ``stream_options.include_usage``; a responder's
  ``reasoning_content`` streamed before the content, as vLLM and DeepSeek send thinking;
  a responder's ``tool_calls`` in the wire format of OpenAI function calling, see
  *Tool calls* below).
* ``GET /v1/models`` -- one model, ``fake``.

The server listens on ``127.0.0.1`` on a free port (or ``port``) and serves each connection
in its own daemon thread, so concurrent requests overlap (useful with ``latency_s``). Every response
carries ``Connection: close``; no keep-alive connection outlives a request, so ``close()``
never waits on idle clients. Nothing is printed or logged; errors inside handler threads
(a client that went away mid-answer) are kept in ``errors``.

:class:`FaultServer` is the same server with one content chunk per streamed choice and its
own ids; the faults work on both.

Behaviours (:data:`BEHAVIOURS`) and what the ``openai`` client (v1+, ``max_retries=2``)
makes of them:

========== ============================================================= =====================
behaviour  what the server does                                          openai client
========== ============================================================= =====================
ok         200 with a chat completion (or an SSE stream)                  returns
429        429 ``rate_limit_error``, ``Retry-After: 0``,                   retried; then
           ``retry-after-ms: <retry_after_ms>``                           ``RateLimitError``
500/502/   that status with an OpenAI-shaped ``server_error`` body and     retried; then
503        the same two retry headers                                     ``InternalServerError``
timeout    sleeps ``timeout_sleep_s`` (longer than the client's timeout)   retried; then
           before anything is sent; then answers ``ok`` or drops the       ``APITimeoutError``
           connection (``timeout_then``)
reset      closes the TCP connection with ``SO_LINGER 0`` (an RST) right   retried; then
           after reading the request, sending nothing                     ``APIConnectionError``
malformed  200, ``application/json``, a body that is not JSON              not retried: the body
                                                                          is parsed after the
                                                                          retry loop
truncated  200, ``application/json``, a valid completion cut in half      not retried
empty      200 with a valid completion whose ``choices`` list is empty     not retried (a valid
                                                                          response)
runaway    ignores ``max_tokens``: streams ``runaway_chunks`` chunks of    returns whatever it
           ``runaway_piece`` (SSE; a JSON body of all of them when not     reads
           streamed), then usage (``runaway_usage`` or the true count)
           and ``[DONE]``; records ``chunks_sent`` and ``client_closed``
           (the client hung up before the end)
========== ============================================================= =====================

The exact exceptions LangChain surfaces for the last three are whatever ``openai`` and
``langchain_openai`` raise for an unparsable body or a result without generations; the
integration tests pin them.

Choosing the behaviour of a request, first match wins:

1. ``behaviour_for(record)`` (optional hook) returns a behaviour name, or None to go on;
2. the model's **schedule** (``schedule[model]``, else ``schedule["*"]``): the n-th request
   for that model (in arrival order, counted per model) gets the n-th entry;
3. **random mode** (``random_faults[model]``, else ``random_faults["*"]``, a mapping
   behaviour -> probability; the rest of the probability is ``ok``). The draw is a pure
   function of ``(seed, model, request body, call, attempt)`` (see below), so it does not
   depend on how concurrent requests with different bodies interleave: a retry gets a fresh
   draw, and a rerun with the same seed and the same bodies gets the same faults;
4. ``after`` (a behaviour name, or a mapping model -> name with ``"*"`` as the default):
   ``"ok"`` unless told otherwise.

Every chat request is recorded (:class:`RequestLog` of dicts) with ``model``, ``behaviour``,
``tag`` (the first group of ``tag_pattern`` found in the messages' text, so that tests can
attribute requests to the run that made them), ``attempt`` (1 for a first try, 2 for the first
retry, ...: from the openai client's ``x-stainless-retry-count`` header, else the number of
times this model got this exact body), ``call`` (1 for the first call with this exact body to
this model, 2 for the next one whose first attempt came after it, ...; a retry belongs to the
latest such call), ``digest`` (SHA-256 of the raw body; ``(model, digest, call)`` names one
call of ours, its records being its attempts), ``started_at`` / ``finished_at``
(``time.monotonic()``), ``status`` (the HTTP status sent; None for ``reset`` and for a dropped
``timeout``), ``response_bytes`` (the bytes of the response body written, headers not
counted; a stream's events as they were written), ``prompt_tokens`` / ``completion_tokens``
(the usage of the completion the server built, for every behaviour that builds one: ``ok``,
``malformed``, ``truncated``, ``empty``, an answered ``timeout``), ``body``, ``headers`` and
``path``. Other paths are recorded too, with ``model=None`` and ``behaviour="ok"``
(``GET /v1/models``) or a 404.

``responder``: ``responder(body) -> str | dict``; the dict's keys (all optional):

=================== ===========================================================================
key                 meaning
=================== ===========================================================================
content             the assistant text (``""`` by default)
reasoning_content   thinking sent beside ``content`` (streamed before it)
tool_calls          a list of ``{"name": str, "arguments": str | dict, "id"?: str}``: the
                    function calls of the reply (below)
finish_reason       overrides the default: ``"tool_calls"`` when there are tool calls, else
                    ``"stop"``
prompt_tokens       overrides the prompt-token estimate
completion_tokens   overrides the completion-token estimate
=================== ===========================================================================

Nothing is printed or logged; errors inside handler threads are kept in
:attr:`FaultServer.errors`. A responder that raises (or returns malformed ``tool_calls``) gets
the request a 500 whose message names the exception, recorded as ``responder-error``.

Tool calls
----------

A dict ``arguments`` is JSON-encoded (``ensure_ascii=False``, as models write); a string is sent
verbatim, so a test can send arguments that are not JSON. Each call gets the responder's ``id``
or ``call_<n>`` (``n`` counts per server, so ids never repeat across requests or choices).

* Not streamed: ``message.tool_calls = [{"id", "type": "function", "function": {"name",
  "arguments": <str>}}]``; ``message.content`` is ``null`` when the content is empty (as OpenAI
  sends it), else the text (some models write a preamble beside their calls).
* Streamed: the role chunk (``"content": null`` when there is no content), the reasoning and
  content deltas as for a text reply, then for each call ``k`` one delta ``{"tool_calls":
  [{"index": k, "id", "type": "function", "function": {"name", "arguments": ""}}]}`` and
  argument fragments ``{"tool_calls": [{"index": k, "function": {"arguments": piece}}]}``
  (``stream_pieces`` of them, at least 2 when the arguments are longer than 8 characters, so
  that client-side merging is exercised; ``stream_delay_s`` after each), then the finish chunk,
  usage (with ``stream_options.include_usage``) and ``[DONE]``.
* The faults (``malformed``, ``truncated``, ``empty``, ...) apply to such replies as to text.
* ``completion_tokens`` counts the names and arguments with the text.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

__all__ = [
    "BEHAVIOURS",
    "CLIENT_RETRIES",
    "DEFAULT_ANSWER",
    "ERROR_STATUS",
    "BehaviourFor",
    "FakeOpenAIServer",
    "FaultServer",
    "RecordedRequest",
    "RequestLog",
    "Responder",
    "StatusFor",
    "count_prompt_chars",
    "default_responder",
    "estimate_tokens",
    "group_calls",
    "message_text",
]

DEFAULT_ANSWER = "Answer: 42"
CHAT = "/v1/chat/completions"

#: A responder receives the parsed request body and returns the assistant text, or
#: a dict ``{"content": str, "prompt_tokens": int, "completion_tokens": int}``
#: (the token counts are optional; ``"finish_reason"`` may override ``"stop"``; a
#: ``"reasoning_content"`` string is sent beside ``content`` in the message, and in
#: the streamed deltas before the content, the way vLLM and the DeepSeek API return
#: a reasoning model's thinking; ``"tool_calls"``, a list of ``{"name", "arguments"
#: (str or dict), "id" (optional)}``, makes it a function-calling reply: see the
#: module doc).
Responder = Callable[[dict[str, Any]], str | dict[str, Any]]
#: A status hook receives the parsed request body; an int >= 400 makes the server
#: answer with that status and an OpenAI-shaped error instead of calling the
#: responder.
StatusFor = Callable[[dict[str, Any]], int | None]
#: One recorded request: ``method``, ``path`` (without query string), ``headers``
#: (lower-cased names), ``body`` (parsed JSON, or None), ``model``, ``tag``, ``attempt``,
#: ``call``, ``digest``, ``behaviour`` (see the module doc), ``started_at`` and
#: ``finished_at`` (``time.monotonic()``; ``finished_at`` is set just before the
#: last bytes of the response are written, so it is set by the time the client
#: has the whole response), ``status`` (the HTTP status sent).
RecordedRequest = dict[str, Any]
#: ``behaviour_for(record) -> behaviour | None``, tried before the schedule.
BehaviourFor = Callable[[RecordedRequest], str | None]

#: Every behaviour the server knows.
BEHAVIOURS = ("ok", "429", "500", "502", "503", "timeout", "reset", "malformed", "truncated",
              "empty", "runaway")
#: Behaviours the ``openai`` client retries by itself (``max_retries``); the others reach
#: the caller on the first attempt.
CLIENT_RETRIES = frozenset({"429", "500", "502", "503", "timeout", "reset"})
#: Behaviours answered with an HTTP error status.
ERROR_STATUS = {"429": 429, "500": 500, "502": 502, "503": 503}

_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("not_found_error", "not_found"),
    409: ("conflict_error", "conflict"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
}
_INJECTED = {
    429: "Rate limit reached (injected fault).",
    500: "The server had an error (injected fault).",
    502: "Bad gateway (injected fault).",
    503: "The engine is overloaded (injected fault).",
}


def default_responder(body: dict[str, Any]) -> str:
    """Answer every request with :data:`DEFAULT_ANSWER` (``"Answer: 42"``)."""
    return DEFAULT_ANSWER


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content
                       if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text"))
    return ""


def message_text(body: Mapping[str, Any] | None) -> str:
    """All text of a request's messages (string contents and text blocks), joined by newlines."""
    return "\n".join(_text_of(m.get("content")) for m in (body or {}).get("messages") or ()
                     if isinstance(m, Mapping) and isinstance(m.get("content"), str | list))


def count_prompt_chars(messages: Iterable[Any]) -> int:
    """Total characters of the text in ``messages`` (string or text-block contents)."""
    total = 0
    for m in messages or ():
        if isinstance(m, dict):
            total += len(_text_of(m.get("content")))
    return total


def estimate_tokens(chars: int) -> int:
    """The server's token estimate for ``chars`` characters: ``max(1, chars // 4)``."""
    return max(1, chars // 4)


def group_calls(requests: Sequence[RecordedRequest]) -> list[list[RecordedRequest]]:
    """Chat requests grouped into calls by ``(model, digest, call)``: each call's attempts in
    arrival order, the calls ordered by their first attempt."""
    groups: dict[tuple[Any, Any, Any], list[RecordedRequest]] = {}
    for r in requests:
        groups.setdefault((r["model"], r["digest"], r["call"]), []).append(r)
    return list(groups.values())


def _check_behaviour(name: str, where: str) -> str:
    if name not in BEHAVIOURS:
        raise ValueError(f"{where}: unknown behaviour {name!r} (known: {', '.join(BEHAVIOURS)})")
    return name


def _split_for_stream(text: str, pieces: int) -> list[str]:
    """Split ``text`` into at most ``pieces`` non-empty consecutive parts."""
    if not text:
        return []
    size = max(1, -(-len(text) // max(1, pieces)))
    return [text[i : i + size] for i in range(0, len(text), size)]


class _Choice(NamedTuple):
    """One answer of the responder, normalised: the tool calls' arguments are strings."""

    content: str
    finish_reason: str
    reasoning: str | None
    tool_calls: tuple[tuple[str, str, str], ...]  # (id, name, arguments)


def _message(choice: _Choice) -> dict[str, Any]:
    """The ``message`` of a non-streamed choice; ``reasoning_content`` only when given,
    ``tool_calls`` only when there are some (then an empty content is ``null``)."""
    content: str | None = choice.content
    if choice.tool_calls and not content:
        content = None
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if choice.reasoning is not None:
        message["reasoning_content"] = choice.reasoning
    if choice.tool_calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in choice.tool_calls]
    return message


def _tool_call_entries(raw: Any) -> list[tuple[str | None, str, str]]:
    """A responder's ``tool_calls`` as ``(id or None, name, arguments string)``; raises
    ``TypeError`` / ``ValueError`` for a malformed list (the request then gets a 500)."""
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        raise TypeError(f"tool_calls: expected a list, got {type(raw).__name__}")
    out: list[tuple[str | None, str, str]] = []
    for k, call in enumerate(raw):
        if not isinstance(call, Mapping):
            raise TypeError(f"tool_calls[{k}]: expected a dict, got {type(call).__name__}")
        name, args, cid = call.get("name"), call.get("arguments", {}), call.get("id")
        if not isinstance(name, str) or not name:
            raise ValueError(f"tool_calls[{k}]: 'name' must be a non-empty string")
        if isinstance(args, Mapping):
            args = json.dumps(dict(args), ensure_ascii=False)
        elif not isinstance(args, str):
            raise TypeError(f"tool_calls[{k}]: 'arguments' must be a str or a dict,"
                            f" got {type(args).__name__}")
        if cid is not None and not isinstance(cid, str):
            raise TypeError(f"tool_calls[{k}]: 'id' must be a string")
        out.append((cid, name, args))
    return out


def _error_payload(status: int, message: str) -> dict[str, Any]:
    err_type, code = _ERROR_TYPES.get(
        status, ("server_error", "server_error") if status >= 500 else ("api_error", "error"))
    return {"error": {"message": message, "type": err_type, "param": None, "code": code}}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


class RequestLog(list[RecordedRequest]):
    """A list of :data:`RecordedRequest` dicts that the server threads append to.

    Appends and :meth:`clear` take a lock; :meth:`snapshot` returns a consistent
    copy. Reading it like a list (``len``, indexing, iteration) is fine in tests.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def append(self, item: RecordedRequest) -> None:
        with self._lock:
            super().append(item)

    def clear(self) -> None:
        with self._lock:
            super().clear()

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list.copy(self)

    def for_path(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path is ``path`` (e.g. ``"/v1/chat/completions"``)."""
        return [r for r in self.snapshot() if r["path"] == path]


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # bursts of concurrent clients (the default 5 resets some)
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, owner: FakeOpenAIServer, port: int = 0) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep handler errors (a client that went away mid-answer) instead of printing."""
        self.owner.errors.append(repr(sys.exc_info()[1]))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"
    sys_version = ""
    timeout = 60  # seconds a connection may sit idle before its thread gives up

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request logging to stderr."""

    # -- plumbing ---------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _record(self, body: Any) -> RecordedRequest:
        return {
            "method": self.command,
            "path": self.path.split("?", 1)[0],
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "model": body.get("model") if isinstance(body, dict) else None,
            "tag": None, "attempt": 1, "call": 1, "digest": None, "behaviour": "ok",
            "started_at": time.monotonic(),
            "finished_at": None,
            "status": None,
            "response_bytes": 0,
        }

    def _write(self, record: RecordedRequest, data: bytes) -> None:
        """Write part of the response body, counted in ``response_bytes`` first (so the
        count is whole by the time the client has the bytes)."""
        record["response_bytes"] += len(data)
        self.wfile.write(data)

    def _send(self, record: RecordedRequest, status: int, data: bytes,
              content_type: str = "application/json",
              extra_headers: Mapping[str, str] | None = None) -> None:
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        record["status"] = status
        record["finished_at"] = time.monotonic()
        self._write(record, data)
        self.wfile.flush()

    def _send_json(self, record: RecordedRequest, status: int, payload: Any,
                   extra_headers: Mapping[str, str] | None = None) -> None:
        self._send(record, status, json.dumps(payload).encode("utf-8"),
                   extra_headers=extra_headers)

    def _send_error(self, record: RecordedRequest, status: int, message: str) -> None:
        headers: dict[str, str] = {}
        if status == 429 or status >= 500:  # the openai client retries: keep it short
            headers = {"Retry-After": "0", "retry-after-ms": self.server.owner.retry_after_ms}
        self._send_json(record, status, _error_payload(status, message), headers)

    def _refuse(self, record: RecordedRequest, status: int, message: str) -> None:
        """Record and answer a request that is not a chat completion we serve."""
        record["behaviour"] = str(status)
        self.server.owner.requests.append(record)
        self._sleep()
        self._send_error(record, status, message)

    def _reset(self, record: RecordedRequest) -> None:
        """Abort the connection: SO_LINGER 0 then close, so the peer gets an RST, no FIN."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        record["finished_at"] = time.monotonic()
        # rfile holds a reference (makefile) to the socket: drop it so close() is real now.
        self.rfile.close()
        sock.close()

    def _sleep(self) -> None:
        latency = self.server.owner.latency_s
        if latency and latency > 0:
            time.sleep(latency)

    def _open_stream(self, record: RecordedRequest) -> None:
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        record["status"] = 200

    # -- methods ------------------------------------------------------------------------------
    def do_GET(self) -> None:
        record = self._record(None)
        if record["path"] != "/v1/models":
            self._refuse(record, 404, f"Unknown path: GET {record['path']}")
            return
        self.server.owner.requests.append(record)
        self._sleep()
        model = {"id": "fake", "object": "model", "created": 0, "owned_by": "colm-graph-tests"}
        self._send_json(record, 200, {"object": "list", "data": [model]})

    def do_POST(self) -> None:
        raw = self._read_body()
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = self._record(None)
            record["raw_body"] = raw
            self._refuse(record, 400, "Request body is not valid JSON.")
            return
        owner = self.server.owner
        record = self._record(body)
        if record["path"] != CHAT:
            self._refuse(record, 404, f"Unknown path: POST {record['path']}")
            return
        if not isinstance(body, dict):
            self._refuse(record, 400, "Request body must be a JSON object.")
            return
        owner._classify(record, raw)
        self._sleep()
        n = body.get("n", 1)
        if n is None:
            n = 1
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            self._send_error(record, 400, f"n must be a positive integer, got {n!r}.")
            return
        status = owner.status_for(body) if owner.status_for is not None else None
        if status is not None and status >= 400:
            record["behaviour"] = str(status)
            self._send_error(record, status, f"Fake error {status} from {type(owner).__name__}.")
            return
        behaviour = record["behaviour"]
        if behaviour == "runaway":
            self._runaway(record, body)
        elif behaviour in ERROR_STATUS:
            status = ERROR_STATUS[behaviour]
            self._send_error(record, status, _INJECTED[status])
        elif behaviour == "reset":
            self._reset(record)
        elif behaviour == "timeout":
            time.sleep(owner.timeout_sleep_s)
            if owner.timeout_then == "answer":
                self._answer(record, body, "ok")
            else:
                self.close_connection = True
                record["finished_at"] = time.monotonic()
        else:
            self._answer(record, body, behaviour)

    def _not_found(self) -> None:
        self._read_body()
        record = self._record(None)
        self._refuse(record, 404, f"Unknown path: {self.command} {record['path']}")

    do_PUT = do_DELETE = do_PATCH = _not_found

    # -- answers ------------------------------------------------------------------------------
    def _head(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        return {"id": self.server.owner._next_id(), "object": kind, "created": int(time.time()),
                "model": body.get("model", "fake"), "system_fingerprint": None}

    def _answer(self, record: RecordedRequest, body: dict[str, Any], behaviour: str) -> None:
        owner = self.server.owner
        try:
            choices, prompt_tokens, completion_tokens = owner._answers(body)
        except Exception as exc:  # a broken responder must fail the test loudly
            record["behaviour"] = "responder-error"
            self._send_error(record, 500, f"{type(owner).__name__} responder raised {exc!r}")
            return
        record["prompt_tokens"], record["completion_tokens"] = prompt_tokens, completion_tokens
        if behaviour == "empty":
            choices = []
        if body.get("stream"):
            self._stream(record, body, choices, _usage(prompt_tokens, completion_tokens),
                         behaviour)
            return
        payload = {**self._head(body, "chat.completion"), "choices": [
            {"index": i, "message": _message(choice), "finish_reason": choice.finish_reason,
             "logprobs": None}
            for i, choice in enumerate(choices)],
            "usage": _usage(prompt_tokens, completion_tokens)}
        data = json.dumps(payload).encode("utf-8")
        if behaviour == "malformed":
            data = b'{"id": "chatcmpl-broken", "object": "chat.completion", choices: [oops'
        elif behaviour == "truncated":
            data = data[: len(data) // 2]
        self._send(record, 200, data)

    def _stream(self, record: RecordedRequest, body: dict[str, Any],
                choices: list[_Choice], usage: dict[str, int], behaviour: str) -> None:
        """SSE answer. Faults here are rough analogues: ``malformed`` sends an event that is
        not JSON, ``truncated`` stops half-way without ``[DONE]``, ``empty`` sends no choice.
        Tool calls follow the content: a head delta (id, name) and argument fragments."""
        pieces = self.server.owner.stream_pieces
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = self._head(body, "chat.completion.chunk")

        def event(payload: dict[str, Any]) -> bytes:
            return f"data: {json.dumps(payload)}\n\n".encode()

        def chunk(index: int, delta: dict[str, Any], finish: str | None) -> bytes:
            out = dict(base, choices=[{"index": index, "delta": delta, "finish_reason": finish,
                                       "logprobs": None}])
            if include_usage:
                out["usage"] = None
            return event(out)

        # (event, pause after it): the pause follows each piece of text or arguments
        events: list[tuple[bytes, bool]] = []
        for i, choice in enumerate(choices):
            role_content = None if choice.tool_calls and not choice.content else ""
            events.append((chunk(i, {"role": "assistant", "content": role_content}, None), False))
            events += [(chunk(i, {"reasoning_content": p}, None), True)
                       for p in _split_for_stream(choice.reasoning or "", pieces)]
            events += [(chunk(i, {"content": p}, None), True)
                       for p in _split_for_stream(choice.content, pieces)]
            for k, (cid, name, args) in enumerate(choice.tool_calls):
                head = {"index": k, "id": cid, "type": "function",
                        "function": {"name": name, "arguments": ""}}
                events.append((chunk(i, {"tool_calls": [head]}, None), False))
                n_args = max(2, pieces) if len(args) > 8 else 1
                events += [(chunk(i, {"tool_calls": [{"index": k, "function": {"arguments": p}}]},
                                  None), True)
                           for p in _split_for_stream(args, n_args)]
            events.append((chunk(i, {}, choice.finish_reason), False))
        if include_usage:
            events.append((event(dict(base, choices=[], usage=usage)), False))
        if behaviour == "malformed":
            events.insert(1, (b"data: {not json\n\n", False))
        done = behaviour != "truncated"
        if not done:
            events = events[: len(events) // 2]
        self._open_stream(record)
        delay = self.server.owner.stream_delay_s
        record["client_closed"] = False
        try:
            for e, pause in events:
                self._write(record, e)
                self.wfile.flush()
                if delay and pause:
                    time.sleep(delay)
            record["finished_at"] = time.monotonic()
            if done:
                self._write(record, b"data: [DONE]\n\n")
                self.wfile.flush()
        except OSError:  # the client closed the request mid-stream
            record["client_closed"] = True
            record["finished_at"] = time.monotonic()

    def _runaway(self, record: RecordedRequest, body: dict[str, Any]) -> None:
        """A provider that ignores ``max_tokens`` and writes on (see the module doc)."""
        owner = self.server.owner
        n, piece = owner.runaway_chunks, owner.runaway_piece
        completion = n * max(1, estimate_tokens(len(piece)))
        prompt = estimate_tokens(count_prompt_chars(body.get("messages") or []))
        record["prompt_tokens"], record["completion_tokens"] = prompt, completion
        record["chunks_sent"], record["client_closed"] = 0, False
        usage = owner.runaway_usage or {"prompt_tokens": prompt, "completion_tokens": completion}
        usage = {**usage, "total_tokens": sum(v for v in usage.values()
                                              if isinstance(v, int))}
        base = self._head(body, "chat.completion.chunk")
        if not body.get("stream"):
            payload = {**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": piece * n},
                 "finish_reason": "stop", "logprobs": None}]}
            record["chunks_sent"] = n
            self._send_json(record, 200, payload)
            return
        self._open_stream(record)

        def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            chunk = dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": finish,
                                         "logprobs": None}], **extra)
            return f"data: {json.dumps(chunk)}\n\n".encode()

        try:
            self._write(record, event({"role": "assistant", "content": ""}))
            for _ in range(n):
                self._write(record, event({"content": piece}))
                self.wfile.flush()
                record["chunks_sent"] += 1
                if owner.runaway_delay_s:
                    time.sleep(owner.runaway_delay_s)
            self._write(record, event({}, "stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                last = dict(base, choices=[], usage=usage)
                self._write(record, f"data: {json.dumps(last)}\n\n".encode())
            self._write(record, b"data: [DONE]\n\n")
            self.wfile.flush()
        except OSError:  # the client closed the request: what a stopped reader looks like
            record["client_closed"] = True
        record["finished_at"] = time.monotonic()


class FakeOpenAIServer:
    """An OpenAI-compatible chat-completions server on ``127.0.0.1`` for tests.

    Args:
        responder: ``responder(body) -> str | dict``; see :data:`Responder`. Called
            once per choice (``n`` times when the request has ``n > 1``), from a
            server thread. Defaults to :func:`default_responder`.
        latency_s: seconds to sleep before answering each request (any path).
        status_for: optional ``status_for(body) -> int | None``; an int >= 400 makes
            the server answer with that status and an OpenAI-shaped error
            ``{"error": {"message", "type", "param", "code"}}`` without calling the
            responder. 429 and 5xx answers carry ``retry-after-ms`` (``retry_after_ms``);
            note the ``openai`` client retries those (twice by default) -- pass
            ``max_retries=0`` to the client to see the error at once.
        stream_pieces: the number of content chunks a streamed answer is cut into (and of
            argument fragments of a streamed tool call, at least 2 past 8 characters).
        stream_delay_s: the pause after each streamed content chunk or argument fragment (a
            model writing its reply over time; ``finished_at`` is when the last event was
            written).
        schedule, after, random_faults, seed, behaviour_for: which fault each chat request
            gets (see the module doc); by default none.
        timeout_sleep_s: how long ``timeout`` stalls before its ``timeout_then`` action;
            make it longer than the client's timeout.
        timeout_then: ``"drop"`` (close without a response) or ``"answer"`` (answer ``ok``
            to a client that has gone).
        retry_after_ms: the ``retry-after-ms`` header of 429/5xx answers (the openai client
            prefers it over ``Retry-After``; ``"10"`` keeps its back-off short).
        tag_pattern: regex whose first group, searched in the messages' text, is the
            request's ``tag``.
        runaway_chunks, runaway_piece, runaway_delay_s, runaway_usage: the ``runaway``
            behaviour's stream: how many chunks of which text, the pause after each, and
            the usage it reports at the end (default: the true count).
        port: the port to listen on (``0``: a free one). A test can keep a port with
            nothing listening (connection refused: an endpoint that is down) and start the
            server on it later (the endpoint comes back).

    Token usage, unless the responder's dict gives it: ``prompt_tokens`` =
    ``max(1, chars // 4)`` over the text of all request messages (string contents
    and ``text`` blocks; images are not counted), ``completion_tokens`` = the sum
    over choices of ``max(1, len(content) // 4)`` (``content`` plus any
    ``reasoning_content`` plus the tool calls' names and arguments).

    ``responder``, ``latency_s``, ``status_for``, ``random_faults``, ``after`` and the
    timeout settings are plain attributes and may be changed while the server runs
    (:meth:`set_schedule` also restarts the per-model counters). The server starts in
    ``__init__``; use it as a context manager or call :meth:`close`.
    """

    id_prefix = "chatcmpl-fake-"

    def __init__(
        self,
        responder: Responder | None = None,
        latency_s: float = 0.0,
        *,
        status_for: StatusFor | None = None,
        stream_pieces: int = 3,
        stream_delay_s: float = 0.0,
        schedule: Mapping[str, Sequence[str]] | None = None,
        after: str | Mapping[str, str] = "ok",
        random_faults: Mapping[str, Mapping[str, float]] | None = None,
        seed: int = 0,
        behaviour_for: BehaviourFor | None = None,
        timeout_sleep_s: float = 3.0,
        timeout_then: str = "drop",
        retry_after_ms: str = "10",
        tag_pattern: str = r"\[tag:([A-Za-z0-9_.-]+)\]",
        runaway_chunks: int = 20_000,
        runaway_piece: str = "and so on, ",
        runaway_delay_s: float = 0.0005,
        runaway_usage: Mapping[str, int] | None = None,
        port: int = 0,
    ) -> None:
        if timeout_then not in ("drop", "answer"):
            raise ValueError(f"timeout_then: expected 'drop' or 'answer', got {timeout_then!r}")
        self.responder: Responder = responder or default_responder
        self.latency_s = latency_s
        self.status_for = status_for
        self.stream_pieces = stream_pieces
        self.stream_delay_s = stream_delay_s
        self.after = after
        self.random_faults = dict(random_faults or {})
        for model, table in self.random_faults.items():
            for name, p in table.items():
                _check_behaviour(name, f"random_faults[{model!r}]")
                if not 0 <= p <= 1:
                    raise ValueError(f"random_faults[{model!r}][{name!r}]: probability {p}")
            if sum(table.values()) > 1 + 1e-9:
                raise ValueError(f"random_faults[{model!r}]: probabilities add up to more than 1")
        self.seed = seed
        self.behaviour_for = behaviour_for
        self.timeout_sleep_s = timeout_sleep_s
        self.timeout_then = timeout_then
        self.retry_after_ms = retry_after_ms
        self.tag_re = re.compile(tag_pattern)
        self.runaway_chunks, self.runaway_piece = runaway_chunks, runaway_piece
        self.runaway_delay_s, self.runaway_usage = runaway_delay_s, runaway_usage
        self.requests = RequestLog()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._call_ids = itertools.count(1)
        self._schedule: dict[str, list[str]] = {}
        self._cursor: dict[str, int] = {}
        self._attempts: dict[tuple[str, str], int] = {}
        self._calls: dict[tuple[str, str], int] = {}
        self.set_schedule(schedule or {})
        self._closed = False
        self._httpd = _Server(self, port)
        host, port = self._httpd.server_address[:2]
        self.host, self.port = str(host), int(port)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"{type(self).__name__}:{self.port}", daemon=True)
        self._thread.start()

    # -- public -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no ``/v1``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, the value for ``ChatOpenAI(base_url=...)``."""
        return f"{self.url}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded ``/v1/chat/completions`` requests, oldest first."""
        return self.requests.for_path(CHAT)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent recorded request (``IndexError`` if there is none)."""
        return self.requests.snapshot()[-1]

    def set_schedule(self, schedule: Mapping[str, Sequence[str]]) -> None:
        """Replace the schedule and restart every model's position in it."""
        checked = {m: [_check_behaviour(b, f"schedule[{m!r}]") for b in seq]
                   for m, seq in schedule.items()}
        with self._lock:
            self._schedule = checked
            self._cursor = {}

    def calls(self, model: str | None = None, *, tag: str | None = None
              ) -> list[list[RecordedRequest]]:
        """Matching chat requests grouped into calls (``(model, digest, call)``), each call's
        attempts in arrival order; calls ordered by their first attempt."""
        return group_calls(self.requests_for(model, tag=tag))

    def requests_for(self, model: str | None = None, *, tag: str | None = None,
                     behaviour: str | None = None) -> list[RecordedRequest]:
        """Chat requests with a model, filtered by model id, tag and behaviour (None: any)."""
        return [r for r in self.chat_requests if r["model"] is not None
                and (model is None or r["model"] == model)
                and (tag is None or r["tag"] == tag)
                and (behaviour is None or r["behaviour"] == behaviour)]

    def behaviours(self, model: str | None = None, *, tag: str | None = None) -> list[str]:
        """The behaviours applied to the matching chat requests, in arrival order."""
        return [r["behaviour"] for r in self.requests_for(model, tag=tag)]

    def close(self) -> None:
        """Stop serving and release the port (a stalled ``timeout`` thread is not waited
        for). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running"
        return (f"<{type(self).__name__} {self.base_url} {state},"
                f" {len(self.requests)} requests>")

    # -- internals used by the handler ----------------------------------------------------------
    def _next_id(self) -> str:
        with self._lock:
            return f"{self.id_prefix}{next(self._ids)}"

    def _next_call_id(self) -> str:
        with self._lock:
            return f"call_{next(self._call_ids)}"

    def _pick(self, record: RecordedRequest, model: str, digest: str, attempt: int) -> str:
        """The request's behaviour: the hook, the schedule, random mode, then ``after``
        (called under the lock)."""
        behaviour = self.behaviour_for(record) if self.behaviour_for is not None else None
        if behaviour is None:
            seq = self._schedule.get(model, self._schedule.get("*"))
            slot = model if model in self._schedule else "*"
            if seq is not None:
                n = self._cursor.get(slot, 0)
                self._cursor[slot] = n + 1
                if n < len(seq):
                    behaviour = seq[n]
        if behaviour is None:
            table = self.random_faults.get(model, self.random_faults.get("*"))
            if table:
                rng = random.Random(f"{self.seed}:{model}:{digest}:{record['call']}:{attempt}")
                x, acc = rng.random(), 0.0
                behaviour = "ok"
                for name, p in table.items():
                    acc += p
                    if x < acc:
                        behaviour = name
                        break
        if behaviour is None:
            after = self.after
            behaviour = after if isinstance(after, str) else after.get(model, after.get("*", "ok"))
        return _check_behaviour(behaviour, "behaviour")

    def _classify(self, record: RecordedRequest, raw: bytes) -> None:
        """Fill in ``tag``, ``attempt``, ``call``, ``digest`` and ``behaviour`` and append the
        record (one lock, so the schedule is consumed in the order the records appear)."""
        model = str(record["model"])
        found = self.tag_re.search(message_text(record["body"]))
        record["tag"] = found.group(1) if found else None
        digest = hashlib.sha256(raw).hexdigest()
        retries = record["headers"].get("x-stainless-retry-count", "")
        with self._lock:
            key = (model, digest)
            if retries.isdigit():  # the openai client says which attempt this is
                attempt = int(retries) + 1
                if attempt == 1:
                    self._calls[key] = self._calls.get(key, 0) + 1
            else:  # count the times this body was sent
                attempt = self._attempts[key] = self._attempts.get(key, 0) + 1
                self._calls.setdefault(key, 1)
            record["attempt"], record["call"] = attempt, self._calls.get(key, 1)
            record["digest"] = digest
            record["behaviour"] = self._pick(record, model, digest, attempt)
            self.requests.append(record)

    def _answers(self, body: dict[str, Any]) -> tuple[list[_Choice], int, int]:
        """Call the responder for each choice; return (choices, prompt, completion)."""
        prompt_tokens: int | None = None
        completion_tokens = 0
        choices: list[_Choice] = []
        for _ in range(int(body.get("n") or 1)):
            result = self.responder(body)
            if not isinstance(result, dict):
                result = {"content": result}
            content = "" if result.get("content") is None else str(result["content"])
            calls = tuple((cid or self._next_call_id(), name, args)
                          for cid, name, args in _tool_call_entries(result.get("tool_calls")))
            finish = str(result.get("finish_reason") or ("tool_calls" if calls else "stop"))
            reasoning = None if result.get("reasoning_content") is None \
                else str(result["reasoning_content"])
            if prompt_tokens is None and result.get("prompt_tokens") is not None:
                prompt_tokens = int(result["prompt_tokens"])
            if result.get("completion_tokens") is not None:
                completion_tokens += int(result["completion_tokens"])
            else:
                written = len(content) + len(reasoning or "") + sum(
                    len(name) + len(args) for _, name, args in calls)
                completion_tokens += estimate_tokens(written)
            choices.append(_Choice(content, finish, reasoning, calls))
        if prompt_tokens is None:
            prompt_tokens = estimate_tokens(count_prompt_chars(body.get("messages") or []))
        return choices, prompt_tokens, completion_tokens


class FaultServer(FakeOpenAIServer):
    """:class:`FakeOpenAIServer` as a fault injector: ``schedule`` first, one content chunk
    per streamed choice, ids ``chatcmpl-fault-N``; see the module doc."""

    id_prefix = "chatcmpl-fault-"

    def __init__(self, schedule: Mapping[str, Sequence[str]] | None = None, *,
                 stream_pieces: int = 1, **kwargs: Any) -> None:
        super().__init__(schedule=schedule, stream_pieces=stream_pieces, **kwargs)
