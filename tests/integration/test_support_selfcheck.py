"""Self-checks for the test support code, using the real LangChain clients."""

from __future__ import annotations

import asyncio
import functools
import json
import operator
import pathlib
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from tests.support.openai_server import FakeOpenAIServer, count_prompt_chars

pytestmark = pytest.mark.integration

API_KEY = "sk-test-123"


def _chat(srv: FakeOpenAIServer, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(base_url=srv.base_url, api_key=API_KEY, model="fake", **kwargs)


def _raw(srv: FakeOpenAIServer, method: str, path: str, data: bytes | None = None):
    request = urllib.request.Request(
        srv.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


# --- FakeOpenAIServer with ChatOpenAI -------------------------------------------------


def test_invoke_returns_text_usage_and_records_request() -> None:
    def responder(body: dict[str, Any]) -> dict[str, Any]:
        return {"content": "Answer: 7", "prompt_tokens": 11, "completion_tokens": 3}

    with FakeOpenAIServer(responder=responder) as srv:
        result = _chat(srv).invoke([SystemMessage("Be brief."), HumanMessage("What is 3+4?")])

    assert isinstance(result, AIMessage)
    assert result.content == "Answer: 7"
    assert result.usage_metadata is not None
    assert result.usage_metadata["input_tokens"] == 11
    assert result.usage_metadata["output_tokens"] == 3
    assert result.usage_metadata["total_tokens"] == 14
    assert result.response_metadata["model_name"] == "fake"
    assert result.response_metadata["finish_reason"] == "stop"

    [request] = srv.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert request["body"]["model"] == "fake"
    assert [m["role"] for m in request["body"]["messages"]] == ["system", "user"]
    assert request["body"]["messages"][1]["content"] == "What is 3+4?"


def test_default_usage_is_estimated_from_characters(openai_server: FakeOpenAIServer) -> None:
    prompt = "x" * 40
    result = _chat(openai_server).invoke(prompt)

    assert result.content == "Answer: 42"
    assert result.usage_metadata is not None
    assert result.usage_metadata["input_tokens"] == 10  # 40 chars // 4
    assert result.usage_metadata["output_tokens"] == 2  # len("Answer: 42") // 4
    assert openai_server.last_request["status"] == 200


def test_stream_yields_text_and_final_usage(openai_server: FakeOpenAIServer) -> None:
    chunks = list(_chat(openai_server, stream_usage=True).stream("What is 6*7?"))

    text_chunks = [c.content for c in chunks if c.content]
    assert len(text_chunks) > 1
    assert "".join(text_chunks) == "Answer: 42"
    # The usage arrives after the text (langchain-core then adds an empty last chunk).
    usage_at = [i for i, c in enumerate(chunks) if c.usage_metadata]
    text_at = [i for i, c in enumerate(chunks) if c.content]
    assert len(usage_at) == 1 and usage_at[0] > max(text_at)
    merged = functools.reduce(operator.add, chunks)
    assert merged.content == "Answer: 42"
    assert merged.usage_metadata is not None
    assert merged.usage_metadata["output_tokens"] == 2
    assert merged.usage_metadata["input_tokens"] == 3  # len("What is 6*7?") // 4
    body = openai_server.last_request["body"]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_ainvoke(openai_server: FakeOpenAIServer) -> None:
    result = await _chat(openai_server).ainvoke("hello")
    assert result.content == "Answer: 42"
    assert openai_server.last_request["headers"]["authorization"] == f"Bearer {API_KEY}"


async def test_concurrent_ainvokes_overlap_on_the_server() -> None:
    with FakeOpenAIServer(latency_s=0.3) as srv:
        llm = _chat(srv)
        results = await asyncio.gather(llm.ainvoke("first"), llm.ainvoke("second"))

    assert [r.content for r in results] == ["Answer: 42", "Answer: 42"]
    first, second = srv.chat_requests
    assert first["finished_at"] is not None and second["finished_at"] is not None
    assert first["started_at"] < second["finished_at"]
    assert second["started_at"] < first["finished_at"]


def test_n_choices_call_the_responder_per_choice() -> None:
    answers = iter(["A", "B", "C"])
    with FakeOpenAIServer(responder=lambda body: next(answers)) as srv:
        result = _chat(srv, n=3).generate([[HumanMessage("pick")]])

    assert [g.text for g in result.generations[0]] == ["A", "B", "C"]
    assert srv.last_request["body"]["n"] == 3


def test_status_hook_returns_openai_error() -> None:
    import openai

    with FakeOpenAIServer(status_for=lambda body: 429) as srv:
        with pytest.raises(openai.RateLimitError) as info:
            _chat(srv, max_retries=0).invoke("hi")
        status, payload = _raw(srv, "POST", "/v1/chat/completions", b'{"messages": []}')

    assert info.value.status_code == 429
    assert status == 429
    assert payload["error"]["type"] == "rate_limit_error"
    assert set(payload["error"]) >= {"message", "type", "code"}


def test_models_unknown_path_and_invalid_json(openai_server: FakeOpenAIServer) -> None:
    status, payload = _raw(openai_server, "GET", "/v1/models")
    assert status == 200
    assert [m["id"] for m in payload["data"]] == ["fake"]

    status, payload = _raw(openai_server, "GET", "/v1/nope")
    assert status == 404
    assert "message" in payload["error"]

    status, payload = _raw(openai_server, "POST", "/v1/chat/completions", b"{not json")
    assert status == 400
    assert payload["error"]["type"] == "invalid_request_error"
    assert [r["status"] for r in openai_server.requests] == [200, 404, 400]


def test_prompt_chars_count_text_blocks_only() -> None:
    messages = [
        {"role": "system", "content": "abcd"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "12345678"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
        {"role": "assistant", "content": None},
    ]
    assert count_prompt_chars(messages) == 12


# --- network guard -----------------------------------------------------------------


def test_network_guard_blocks_non_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lookup(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the guard should refuse before resolving the address")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    with pytest.raises(RuntimeError, match="network access outside 127.0.0.1 blocked"):
        socket.create_connection(("10.255.255.1", 80), timeout=0.1)

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.1)
        with pytest.raises(RuntimeError, match="10.255.255.1"):
            sock.connect(("10.255.255.1", 80))
        with pytest.raises(RuntimeError, match="10.255.255.1"):
            sock.connect_ex(("10.255.255.1", 80))


def test_network_guard_allows_loopback(openai_server: FakeOpenAIServer) -> None:
    with socket.create_connection(("127.0.0.1", openai_server.port), timeout=5):
        pass


# --- tiny Hugging Face model --------------------------------------------------------


@pytest.mark.slow
def test_tiny_hf_model_through_chat_huggingface(tiny_hf_model_dir: pathlib.Path) -> None:
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline

    from tests.support.tiny_hf import make_tiny_chat_huggingface

    llm = HuggingFacePipeline.from_model_id(
        model_id=str(tiny_hf_model_dir),
        task="text-generation",
        pipeline_kwargs={"max_new_tokens": 8, "return_full_text": False},
    )
    chat = ChatHuggingFace(llm=llm, model_id=str(tiny_hf_model_dir))
    result = chat.invoke("What is 2+2?")
    assert isinstance(result, AIMessage)
    assert isinstance(result.content, str)
    assert chat.invoke("What is 2+2?").content == result.content  # greedy: deterministic
    assert chat.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    ) == ("<|user|>\nhi\n<|assistant|>\n")

    helper_chat = make_tiny_chat_huggingface(tiny_hf_model_dir)
    long_prompt = "The reviewer checks each step. " * 3000  # far beyond the context
    long_result = helper_chat.invoke([SystemMessage("Be brief."), HumanMessage(long_prompt)])
    assert isinstance(long_result.content, str)

    # Facts other tests rely on: no usage, no metadata, no async with a pipeline.
    assert result.usage_metadata is None
    with pytest.raises(NotImplementedError):
        asyncio.run(chat.ainvoke("What is 2+2?"))
