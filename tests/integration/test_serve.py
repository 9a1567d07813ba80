"""The OpenAI-compatible server (``colm_graph.integrations.serve`` and ``colm-graph serve``)
against the official ``openai`` client and ``ChatOpenAI``: a real uvicorn server on 127.0.0.1 in a
background thread (a subprocess for the CLI), the built-in simulated pool."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr

from colm_graph import ModelPool, bundled_graphs, ledger_totals, load_graph
from colm_graph.core.answers import answers_match, extract_answer
from colm_graph.core.messages import result_text
from colm_graph.errors import ColmGraphError, ConfigError
from colm_graph.integrations.serve import create_app
from colm_graph.pool.providers.sim.tasks import bundled_tasks
from tests.support.fakes import ScriptedChatModel
from tests.support.serving import serving

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TOKEN = "colm-serve-token-5be1c0a9"
SECRET = "sk-colm-serve-secret-7f3e2d1c"
TASKS = bundled_tasks().tasks
QUESTION = TASKS[0].question  # "Compute 32 times 15, plus 60." -> 540
TOTAL_KEYS = ("calls", "paid_calls", "input_tokens", "output_tokens", "usd", "paid_usd")


def direct(pool: ModelPool, graph: str, question: str = QUESTION) -> dict[str, Any]:
    """The same question run on the graph directly, without the server."""
    return load_graph(graph, pool=pool).invoke({"question": question})


def totals(state: dict[str, Any]) -> dict[str, Any]:
    t = ledger_totals(state["ledger"])
    return {k: t[k] for k in TOTAL_KEYS}  # type: ignore[literal-required]


def client(base_url: str, key: str = "unused", **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=60, **kw)


def create(base_url: str, key: str = "unused", **kwargs: Any) -> Any:
    """``chat.completions.create`` on a fresh client, closed afterwards (a stream is read
    to the end first)."""
    with client(base_url, key) as c:
        reply = c.chat.completions.create(**kwargs)
        return list(reply) if kwargs.get("stream") else reply


@pytest.fixture(scope="module")
def pool() -> ModelPool:
    return ModelPool.default()


@pytest.fixture(scope="module")
def base_url(pool: ModelPool) -> Iterator[str]:
    with serving(create_app(pool)) as url:
        yield url


@pytest.fixture(scope="module")
def token_url(pool: ModelPool) -> Iterator[str]:
    with serving(create_app(pool, graphs=["single"], token=TOKEN)) as url:
        yield url


def user(text: str = QUESTION) -> list[Any]:
    return [{"role": "user", "content": text}]


# -- models ---------------------------------------------------------------------------------
def test_models_list_and_retrieve(base_url: str) -> None:
    with client(base_url) as c:
        _check_models(c)


def _check_models(c: openai.OpenAI) -> None:
    models = c.models.list()
    assert [m.id for m in models] == bundled_graphs()
    assert {m.owned_by for m in models} == {"colm-graph"}
    assert all(m.object == "model" and isinstance(m.created, int) for m in models)
    assert c.models.retrieve("cope").id == "cope"
    with pytest.raises(openai.NotFoundError) as info:
        c.models.retrieve("gpt-4o")
    assert info.value.code == "model_not_found"


def test_raw_models_shape(base_url: str) -> None:
    body = httpx.get(f"{base_url}/models").json()
    assert body["object"] == "list"
    assert body["data"][0] == {"id": "cascade", "object": "model",
                               "created": body["data"][0]["created"], "owned_by": "colm-graph"}


# -- chat completions -------------------------------------------------------------------------
@pytest.mark.parametrize("graph", ["colm", "cope", "route", "single", "moa"])
def test_sync_completion_matches_direct_run(base_url: str, pool: ModelPool, graph: str) -> None:
    expected = direct(pool, graph)
    resp = create(base_url, model=graph, messages=user(),
                                                    temperature=0.3, max_tokens=5)
    assert resp.object == "chat.completion" and resp.model == graph
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content == result_text(expected)
    # the reply is the response that carries the answer, in its model's own writing
    assert answers_match(extract_answer(choice.message.content), TASKS[0].answer)
    want = totals(expected)
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == want["input_tokens"] > 0
    assert resp.usage.completion_tokens == want["output_tokens"] > 0
    assert resp.usage.total_tokens == want["input_tokens"] + want["output_tokens"]
    colm = (resp.model_extra or {})["colm"]
    assert colm["answer"] == expected["answer"] == TASKS[0].answer
    assert colm["stop_reason"] == expected["stop_reason"]
    assert colm["degraded"] is False and colm["simulated"] is True
    assert {k: colm["totals"][k] for k in TOTAL_KEYS} == want


async def test_async_client_concurrent_requests(base_url: str, pool: ModelPool) -> None:
    tasks = TASKS[:4]
    expected = [direct(pool, "cope", t.question) for t in tasks]
    aclient = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0,
                                 timeout=60)
    async with aclient:
        replies = await asyncio.gather(*(
            aclient.chat.completions.create(model="cope", messages=user(t.question))
            for t in tasks))
    for reply, want in zip(replies, expected, strict=True):
        assert reply.choices[0].message.content == result_text(want)
        assert reply.usage is not None
        assert reply.usage.prompt_tokens == totals(want)["input_tokens"]
        assert reply.usage.completion_tokens == totals(want)["output_tokens"]


def test_stream_with_usage(base_url: str, pool: ModelPool) -> None:
    expected = direct(pool, "cope")
    chunks = list(create(base_url, 
        model="cope", messages=user(), stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.model == "cope" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == result_text(expected)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    want = totals(expected)
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (
        want["input_tokens"], want["output_tokens"])
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_usage_ends_with_done(base_url: str, pool: ModelPool) -> None:
    with httpx.stream("POST", f"{base_url}/chat/completions", timeout=60,
                      json={"model": "colm", "messages": user(), "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("data: ") for line in r.iter_lines() if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["colm"]["answer"] == direct(pool, "colm")["answer"]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == result_text(direct(pool, "colm"))


def test_chat_openai_invoke_and_stream(base_url: str, pool: ModelPool) -> None:
    expected = direct(pool, "cope")
    llm = ChatOpenAI(base_url=base_url, api_key="unused", model="cope",
                     max_retries=0)
    reply = llm.invoke(QUESTION)
    assert reply.content == result_text(expected)
    want = totals(expected)
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] == want["input_tokens"]
    assert reply.usage_metadata["output_tokens"] == want["output_tokens"]
    pieces = list(ChatOpenAI(base_url=base_url, api_key="unused",
                             model="cope", max_retries=0, stream_usage=True).stream(QUESTION))
    assert len(pieces) > 1
    assert "".join(str(p.content) for p in pieces) == result_text(expected)
    usage = [p.usage_metadata for p in pieces if p.usage_metadata]
    assert usage and usage[-1]["input_tokens"] == want["input_tokens"]


def test_conversation_context_and_system_message(base_url: str, pool: ModelPool) -> None:
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi! Ask me something."},
                {"role": "user", "content": QUESTION}]
    resp = create(base_url, model="single", messages=messages)
    question = "Instructions: Be brief.\nUser: Hello\nAssistant: Hi! Ask me something.\n\n" \
               f"User: {QUESTION}"
    assert resp.choices[0].message.content == result_text(direct(pool, "single", question))


# -- errors -----------------------------------------------------------------------------------
def test_unknown_model_is_not_found(base_url: str) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        create(base_url, model="gpt-5", messages=user())
    assert info.value.code == "model_not_found" and info.value.param == "model"
    assert "gpt-5" in info.value.message and "colm" in info.value.message


@pytest.mark.parametrize(("kwargs", "param", "words"), [
    ({"messages": []}, "messages", "at least 1"),
    ({"messages": [{"role": "system", "content": "Be brief."}]}, "messages", "user"),
    ({"messages": [{"role": "user", "content": "   "}]}, "messages", "empty"),
    ({"messages": user(), "n": 2}, "n", "n=1"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "string"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "'user'"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "messages[0].content[0]", "input_audio"),
    ({"messages": user(), "stream": "yes"}, "stream", "boolean"),
    ({"messages": user(), "tool_choice": "required"}, "tool_choice", "tool"),
])
def test_bad_requests(base_url: str, kwargs: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        create(base_url, model="colm", **kwargs)
    err = info.value
    assert err.status_code == 400 and err.type == "invalid_request_error"
    assert err.param == param
    assert words in err.message and "\n" not in err.message


@pytest.mark.parametrize(("body", "param", "words"), [
    (b'{"model": "colm"}', "messages", "missing required field 'messages'"),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', "model", "'model'"),
    (b'{"model": "colm", "messages": "hi"}', "messages", "array"),
    (b'{"model": 7, "messages": [{"role": "user", "content": "hi"}]}', "model", "string"),
    (b'{"model": "colm", "messages": [', None, "not valid JSON"),
    (b"[]", None, "object"),
    (b"", None, "not valid JSON"),
])
def test_bad_bodies_are_openai_shaped(base_url: str, body: bytes, param: str | None,
                                      words: str) -> None:
    r = httpx.post(f"{base_url}/chat/completions", content=body,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error" and err["param"] == param
    assert words in err["message"]


def test_unknown_route_is_openai_shaped(base_url: str) -> None:
    r = httpx.get(f"{base_url}/completions")
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "Invalid URL (GET /v1/completions)"


# -- authentication ---------------------------------------------------------------------------
def test_token_required(token_url: str, pool: ModelPool) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        create(token_url, key="wrong-token", model="single", messages=user())
    assert info.value.code == "invalid_api_key" and "wrong-token" not in info.value.message
    with client(token_url, key="wrong-token") as c, pytest.raises(openai.AuthenticationError):
        c.models.list()
    # No Authorization header at all.
    no_header = openai.DefaultHttpxClient(
        event_hooks={"request": [lambda req: req.headers.pop("Authorization", None)]})
    with client(token_url, http_client=no_header) as c:
        with pytest.raises(openai.AuthenticationError) as info:
            c.models.list()
    assert "missing bearer token" in info.value.message
    r = httpx.get(f"{token_url}/models/single")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    with client(token_url, key=TOKEN) as ok:
        assert [m.id for m in ok.models.list()] == ["single"]
        resp = ok.chat.completions.create(model="single", messages=user())
    assert resp.choices[0].message.content == result_text(direct(pool, "single"))


# -- failures, images, parameters -------------------------------------------------------------
def _raise_with_secret(prompt: str) -> str:
    raise RuntimeError(f"upstream refused key {SECRET}\nsecond line of the error")


def test_model_failure_is_502_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLM_SERVE_TEST_KEY", SECRET)
    pool = ModelPool.from_dict({"models": [
        {"name": "remote", "provider": "openai", "model": "m", "tier": "local",
         "base_url": "http://127.0.0.1:9/v1", "api_key_env": "COLM_SERVE_TEST_KEY"}]})
    pool.add("boom", ScriptedChatModel(script=_raise_with_secret), tier="paid")
    with serving(create_app(pool, graphs=["single"])) as url:
        for stream in (False, True):
            with pytest.raises(openai.InternalServerError) as info:
                create(url, model="single", messages=user(),
                                                    stream=stream)
            err = info.value
            assert err.status_code == 502 and err.type == "server_error"
            assert SECRET not in err.message and "\n" not in err.message
            # the paid model failed (its message carried the key), its local fallback could
            # not connect: the run failed, and the reply names the failure without the key
            assert "Connection error" in err.message


class _Recorder(BaseChatModel):
    """Replies "Answer: 7" and keeps the messages of every call."""

    _seen: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recorder"

    def _generate(self, messages: list[BaseMessage], stop: Any = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        self._seen.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="Answer: 7"))])


def test_images_reach_the_graph() -> None:
    recorder = _Recorder()
    pool = ModelPool().add("eyes", recorder, tier="paid").add("small", _Recorder())
    image = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4"
             "nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII=")
    content = [{"type": "text", "text": "What is in the picture?"},
               {"type": "image_url", "image_url": {"url": image, "detail": "low"}}]
    with serving(create_app(pool, graphs=["single"])) as url:
        resp = create(url, 
            model="single", messages=[{"role": "user", "content": content}])
    assert resp.choices[0].message.content == "Answer: 7"
    (messages,) = recorder._seen
    blocks = [b for m in messages if isinstance(m.content, list) for b in m.content]
    urls = [b["image_url"]["url"] for b in blocks
            if isinstance(b, dict) and b.get("type") == "image_url"]
    assert urls == [image]
    assert "What is in the picture?" in "\n".join(m.text for m in messages)


def test_params_reach_every_graph_that_has_them(pool: ModelPool) -> None:
    app = create_app(pool, graphs=["cope", "colm"], params={"max_paid_usd": 0.0})
    with serving(app) as url:
        resp = create(url, model="cope", messages=user())
    colm = (resp.model_extra or {})["colm"]
    assert colm["degraded"] is True and colm["totals"]["paid_usd"] == 0
    assert colm["degraded_reasons"]


def test_create_app_refuses_bad_configuration(pool: ModelPool) -> None:
    with pytest.raises(ColmGraphError, match="no such variant"):
        create_app(pool, graphs=["nope"])
    with pytest.raises(ConfigError, match="no served graph has it"):
        create_app(pool, graphs=["single"], params={"rounds": 2})
    with pytest.raises(ConfigError, match="expected an integer"):
        create_app(pool, graphs=["colm", "single"], params={"rounds": "two"})
    with pytest.raises(ConfigError, match="twice"):
        create_app(pool, graphs=["single", "single"])
    with pytest.raises(ConfigError, match="at least one"):
        create_app(pool, graphs=[])


# -- the command ------------------------------------------------------------------------------
def _lines(stream: Any, sink: queue.Queue[str]) -> None:
    for line in stream:
        sink.put(line)


def test_cli_serve_subprocess() -> None:
    env = {**os.environ, "COLM_SERVE_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "colm_graph.cli", "serve", "--port", "0", "--graphs",
               "colm,single", "--token-env", "COLM_SERVE_TOKEN", "--max-paid-usd", "1"]
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        readers = [threading.Thread(target=_lines, args=(s, q), daemon=True)
                   for s, q in ((proc.stdout, out), (proc.stderr, err))]
        for t in readers:
            t.start()
        try:
            line = out.get(timeout=60)
            match = re.search(r"serving colm, single at (http://([^/\s]+):(\d+)/v1)$",
                              line.strip())
            assert match, line
            url, host, port = match.groups()
            assert host == "127.0.0.1" and int(port) > 0
            resp = create(url, key=TOKEN, model="colm", messages=user())
            # the reply is the response that carries the answer, in its model's own writing
            assert answers_match(extract_answer(resp.choices[0].message.content), TASKS[0].answer)
            with client(url, key="nope") as c, pytest.raises(openai.AuthenticationError):
                c.models.list()
        finally:
            proc.terminate()
            rc = proc.wait(timeout=30)
            for t in readers:
                t.join(10)
    assert rc == 0
    stderr = "".join(err.queue)
    assert TOKEN not in stderr and "Traceback" not in stderr
    assert "POST /v1/chat/completions" in "".join(out.queue)  # uvicorn's access log


def test_cli_serve_refuses_missing_token_env(capsys: pytest.CaptureFixture[str]) -> None:
    from colm_graph.cli.main import main

    assert main(["serve", "--token-env", "COLM_SERVE_UNSET_VARIABLE"]) == 2
    assert "COLM_SERVE_UNSET_VARIABLE is not set" in capsys.readouterr().err
    assert main(["serve", "--token-env", "sk-abc123"]) == 2
    assert "NAME of an environment variable" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2
