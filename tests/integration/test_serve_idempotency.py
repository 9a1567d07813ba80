"""Idempotent requests (``Idempotency-Key``) through ``colm-graph serve``: the official
``openai`` client with a short timeout and ``max_retries=2`` gives up or retries while the run
is working, and the run still happens once; the same key with another body is refused; a
run that fails gives its key up. The models are a local fake OpenAI-compatible server whose
requests are counted."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from colm_graph import ModelPool
from colm_graph.integrations.serve import create_app
from tests.support.openai_server import FakeOpenAIServer
from tests.support.pools import small_big_pool
from tests.support.serving import serving

pytestmark = pytest.mark.integration

QUESTION = [{"role": "user", "content": "What is 17*23+48?"}]
PARAMS = {"skip_guidance_when_agreed": False, "rounds": 3}
CALLS_PER_RUN = 7  # colm, one client, three rounds: draft + 3 x (guide + revise)


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(responder=lambda body: "It is 439.\n\nAnswer: 439",
                          latency_s=0.25) as srv:
        yield srv


@pytest.fixture
def url(tmp_path: Path, fake: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
        ) -> Iterator[str]:
    monkeypatch.setenv("COLM_TEST_KEY", "sk-paid")
    pool = ModelPool.from_yaml(small_big_pool(tmp_path / "models.yaml", fake.base_url))
    with serving(create_app(pool, graphs=["colm"], params=PARAMS)) as base:
        yield base


def chat(url: str, key: str | None, *, timeout: float = 60, retries: int = 0,
         content: list[dict[str, str]] = QUESTION) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    with openai.OpenAI(base_url=url, api_key="unused", timeout=timeout,
                       max_retries=retries) as c:
        return c.chat.completions.create(model="colm", messages=content,  # type: ignore[arg-type]
                                         extra_headers=headers)


def test_client_retries_make_one_run(url: str, fake: FakeOpenAIServer) -> None:
    try:  # tries of 0.6 s against a 2 s run: the first two time out, the last may too
        early = chat(url, "order-1", timeout=0.6, retries=2).id
    except openai.APITimeoutError:
        early = None
    first = chat(url, "order-1")  # the run the retries left behind, or its kept reply
    again = chat(url, "order-1")
    assert again.id == first.id and again.choices[0].message.content
    assert early in (None, first.id)
    time.sleep(0.5)
    assert len(fake.chat_requests) == CALLS_PER_RUN  # one run, whatever the client did


def test_repeats_at_once_share_one_run(url: str, fake: FakeOpenAIServer) -> None:
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        replies = list(ex.map(lambda _: chat(url, "same"), range(4)))
    assert len({r.id for r in replies}) == 1
    assert len(fake.chat_requests) == CALLS_PER_RUN
    plain = chat(url, None)  # no key: its own run
    assert plain.id != replies[0].id
    assert len(fake.chat_requests) == 2 * CALLS_PER_RUN


def test_a_key_names_one_request(url: str) -> None:
    chat(url, "k-1")
    with pytest.raises(openai.UnprocessableEntityError, match="different request"):
        chat(url, "k-1", content=[{"role": "user", "content": "Something else?"}])


def test_a_failed_run_gives_its_key_up(url: str, fake: FakeOpenAIServer) -> None:
    fake.status_for = lambda body: 500  # every model call fails
    with pytest.raises(openai.APIStatusError):
        chat(url, "k-2")
    fake.status_for = None
    assert chat(url, "k-2").choices[0].message.content  # the retry ran
