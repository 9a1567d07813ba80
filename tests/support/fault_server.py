"""A fault-injecting, OpenAI-compatible chat-completions server on 127.0.0.1 (stdlib only).

It stands beside :class:`tests.support.openai_server.FakeOpenAIServer` and answers the same
way when nothing goes wrong, but each ``POST /v1/chat/completions`` first gets a *behaviour*::

    schedule = {"m-big": ["429", "503", "ok"]}         # successive requests for model m-big
    with FaultServer(schedule) as srv:                 # every other request: "ok"
        llm = ChatOpenAI(base_url=srv.base_url, api_key="sk-test", model="m-big")
        llm.invoke("hi")                               # 3 requests on the wire, one answer
        srv.behaviours("m-big")                        # ["429", "503", "ok"]

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
``timeout``), ``prompt_tokens`` / ``completion_tokens`` (the usage of the completion the server
built, for every behaviour that builds one: ``ok``, ``malformed``, ``truncated``, ``empty``, an
answered ``timeout``), ``body``, ``headers`` and ``path``. Other paths are recorded too, with
``model=None`` and ``behaviour="ok"`` (``GET /v1/models``) or a 404.

``responder`` works as for ``FakeOpenAIServer``: ``responder(body) -> str | dict`` with
optional ``prompt_tokens`` / ``completion_tokens`` / ``finish_reason`` in the dict. Nothing is
printed or logged; errors inside handler threads are kept in :attr:`FaultServer.errors`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.openai_server import (
    RecordedRequest,
    RequestLog,
    Responder,
    count_prompt_chars,
    default_responder,
    estimate_tokens,
)

__all__ = [
    "BEHAVIOURS",
    "CLIENT_RETRIES",
    "ERROR_STATUS",
    "FaultServer",
    "group_calls",
    "message_text",
]

#: Every behaviour the server knows.
BEHAVIOURS = ("ok", "429", "500", "502", "503", "timeout", "reset", "malformed", "truncated",
              "empty", "runaway")
#: Behaviours the ``openai`` client retries by itself (``max_retries``); the others reach
#: the caller on the first attempt.
CLIENT_RETRIES = frozenset({"429", "500", "502", "503", "timeout", "reset"})
#: Behaviours answered with an HTTP error status.
ERROR_STATUS = {"429": 429, "500": 500, "502": 502, "503": 503}

_ERROR_KIND = {
    429: ("rate_limit_error", "rate_limit_exceeded", "Rate limit reached (injected fault)."),
    500: ("server_error", "server_error", "The server had an error (injected fault)."),
    502: ("server_error", "bad_gateway", "Bad gateway (injected fault)."),
    503: ("server_error", "service_unavailable", "The engine is overloaded (injected fault)."),
}

BehaviourFor = Callable[[RecordedRequest], str | None]


def message_text(body: Mapping[str, Any] | None) -> str:
    """All text of a request's messages (string contents and text blocks), joined by newlines."""
    parts: list[str] = []
    for message in (body or {}).get("messages") or ():
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(b.get("text", "")) for b in content
                         if isinstance(b, Mapping) and b.get("type") == "text")
    return "\n".join(parts)


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


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, owner: FaultServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep handler errors (a client that went away mid-answer) instead of printing."""
        import sys

        self.owner.errors.append(repr(sys.exc_info()[1]))


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "FaultOpenAI/1.0"
    sys_version = ""
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request logging."""

    # -- plumbing ---------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _new_record(self, body: Any) -> RecordedRequest:
        return {
            "method": self.command,
            "path": self.path.split("?", 1)[0],
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "model": body.get("model") if isinstance(body, dict) else None,
            "tag": None,
            "attempt": 1,
            "call": 1,
            "digest": None,
            "behaviour": "ok",
            "started_at": time.monotonic(),
            "finished_at": None,
            "status": None,
        }

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
        self.wfile.write(data)
        self.wfile.flush()

    def _send_json(self, record: RecordedRequest, status: int, payload: Any,
                   extra_headers: Mapping[str, str] | None = None) -> None:
        self._send(record, status, json.dumps(payload).encode("utf-8"),
                   extra_headers=extra_headers)

    def _send_status(self, record: RecordedRequest, status: int, message: str | None = None
                     ) -> None:
        err_type, code, default = _ERROR_KIND.get(
            status, ("invalid_request_error", "not_found" if status == 404 else "error",
                     "Error."))
        headers: dict[str, str] = {}
        if status == 429 or status >= 500:
            headers = {"Retry-After": "0", "retry-after-ms": self.server.owner.retry_after_ms}
        payload = {"error": {"message": message or default, "type": err_type, "param": None,
                             "code": code}}
        self._send_json(record, status, payload, headers)

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

    # -- methods ------------------------------------------------------------------------------
    def do_GET(self) -> None:
        record = self._new_record(None)
        self.server.owner.requests.append(record)
        if record["path"] == "/v1/models":
            data = [{"id": "fake", "object": "model", "created": 0, "owned_by": "tests"}]
            self._send_json(record, 200, {"object": "list", "data": data})
        else:
            record["behaviour"] = "404"
            self._send_status(record, 404, f"Unknown path: GET {record['path']}")

    def do_POST(self) -> None:
        raw = self._read_body()
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        owner = self.server.owner
        record = self._new_record(body)
        if record["path"] != "/v1/chat/completions" or not isinstance(body, dict):
            owner.requests.append(record)
            record["behaviour"] = "404" if record["path"] != "/v1/chat/completions" else "400"
            status = 404 if record["behaviour"] == "404" else 400
            self._send_status(record, status, f"Cannot serve {self.command} {record['path']}")
            return
        owner._classify(record, raw)
        behaviour = record["behaviour"]
        if behaviour == "runaway":
            self._runaway(record, body)
        elif behaviour in ERROR_STATUS:
            self._send_status(record, ERROR_STATUS[behaviour])
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
        record = self._new_record(None)
        record["behaviour"] = "404"
        self.server.owner.requests.append(record)
        self._send_status(record, 404, f"Unknown path: {self.command} {record['path']}")

    do_PUT = do_DELETE = do_PATCH = _not_found

    # -- answers --------------------------------------------------------------------------------
    def _answer(self, record: RecordedRequest, body: dict[str, Any], behaviour: str) -> None:
        owner = self.server.owner
        try:
            choices, prompt_tokens, completion_tokens = owner._answers(body)
        except Exception as exc:  # a broken responder must fail the test loudly
            record["behaviour"] = "responder-error"
            self._send_status(record, 500, f"FaultServer responder raised {exc!r}")
            return
        record["prompt_tokens"], record["completion_tokens"] = prompt_tokens, completion_tokens
        if behaviour == "empty":
            choices = []
        if body.get("stream"):
            self._stream(record, body, choices, prompt_tokens, completion_tokens, behaviour)
            return
        payload = {
            "id": owner._next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "system_fingerprint": None,
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": content},
                 "finish_reason": finish, "logprobs": None}
                for i, (content, finish) in enumerate(choices)
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }
        data = json.dumps(payload).encode("utf-8")
        if behaviour == "malformed":
            data = b'{"id": "chatcmpl-broken", "object": "chat.completion", choices: [oops'
        elif behaviour == "truncated":
            data = data[: len(data) // 2]
        self._send(record, 200, data)

    def _stream(self, record: RecordedRequest, body: dict[str, Any],
                choices: list[tuple[str, str]], prompt_tokens: int, completion_tokens: int,
                behaviour: str) -> None:
        """SSE answer. Faults here are rough analogues: ``malformed`` sends an event that is
        not JSON, ``truncated`` stops half-way without ``[DONE]``, ``empty`` sends no choice."""
        owner = self.server.owner
        base = {"id": owner._next_id(), "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model", "fake"),
                "system_fingerprint": None}
        events: list[bytes] = []
        for i, (content, finish) in enumerate(choices):
            deltas: list[tuple[dict[str, Any], str | None]] = [
                ({"role": "assistant", "content": ""}, None), ({"content": content}, None),
                ({}, finish)]
            for delta, fin in deltas:
                chunk = dict(base, choices=[{"index": i, "delta": delta, "finish_reason": fin,
                                             "logprobs": None}])
                events.append(f"data: {json.dumps(chunk)}\n\n".encode())
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "total_tokens": prompt_tokens + completion_tokens}
            events.append(f"data: {json.dumps(dict(base, choices=[], usage=usage))}\n\n".encode())
        if behaviour == "malformed":
            events.insert(1, b"data: {not json\n\n")
        done = behaviour != "truncated"
        if not done:
            events = events[: len(events) // 2]
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        record["status"] = 200
        for event in events:
            self.wfile.write(event)
            self.wfile.flush()
        record["finished_at"] = time.monotonic()
        if done:
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()


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
        base = {"id": owner._next_id(), "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model", "fake"),
                "system_fingerprint": None}
        if not body.get("stream"):
            payload = {**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": piece * n},
                 "finish_reason": "stop", "logprobs": None}]}
            record["chunks_sent"] = n
            self._send_json(record, 200, payload)
            return
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Connection", "close")
        self.end_headers()
        record["status"] = 200

        def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            chunk = dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": finish,
                                         "logprobs": None}], **extra)
            return f"data: {json.dumps(chunk)}\n\n".encode()

        try:
            self.wfile.write(event({"role": "assistant", "content": ""}))
            for _ in range(n):
                self.wfile.write(event({"content": piece}))
                self.wfile.flush()
                record["chunks_sent"] += 1
                if owner.runaway_delay_s:
                    time.sleep(owner.runaway_delay_s)
            self.wfile.write(event({}, "stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                last = dict(base, choices=[], usage=usage)
                self.wfile.write(f"data: {json.dumps(last)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except OSError:  # the client closed the request: what a stopped reader looks like
            record["client_closed"] = True
        record["finished_at"] = time.monotonic()


class FaultServer:
    """An OpenAI-compatible server on ``127.0.0.1`` that injects faults; see the module doc.

    Args:
        schedule: model id -> list of behaviours for its successive requests (``"*"``: any
            model not listed).
        responder: ``responder(body) -> str | dict`` for answered requests (default
            ``"Answer: 42"``).
        after: behaviour once a model's schedule is used up and no random mode applies: a
            name, or a mapping model -> name (``"*"`` for the rest; default ``"ok"``).
        random_faults: model id (or ``"*"``) -> {behaviour: probability}; ``ok`` takes what
            is left. Applies to requests not covered by a schedule entry.
        seed: seed of the random mode.
        behaviour_for: optional hook ``(record) -> behaviour | None`` tried first; the record
            already has ``model``, ``tag``, ``attempt``, ``call`` and ``body``.
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

    The server starts in ``__init__``; use it as a context manager or call :meth:`close`.
    ``schedule``, ``random_faults``, ``after``, ``responder`` and the timeout settings may be
    changed while it runs (:meth:`set_schedule` also restarts the per-model counters).
    """

    def __init__(
        self,
        schedule: Mapping[str, Sequence[str]] | None = None,
        *,
        responder: Responder | None = None,
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
    ) -> None:
        if timeout_then not in ("drop", "answer"):
            raise ValueError(f"timeout_then: expected 'drop' or 'answer', got {timeout_then!r}")
        self.responder: Responder = responder or default_responder
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
        self._schedule: dict[str, list[str]] = {}
        self._cursor: dict[str, int] = {}
        self._attempts: dict[tuple[str, str], int] = {}
        self._calls: dict[tuple[str, str], int] = {}
        self.set_schedule(schedule or {})
        self._closed = False
        self._httpd = _HTTPServer(self)
        self.host, self.port = self._httpd.server_address[:2]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"FaultServer:{self.port}", daemon=True)
        self._thread.start()

    # -- public ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, the value for ``base_url``."""
        return f"{self.url}/v1"

    def set_schedule(self, schedule: Mapping[str, Sequence[str]]) -> None:
        """Replace the schedule and restart every model's position in it."""
        checked = {m: [_check_behaviour(b, f"schedule[{m!r}]") for b in seq]
                   for m, seq in schedule.items()}
        with self._lock:
            self._schedule = checked
            self._cursor = {}

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded chat-completion requests, in arrival order."""
        return [r for r in self.requests.snapshot() if r["path"] == "/v1/chat/completions"
                and r["model"] is not None]

    def calls(self, model: str | None = None, *, tag: str | None = None
              ) -> list[list[RecordedRequest]]:
        """Matching chat requests grouped into calls (``(model, digest, call)``), each call's
        attempts in arrival order; calls ordered by their first attempt."""
        return group_calls(self.requests_for(model, tag=tag))

    def requests_for(self, model: str | None = None, *, tag: str | None = None,
                     behaviour: str | None = None) -> list[RecordedRequest]:
        """Chat requests filtered by model id, tag and behaviour (None: any)."""
        return [r for r in self.chat_requests
                if (model is None or r["model"] == model)
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

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running"
        return f"<FaultServer {self.base_url} {state}, {len(self.requests)} requests>"

    # -- internals used by the handler ---------------------------------------------------------
    def _next_id(self) -> str:
        with self._lock:
            return f"chatcmpl-fault-{next(self._ids)}"

    def _classify(self, record: RecordedRequest, raw: bytes) -> None:
        """Fill in ``tag``, ``attempt`` and ``behaviour`` and append the record (one lock,
        so the schedule is consumed in the order the records appear)."""
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
                    rng = random.Random(f"{self.seed}:{model}:{digest}:{record['call']}:"
                                        f"{attempt}")
                    x, acc = rng.random(), 0.0
                    for name, p in table.items():
                        acc += p
                        if x < acc:
                            behaviour = name
                            break
                    else:
                        behaviour = "ok"
            if behaviour is None:
                after = self.after
                behaviour = (after if isinstance(after, str)
                             else after.get(model, after.get("*", "ok")))
            record["behaviour"] = _check_behaviour(behaviour, "behaviour")
            self.requests.append(record)

    def _answers(self, body: dict[str, Any]) -> tuple[list[tuple[str, str]], int, int]:
        n = body.get("n") or 1
        prompt_tokens: int | None = None
        completion_tokens = 0
        choices: list[tuple[str, str]] = []
        for _ in range(int(n)):
            result = self.responder(body)
            if isinstance(result, dict):
                content = str(result.get("content", ""))
                finish = str(result.get("finish_reason") or "stop")
                if prompt_tokens is None and result.get("prompt_tokens") is not None:
                    prompt_tokens = int(result["prompt_tokens"])
                if result.get("completion_tokens") is not None:
                    completion_tokens += int(result["completion_tokens"])
                else:
                    completion_tokens += estimate_tokens(len(content))
            else:
                content, finish = str(result), "stop"
                completion_tokens += estimate_tokens(len(content))
            choices.append((content, finish))
        if prompt_tokens is None:
            prompt_tokens = estimate_tokens(count_prompt_chars(body.get("messages") or []))
        return choices, prompt_tokens, completion_tokens
