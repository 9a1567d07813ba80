"""Bytes on the wire: what each model call sends and receives over HTTP.

Calls to OpenAI-compatible endpoints are counted at the HTTP client the ``openai`` SDK
uses (request bodies as sent, every retry included; response bodies as they arrive, a
stream chunk by chunk), through the client's event hooks, into the :class:`Meter` of the
call in progress (a context variable, so concurrent calls count apart). A response body the
client closes without reading it (the ``openai`` SDK drops the error reply of an attempt it
retries) counts at its declared ``Content-Length``. Headers are not counted. Models that
answer in process have no wire: their calls are given the UTF-8 size of the prompt and the
reply instead, marked ``bytes_estimated``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["Meter", "count_bytes", "metered"]


@dataclass
class Meter:
    """Bytes one call sent and received, and how many HTTP requests it made."""

    sent: int = 0
    received: int = 0
    requests: int = 0


_METER: ContextVar[Meter | None] = ContextVar("colm_wire_meter", default=None)


@contextlib.contextmanager
def metered() -> Iterator[Meter]:
    """Count the HTTP bytes of the calls made inside (in this context)."""
    meter = Meter()
    token = _METER.set(meter)
    try:
        yield meter
    finally:
        _METER.reset(token)


def _on_request(request: Any) -> None:
    meter = _METER.get()
    if meter is not None:
        meter.requests += 1
        try:
            meter.sent += len(request.content)
        except Exception:  # a streamed upload (not sent by chat completions): not counted
            pass


def _declared(response: Any) -> int:
    """The body length a response declared (``Content-Length``; 0 when it has none)."""
    try:
        return max(int(response.headers.get("content-length") or 0), 0)
    except (TypeError, ValueError):
        return 0


def _wrap_response(response: Any, module: Any, *, is_async: bool) -> None:
    found = _METER.get()
    if found is None:
        return
    meter: Meter = found
    inner = response.stream
    declared = _declared(response)
    began = False

    def unread() -> None:
        """A body closed before any of it was read (the SDK drops a retried error reply
        unread) still came over the wire: it counts at its declared length."""
        if not began:
            meter.received += declared

    if is_async:
        class _AsyncCounted(module.AsyncByteStream):
            async def __aiter__(self) -> Any:
                nonlocal began
                began = True
                async for chunk in inner:
                    meter.received += len(chunk)
                    yield chunk

            async def aclose(self) -> None:
                unread()
                await inner.aclose()

        response.stream = _AsyncCounted()
    else:
        class _Counted(module.SyncByteStream):
            def __iter__(self) -> Any:
                nonlocal began
                began = True
                for chunk in inner:
                    meter.received += len(chunk)
                    yield chunk

            def close(self) -> None:
                unread()
                inner.close()

        response.stream = _Counted()


def _http_module(client: Any) -> Any:
    """The httpx-like package a client class comes from (a wrapper's base included)."""
    for cls in type(client).__mro__:
        module = sys.modules.get(cls.__module__.split(".")[0])
        if module is not None and hasattr(module, "SyncByteStream") and \
                hasattr(module, "AsyncByteStream"):
            return module
    return None


def _hook(client: Any, *, is_async: bool) -> bool:
    """Add the counting hooks to one httpx(-compatible) client; False if it has none."""
    hooks = getattr(client, "event_hooks", None)
    if not isinstance(hooks, dict) or getattr(client, "_colm_counted", False):
        return bool(getattr(client, "_colm_counted", False))
    module = _http_module(client)
    if module is None:
        return False
    def on_request(request: Any) -> None:
        _on_request(request)

    def on_response(response: Any) -> None:
        _wrap_response(response, module, is_async=is_async)

    async def aon_request(request: Any) -> None:
        _on_request(request)

    async def aon_response(response: Any) -> None:
        _wrap_response(response, module, is_async=True)

    req: Any = aon_request if is_async else on_request
    resp: Any = aon_response if is_async else on_response
    client.event_hooks = {**hooks, "request": [*hooks.get("request", []), req],
                          "response": [*hooks.get("response", []), resp]}
    client._colm_counted = True
    return True


def count_bytes(model: Any) -> Any:
    """Make a ``ChatOpenAI``'s HTTP clients count into the current :class:`Meter`
    (idempotent). Returns the model."""
    for attr, is_async in (("root_client", False), ("root_async_client", True)):
        sdk = getattr(model, attr, None)
        http = getattr(sdk, "_client", None)
        if http is not None:
            _hook(http, is_async=is_async)
    return model
