"""A local, stdlib-only, OpenAI-compatible HTTP server for tests.

It speaks just enough of the Chat Completions API for the real ``openai`` /
``langchain_openai`` clients::

    with FakeOpenAIServer(responder=lambda body: "Answer: 7") as srv:
        llm = ChatOpenAI(base_url=srv.base_url, api_key="sk-test", model="fake")
        llm.invoke("hi").content            # "Answer: 7"
        srv.requests[-1]["body"]["messages"]  # what the client sent

Endpoints (anything else is a 404 with an OpenAI-shaped error body):

* ``POST /v1/chat/completions`` -- JSON answer, or Server-Sent Events when the
  body has ``"stream": true``.
* ``GET /v1/models`` -- one model, ``fake``.

The server listens on ``127.0.0.1`` on a free port and serves each connection in
its own daemon thread, so concurrent requests overlap (useful with
``latency_s``). Every response carries ``Connection: close``; no keep-alive
connection outlives a request, so :meth:`FakeOpenAIServer.close` never waits on
idle clients. Nothing is printed or logged.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "DEFAULT_ANSWER",
    "FakeOpenAIServer",
    "RecordedRequest",
    "RequestLog",
    "Responder",
    "StatusFor",
    "count_prompt_chars",
    "default_responder",
    "estimate_tokens",
]

DEFAULT_ANSWER = "Answer: 42"

#: A responder receives the parsed request body and returns the assistant text, or
#: a dict ``{"content": str, "prompt_tokens": int, "completion_tokens": int}``
#: (the token counts are optional; ``"finish_reason"`` may override ``"stop"``; a
#: ``"reasoning_content"`` string is sent beside ``content`` in the message, and in
#: the streamed deltas before the content, the way vLLM and the DeepSeek API return
#: a reasoning model's thinking).
Responder = Callable[[dict[str, Any]], str | dict[str, Any]]
#: A status hook receives the parsed request body; an int >= 400 makes the server
#: answer with that status and an OpenAI-shaped error instead of calling the
#: responder.
StatusFor = Callable[[dict[str, Any]], int | None]
#: One recorded request: ``method``, ``path`` (without query string), ``headers``
#: (lower-cased names), ``body`` (parsed JSON, or None), ``started_at`` and
#: ``finished_at`` (``time.monotonic()``; ``finished_at`` is set just before the
#: last bytes of the response are written, so it is set by the time the client
#: has the whole response), ``status`` (the HTTP status sent).
RecordedRequest = dict[str, Any]

_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("not_found_error", "not_found"),
    409: ("conflict_error", "conflict"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def default_responder(body: dict[str, Any]) -> str:
    """Answer every request with :data:`DEFAULT_ANSWER` (``"Answer: 42"``)."""
    return DEFAULT_ANSWER


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
        return "".join(parts)
    return ""


def count_prompt_chars(messages: Iterable[Any]) -> int:
    """Total characters of the text in ``messages`` (string or text-block contents)."""
    total = 0
    for message in messages or ():
        if isinstance(message, dict):
            total += len(_text_of(message.get("content")))
    return total


def estimate_tokens(chars: int) -> int:
    """The server's token estimate for ``chars`` characters: ``max(1, chars // 4)``."""
    return max(1, chars // 4)


def _split_for_stream(text: str, pieces: int) -> list[str]:
    """Split ``text`` into at most ``pieces`` non-empty consecutive parts."""
    if not text:
        return []
    size = max(1, -(-len(text) // max(1, pieces)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _message(content: str, reasoning: str | None) -> dict[str, Any]:
    """The ``message`` of a non-streamed choice; ``reasoning_content`` only when given."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return message


def _error_payload(status: int, message: str) -> dict[str, Any]:
    err_type, code = _ERROR_TYPES.get(
        status, ("server_error", "server_error") if status >= 500 else ("api_error", "error")
    )
    return {"error": {"message": message, "type": err_type, "param": None, "code": code}}


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
    request_queue_size = 128  # bursts of concurrent clients (the default 5 resets some)
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, owner: FakeOpenAIServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"
    sys_version = ""
    timeout = 60  # seconds a connection may sit idle before its thread gives up

    # -- plumbing ---------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request logging to stderr."""

    def _record(self, body: Any) -> RecordedRequest:
        record: RecordedRequest = {
            "method": self.command,
            "path": self.path.split("?", 1)[0],
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "started_at": time.monotonic(),
            "finished_at": None,
            "status": None,
        }
        self.server.owner.requests.append(record)
        return record

    def _read_body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(
        self,
        record: RecordedRequest | None,
        status: int,
        payload: Any,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if record is not None:
            record["status"] = status
            record["finished_at"] = time.monotonic()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_error(self, record: RecordedRequest | None, status: int, message: str) -> None:
        headers = {}
        if status == 429 or status >= 500:
            # The openai client retries these; keep its back-off short in tests.
            headers["retry-after-ms"] = "10"
        self._send_json(record, status, _error_payload(status, message), headers)

    def _sleep(self) -> None:
        latency = self.server.owner.latency_s
        if latency and latency > 0:
            time.sleep(latency)

    # -- methods ----------------------------------------------------------------

    def do_GET(self) -> None:
        record = self._record(None)
        self._sleep()
        if record["path"] == "/v1/models":
            model = {"id": "fake", "object": "model", "created": 0, "owned_by": "colm-graph-tests"}
            self._send_json(record, 200, {"object": "list", "data": [model]})
        else:
            self._send_error(record, 404, f"Unknown path: GET {record['path']}")

    def do_POST(self) -> None:
        raw = self._read_body()
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = self._record(None)
            record["raw_body"] = raw
            self._sleep()
            self._send_error(record, 400, "Request body is not valid JSON.")
            return
        record = self._record(body)
        self._sleep()
        if record["path"] != "/v1/chat/completions":
            self._send_error(record, 404, f"Unknown path: POST {record['path']}")
            return
        if not isinstance(body, dict):
            self._send_error(record, 400, "Request body must be a JSON object.")
            return
        n = body.get("n", 1)
        if n is None:
            n = 1
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            self._send_error(record, 400, f"n must be a positive integer, got {n!r}.")
            return
        owner = self.server.owner
        try:
            status = owner.status_for(body) if owner.status_for is not None else None
            if status is not None and status >= 400:
                self._send_error(record, status, f"Fake error {status} from FakeOpenAIServer.")
                return
            choices, prompt_tokens, completion_tokens = owner._answers(body)
        except Exception as exc:  # a broken responder should fail the test, loudly
            self._send_error(record, 500, f"FakeOpenAIServer responder raised {exc!r}")
            return
        if body.get("stream"):
            self._stream(record, body, choices, prompt_tokens, completion_tokens)
        else:
            self._complete(record, body, choices, prompt_tokens, completion_tokens)

    def _not_found(self) -> None:
        self._read_body()
        record = self._record(None)
        self._sleep()
        self._send_error(record, 404, f"Unknown path: {self.command} {record['path']}")

    do_PUT = do_DELETE = do_PATCH = _not_found

    # -- chat completions -------------------------------------------------------

    def _complete(
        self,
        record: RecordedRequest,
        body: dict[str, Any],
        choices: list[tuple[str, str, str | None]],
        prompt_tokens: int,
        completion_tokens: int,
    ) -> None:
        payload = {
            "id": self.server.owner._next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "system_fingerprint": None,
            "choices": [
                {
                    "index": i,
                    "message": _message(content, reasoning),
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
                for i, (content, finish_reason, reasoning) in enumerate(choices)
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        self._send_json(record, 200, payload)

    def _stream(
        self,
        record: RecordedRequest,
        body: dict[str, Any],
        choices: list[tuple[str, str, str | None]],
        prompt_tokens: int,
        completion_tokens: int,
    ) -> None:
        owner = self.server.owner
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {
            "id": owner._next_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "system_fingerprint": None,
        }

        def chunk(index: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            out = dict(base)
            out["choices"] = [
                {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
            ]
            if include_usage:
                out["usage"] = None
            return out

        events: list[dict[str, Any]] = []
        for i, (content, finish_reason, reasoning) in enumerate(choices):
            events.append(chunk(i, {"role": "assistant", "content": ""}, None))
            for piece in _split_for_stream(reasoning or "", owner.stream_pieces):
                events.append(chunk(i, {"reasoning_content": piece}, None))
            for piece in _split_for_stream(content, owner.stream_pieces):
                events.append(chunk(i, {"content": piece}, None))
            events.append(chunk(i, {}, finish_reason))
        if include_usage:
            usage_chunk = dict(base)
            usage_chunk["choices"] = []
            usage_chunk["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            events.append(usage_chunk)

        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        record["status"] = 200
        for event in events:
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        record["finished_at"] = time.monotonic()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


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
            responder. 429 and 5xx answers carry ``retry-after-ms: 10``; note the
            ``openai`` client retries those (twice by default) -- pass
            ``max_retries=0`` to the client to see the error at once.
        stream_pieces: the number of content chunks a streamed answer is cut into.

    Token usage, unless the responder's dict gives it: ``prompt_tokens`` =
    ``max(1, chars // 4)`` over the text of all request messages (string contents
    and ``text`` blocks; images are not counted), ``completion_tokens`` = the sum
    over choices of ``max(1, len(content) // 4)`` (``content`` plus any
    ``reasoning_content``).

    ``responder``, ``latency_s`` and ``status_for`` are plain attributes and may be
    changed while the server runs. The server starts in ``__init__``; use it as a
    context manager or call :meth:`close`.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        latency_s: float = 0.0,
        *,
        status_for: StatusFor | None = None,
        stream_pieces: int = 3,
    ) -> None:
        self.responder: Responder = responder or default_responder
        self.latency_s = latency_s
        self.status_for = status_for
        self.stream_pieces = stream_pieces
        self.requests = RequestLog()
        self._ids = itertools.count(1)
        self._id_lock = threading.Lock()
        self._closed = False
        self._httpd = _Server(self)
        self.host, self.port = self._httpd.server_address[:2]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeOpenAIServer:{self.port}",
            daemon=True,
        )
        self._thread.start()

    # -- public -----------------------------------------------------------------

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
        return self.requests.for_path("/v1/chat/completions")

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent recorded request (``IndexError`` if there is none)."""
        return self.requests.snapshot()[-1]

    def close(self) -> None:
        """Stop serving and release the port. Idempotent."""
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
        return f"<FakeOpenAIServer {self.base_url} {state}, {len(self.requests)} requests>"

    # -- internals used by the handler --------------------------------------------

    def _next_id(self) -> str:
        with self._id_lock:
            return f"chatcmpl-fake-{next(self._ids)}"

    def _answers(
        self, body: dict[str, Any]
    ) -> tuple[list[tuple[str, str, str | None]], int, int]:
        """Call the responder for each choice; return (choices, prompt, completion).

        Each choice is ``(content, finish_reason, reasoning_content or None)``.
        """
        n = body.get("n") or 1
        prompt_tokens: int | None = None
        completion_tokens = 0
        choices: list[tuple[str, str, str | None]] = []
        for _ in range(n):
            result = self.responder(body)
            reasoning: str | None = None
            if isinstance(result, dict):
                content = str(result.get("content", ""))
                finish_reason = str(result.get("finish_reason") or "stop")
                if result.get("reasoning_content") is not None:
                    reasoning = str(result["reasoning_content"])
                if prompt_tokens is None and result.get("prompt_tokens") is not None:
                    prompt_tokens = int(result["prompt_tokens"])
                if result.get("completion_tokens") is not None:
                    completion_tokens += int(result["completion_tokens"])
                else:
                    completion_tokens += estimate_tokens(len(content) + len(reasoning or ""))
            else:
                content = str(result)
                finish_reason = "stop"
                completion_tokens += estimate_tokens(len(content))
            choices.append((content, finish_reason, reasoning))
        if prompt_tokens is None:
            prompt_tokens = estimate_tokens(count_prompt_chars(body.get("messages") or []))
        return choices, prompt_tokens, completion_tokens
