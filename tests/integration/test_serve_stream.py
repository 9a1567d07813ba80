"""``colm-graph serve`` (and ``CollaborativeChatModel.astream``) stream the reply's tokens
while the model writes them, for graphs whose reply is one model call (``single``, ``route``,
``cascade`` when it escalates), through the official ``openai`` client and raw SSE. The
models are a local OpenAI-compatible fake that writes its stream slowly (a pause after each
content chunk), so "before the model finished" is a time the fake recorded (the same
``time.monotonic`` clock: the fake runs in this process)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from colm_graph import CollaborativeChatModel, ModelPool
from colm_graph.integrations.serve import create_app
from tests.support.openai_server import FakeOpenAIServer
from tests.support.pools import small_big_pool
from tests.support.serving import serving

pytestmark = pytest.mark.integration

PAID_KEY = "sk-stream-paid-5c1e93a07b44"
QUESTION = "Compute 32 times 15, plus 60."
PIECES, DELAY_S = 8, 0.15  # the paid reply takes 8 x 0.15 = 1.2 s to write
PAID_REPLY = ("Let me work through this carefully.\n\n**Step 1.** 32 x 15 = 480.\n"
              "**Step 2.** 480 + 60 = 540.\n\nSo the final answer is $\\boxed{540}$.")


def _agreeing(body: dict[str, Any]) -> str:
    if body["model"] == "small":
        return "<think>32*15 is 480, add 60</think>\nIt comes to 540.\n\nAnswer: 540"
    return PAID_REPLY


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    monkeypatch.setenv("COLM_TEST_KEY", PAID_KEY)
    with FakeOpenAIServer(responder=_agreeing, stream_pieces=PIECES,
                          stream_delay_s=DELAY_S) as srv:
        yield srv


def _app(tmp_path: Path, fake: FakeOpenAIServer, graph: str, **params: Any) -> Any:
    pool = ModelPool.from_yaml(small_big_pool(tmp_path / "models.yaml", fake.base_url))
    return create_app(pool, graphs=[graph], params=params or None, progress_s=0.3)


def _body(graph: str, **extra: Any) -> dict[str, Any]:
    return {"model": graph, "messages": [{"role": "user", "content": QUESTION}], **extra}


def _sse(url: str, body: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]], str]:
    """The raw lines, the JSON chunks and the joined content of a streamed request."""
    with httpx.stream("POST", url + "/chat/completions", json={**body, "stream": True},
                      timeout=60) as r:
        assert r.status_code == 200, r.read()
        lines = [ln for ln in r.iter_lines() if ln]
    chunks = [json.loads(ln.removeprefix("data: ")) for ln in lines
              if ln.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c.get("choices"))
    return lines, chunks, text


def _plain(url: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(url + "/chat/completions", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(("graph", "params"), [("single", {}), ("route", {"threshold": 0.0})])
def test_the_paid_reply_streams_while_the_model_writes_it(
        tmp_path: Path, fake: FakeOpenAIServer, graph: str, params: dict[str, Any]) -> None:
    with serving(_app(tmp_path, fake, graph, **params)) as url:
        plain = _plain(url, _body(graph))
        with openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60) as c:
            deltas: list[tuple[float, str]] = []
            last: Any = None
            for chunk in c.chat.completions.create(
                    **_body(graph), stream=True, stream_options={"include_usage": True}):
                if chunk.choices and chunk.choices[0].delta.content:
                    deltas.append((time.monotonic(), chunk.choices[0].delta.content))
                last = chunk if chunk.choices else last
                usage = chunk.usage
    paid = [r for r in fake.chat_requests if r["model"] == "big"]
    assert len(paid) == 2 and paid[1]["body"]["stream"] is True
    # the first token reached the client while the paid model still had most of it to write
    assert deltas[0][0] < paid[1]["finished_at"] - 3 * DELAY_S
    assert len(deltas) >= PIECES // 2
    assert "".join(d for _, d in deltas) == plain["choices"][0]["message"]["content"]
    colm = last.model_extra["colm"]
    assert colm["stream"] == {"live": True, "replaced": False}
    assert colm["answer"] == plain["colm"]["answer"] == "540"
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        plain["usage"]["prompt_tokens"], plain["usage"]["completion_tokens"])


def test_cascade_streams_its_escalation_not_its_local_vote(tmp_path: Path,
                                                            fake: FakeOpenAIServer) -> None:
    counter = itertools.count()

    def disagreeing(body: dict[str, Any]) -> str:
        if body["model"] == "small":
            n = next(counter)
            return f"Roughly {n}.\n\n**Answer:** {n}"
        return PAID_REPLY

    with serving(_app(tmp_path, fake, "cascade")) as url:
        lines, chunks, text = _sse(url, _body("cascade"))  # the three local samples agree
        assert chunks[-1]["colm"]["stream"] == {"live": False, "replaced": False}
        assert not any(r["model"] == "big" for r in fake.chat_requests)
        assert text == _plain(url, _body("cascade"))["choices"][0]["message"]["content"]
        assert "540" in text

        fake.responder = disagreeing
        before = len(fake.chat_requests)
        t_first: float | None = None
        with httpx.stream("POST", url + "/chat/completions", timeout=60,
                          json=_body("cascade", stream=True)) as r:
            for ln in r.iter_lines():
                if t_first is None and ln.startswith("data: {") and \
                        json.loads(ln[6:])["choices"][0]["delta"].get("content"):
                    t_first = time.monotonic()
                if ln.startswith("data: {"):
                    last = json.loads(ln[6:])
    new = fake.chat_requests[before:]
    assert [r["model"] for r in new] == ["small"] * 3 + ["big"]
    assert t_first is not None and t_first < new[-1]["finished_at"] - 3 * DELAY_S
    assert last["colm"]["stream"] == {"live": True, "replaced": False}
    assert last["colm"]["answer"] == "540" and last["colm"]["totals"]["paid_calls"] == 1


def test_a_paid_stream_cut_off_is_followed_by_the_fallback_reply(
        tmp_path: Path, fake: FakeOpenAIServer) -> None:
    with serving(_app(tmp_path, fake, "single")) as url:
        fake.set_schedule({"big": ["truncated", "truncated"]})
        lines, chunks, text = _sse(url, _body("single"))
        reply = _plain(url, _body("single"))["choices"][0]["message"]["content"]
    assert [(r["model"], r["behaviour"]) for r in fake.chat_requests] == [
        ("big", "truncated"), ("small", "ok")] * 2
    colm = chunks[-1]["colm"]
    assert colm["stream"] == {"live": True, "replaced": True} and colm["degraded"] is True
    # what was streamed stays; a blank line and the fallback's whole reply follow it
    assert reply.endswith("Answer: 540") and text.endswith("\n\n" + reply)
    streamed = text[:-len(reply) - 2]
    assert len(streamed) > 20 and PAID_REPLY.startswith(streamed)
    assert colm["answer"] == "540"
    assert lines[-1] == "data: [DONE]"


def test_streamed_tokens_never_carry_a_secret(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    leaky = (f"Calling with Authorization: Bearer {PAID_KEY}, as configured.\n"
             f"(key tail {PAID_KEY[-12:]})\n\nThe answer is 540.")
    fake.responder = lambda body: leaky if body["model"] == "big" else "Answer: 540"
    with serving(_app(tmp_path, fake, "single")) as url:
        lines, chunks, text = _sse(url, _body("single"))
        plain = _plain(url, _body("single"))
    raw = "\n".join(lines)
    assert PAID_KEY not in raw and PAID_KEY[-12:] not in raw and PAID_KEY[:10] not in raw
    assert text == plain["choices"][0]["message"]["content"]
    assert "***" in text and text.endswith("The answer is 540.")
    assert chunks[-1]["colm"]["stream"]["live"] is True


def test_hanging_up_mid_reply_stops_the_paid_stream(tmp_path: Path,
                                                    fake: FakeOpenAIServer) -> None:
    with serving(_app(tmp_path, fake, "single")) as url:
        with httpx.stream("POST", url + "/chat/completions", timeout=60,
                          json=_body("single", stream=True)) as r:
            for ln in r.iter_lines():
                if ln.startswith("data: {") and \
                        json.loads(ln[6:])["choices"][0]["delta"].get("content"):
                    break  # the first token: hang up
        gone = time.monotonic()
        time.sleep(PIECES * DELAY_S + 0.5)
    [paid] = fake.chat_requests
    assert paid["client_closed"] is True  # serve closed its upstream stream
    assert paid["finished_at"] < gone + 3 * DELAY_S


def test_the_chat_model_streams_the_reply_live(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    pool = ModelPool.from_yaml(small_big_pool(tmp_path / "models.yaml", fake.base_url))
    chat = CollaborativeChatModel(graph="route", pool=pool, params={"threshold": 0.0})

    async def go() -> tuple[list[tuple[float, Any]], Any]:
        got = [(time.monotonic(), c) async for c in chat.astream(QUESTION)]
        return got, await chat.ainvoke(QUESTION)

    got, whole = asyncio.run(go())
    streamed = next(r for r in fake.chat_requests if r["model"] == "big")
    texts = [c.text for _, c in got if c.text]
    assert got[0][0] < streamed["finished_at"] - 3 * DELAY_S and len(texts) >= PIECES // 2
    assert "".join(texts) == whole.text == PAID_REPLY
    last = got[-1][1]
    assert last.response_metadata["stream"] == {"live": True, "replaced": False}
    assert last.response_metadata["answer"] == "540"
    assert last.usage_metadata["input_tokens"] == whole.usage_metadata["input_tokens"]
