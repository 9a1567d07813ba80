"""A client that goes away cancels its run (``colm-graph serve``): no model call starts after
the disconnect is seen, and the paid call that was in flight is recorded in the spend store
(at what it may have cost: the client never saw its usage). The models are a local fake
OpenAI-compatible server that takes 0.3 s per request, so the run's timeline is known."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from colm_graph import ModelPool
from colm_graph.integrations.operator import Operator, hash_key
from colm_graph.integrations.serve import DISCONNECT_POLL_S, create_app
from tests.support.openai_server import FakeOpenAIServer
from tests.support.pools import small_big_pool
from tests.support.serving import serving

pytestmark = pytest.mark.integration

LATENCY_S = 0.3
KEY = "sk-cancel-test-41d0"


PAID_SEEN = threading.Event()


def _note_paid(record: dict[str, Any]) -> None:
    if record["model"] == "big":
        PAID_SEEN.set()


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    PAID_SEEN.clear()
    with FakeOpenAIServer(responder=lambda body: "It is 439.\n\nAnswer: 439",
                          latency_s=LATENCY_S, behaviour_for=_note_paid) as srv:
        yield srv


def post_and_hang_up(url: str, body: dict[str, Any], key: str) -> float:
    """Send the request on a raw socket, and close it once the first paid call has reached
    the model (mid-guidance); returns when it hung up (``time.monotonic()``)."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    data = json.dumps(body).encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nAuthorization: Bearer " + key.encode()
                 + b"\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
    assert PAID_SEEN.wait(30), "the run never reached its paid call"
    sock.close()
    return time.monotonic()


def test_a_disconnect_cancels_the_run(tmp_path: Path, fake: FakeOpenAIServer,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLM_TEST_KEY", "sk-paid")
    pool = ModelPool.from_yaml(small_big_pool(tmp_path / "models.yaml", fake.base_url,
                                              big={"max_tokens": 40}))
    op_file = tmp_path / "operator.yaml"
    op_file.write_text(yaml.safe_dump({"keys": {"a": {"key_sha256": hash_key(KEY)}},
                                       "server": {"paid_usd": 10}}))
    operator = Operator.from_yaml(op_file)
    app = create_app(pool, graphs=["colm"], operator=operator,
                     params={"skip_guidance_when_agreed": False, "rounds": 3})
    body = {"model": "colm", "messages": [{"role": "user", "content": "What is 17*23+48?"}]}
    with serving(app) as url:
        gone = post_and_hang_up(url, body, KEY)
        time.sleep(8 * LATENCY_S)  # a run left alone would make five more calls by now
        starts = [r["started_at"] for r in fake.chat_requests]
    # the draft, then the first guidance call, during which the client left: nothing after
    assert len(starts) == 2, starts
    assert max(starts) < gone + DISCONNECT_POLL_S
    paid = [r for r in fake.chat_requests if r["model"] == "big"]
    assert len(paid) == 1
    usd, tokens, held_usd, _ = operator.store.spent(operator.server)
    assert held_usd == 0 and usd > 0 and tokens > 0  # the cancelled call is counted, released


STREAMED = {"model": "colm", "stream": True,
            "messages": [{"role": "user", "content": "What is 17*23+48?"}]}


def _app(tmp_path: Path, fake: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("COLM_TEST_KEY", "sk-paid")
    pool = ModelPool.from_yaml(small_big_pool(tmp_path / "models.yaml", fake.base_url))
    return create_app(pool, graphs=["colm"], progress_s=0.1,
                      params={"skip_guidance_when_agreed": False, "rounds": 3})


def test_a_streamed_run_sends_progress_then_the_reply(tmp_path: Path, fake: FakeOpenAIServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx
    import openai

    body = STREAMED
    with serving(_app(tmp_path, fake, monkeypatch)) as url:
        with httpx.stream("POST", url + "/chat/completions", json=body, timeout=60) as r:
            lines = [ln for ln in r.iter_lines() if ln]
        with openai.OpenAI(base_url=url, api_key="unused", max_retries=0) as c:
            text = "".join(ch.choices[0].delta.content or "" for ch in
                           c.chat.completions.create(**body) if ch.choices)  # type: ignore[call-overload]
    # the role chunk at once (the client's headers and first event), then comments while
    # colm works (it has no single reply call to stream), then the reply
    assert json.loads(lines[0].removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"
    content = next(i for i, ln in enumerate(lines) if i and ln.startswith("data:"))
    assert content >= 6 and all(ln == ": colm-graph: working" for ln in lines[1:content])
    assert lines[-1] == "data: [DONE]"
    assert "439" in text  # the openai client skips the comments


def test_leaving_a_stream_cancels_its_run(tmp_path: Path, fake: FakeOpenAIServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    body = STREAMED
    with serving(_app(tmp_path, fake, monkeypatch)) as url:
        with httpx.stream("POST", url + "/chat/completions", json=body, timeout=60) as r:
            for line in r.iter_lines():
                if line and PAID_SEEN.is_set():
                    break  # mid-guidance: hang up
        gone = time.monotonic()
        time.sleep(8 * LATENCY_S)
        starts = [r["started_at"] for r in fake.chat_requests]
    assert len(starts) == 2 and max(starts) < gone + 0.2, starts
