"""Any LangChain chat model works as a pool entry, with what LangChain lets it carry: models
built by ``init_chat_model`` against an OpenAI-compatible server on 127.0.0.1, with a rate
limiter, a cache and their own callbacks; and a handler passed at graph invoke sees every
model call with the protocol's role, tier, model and node (what a LangSmith trace shows)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from langchain.chat_models import init_chat_model
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.rate_limiters import InMemoryRateLimiter
from langchain_core.runnables import RunnableConfig

from colm_graph import ModelPool, create_colm_graph, ledger_totals, load_graph
from tests.support.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.integration

QUESTION = "What is 17 * 23 + 48?"
DRAFTS = {"m-a": "41", "m-b": "42"}
PRICE = {"input": 5.0, "output": 15.0}
CHAT = "/v1/chat/completions"


def responder(body: dict[str, Any]) -> dict[str, Any]:
    user = body["messages"][-1]["content"]
    if "<drafts>" in user:
        return {"content": "The drafts differ; 42 is right.\nAnswer: 42",
                "prompt_tokens": 1000, "completion_tokens": 200}
    if "<guidance>" in user:
        return {"content": "Revised with the guidance.\nAnswer: 42", "prompt_tokens": 300,
                "completion_tokens": 20}
    return {"content": f"Draft.\nAnswer: {DRAFTS[body['model']]}", "prompt_tokens": 120,
            "completion_tokens": 30}


@pytest.fixture
def server() -> Any:
    with FakeOpenAIServer(responder=responder) as srv:
        yield srv


def make_pool(server: FakeOpenAIServer, **model_kwargs: Any) -> ModelPool:
    """Two local clients and a paid server, each ``init_chat_model("openai:...")``."""
    def model(name: str) -> Any:
        return init_chat_model(f"openai:{name}", base_url=server.base_url, api_key="x",
                               max_retries=0, **model_kwargs)

    pool = ModelPool()
    pool.add("local-a", model("m-a"), tier="local", domains=["arithmetic"])
    pool.add("local-b", model("m-b"), tier="local", domains=["algebra"])
    pool.add("big", model("m-big"), tier="paid", price=PRICE)
    return pool


def check_colm_run(out: dict[str, Any]) -> None:
    """The run the responder scripts: two drafts, guidance, two revisions, consensus."""
    assert out["answer"] == "42" and out["stop_reason"] == "consensus"
    assert [(r["node"], r["model"]) for r in out["ledger"]] == [
        ("draft", "local-a"), ("draft", "local-b"), ("guide", "big"),
        ("revise", "local-a"), ("revise", "local-b")]


# -- (a) rate limiter ----------------------------------------------------------------------


class CountingRateLimiter(InMemoryRateLimiter):
    """InMemoryRateLimiter that counts the acquisitions made through it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.acquired = 0
        self.async_acquired = 0

    def acquire(self, *, blocking: bool = True) -> bool:
        self.acquired += 1
        return super().acquire(blocking=blocking)

    async def aacquire(self, *, blocking: bool = True) -> bool:
        self.async_acquired += 1
        return await super().aacquire(blocking=blocking)


RPS = 40.0


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_rate_limited_models_complete_a_colm_run(server, mode):
    limiter = CountingRateLimiter(requests_per_second=RPS, check_every_n_seconds=0.002,
                                  max_bucket_size=1)
    graph = create_colm_graph(pool=make_pool(server, rate_limiter=limiter))
    start = time.perf_counter()
    out = graph.invoke({"question": QUESTION}) if mode == "invoke" else \
        await graph.ainvoke({"question": QUESTION})
    elapsed = time.perf_counter() - start
    check_colm_run(out)
    requests = len(server.requests.for_path(CHAT))
    assert requests == 5
    used = limiter.acquired if mode == "invoke" else limiter.async_acquired
    assert used == requests
    assert (limiter.acquired if mode == "ainvoke" else limiter.async_acquired) == 0
    # one token per request, refilled at RPS, a bucket of one: the limiter really waited
    assert elapsed >= (requests - 1) / RPS * 0.9


# -- (b) cache -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_cached_models_answer_a_repeated_run_from_the_cache(server, mode):
    cache = InMemoryCache()
    limiter = CountingRateLimiter(requests_per_second=1000, check_every_n_seconds=0.001)
    graph = load_graph("colm", pool=make_pool(server, cache=cache, rate_limiter=limiter))

    async def run() -> dict[str, Any]:
        inputs = {"question": QUESTION}
        return dict(graph.invoke(inputs) if mode == "invoke" else await graph.ainvoke(inputs))

    first = await run()
    after_first = len(server.requests.for_path(CHAT))
    acquired_first = limiter.acquired + limiter.async_acquired
    second = await run()
    after_second = len(server.requests.for_path(CHAT))
    check_colm_run(first)
    check_colm_run(second)
    assert after_first == 5
    assert after_second == after_first  # every call of the second run came from the cache
    # the cache is read before the rate limiter: hits take no token
    assert limiter.acquired + limiter.async_acquired == acquired_first == 5
    # What the ledger says about a cache hit: LangChain replays the cached reply with its
    # usage (same tokens, so they are not estimated) and marks it total_cost 0; the ledger
    # keeps the tokens and charges nothing.
    for hit, miss in zip(second["ledger"], first["ledger"], strict=True):
        assert (hit["input_tokens"], hit["output_tokens"]) == \
            (miss["input_tokens"], miss["output_tokens"])
        assert hit["tokens_estimated"] is False and hit["usd"] == 0.0
    assert ledger_totals(first["ledger"])["paid_usd"] == pytest.approx(
        (1000 * PRICE["input"] + 200 * PRICE["output"]) / 1e6)
    assert ledger_totals(second["ledger"])["paid_usd"] == 0.0


def test_cache_hit_is_per_prompt(server):
    """A different question misses the cache: only its own calls hit the server."""
    cache = InMemoryCache()
    graph = load_graph("colm", pool=make_pool(server, cache=cache))
    graph.invoke({"question": QUESTION})
    before = len(server.requests.for_path(CHAT))
    out = graph.invoke({"question": "What is 17 * 23 + 49?"})
    assert len(server.requests.for_path(CHAT)) - before == len(out["ledger"]) == 5
    assert ledger_totals(out["ledger"])["paid_usd"] > 0


# -- (c) callbacks attached to the model -----------------------------------------------------


class Recorder(BaseCallbackHandler):
    """Records chat-model starts (tags, metadata) and ends."""

    def __init__(self) -> None:
        self.starts: list[dict[str, Any]] = []
        self.ends = 0

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: Any,
                            tags: list[str] | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.starts.append({"tags": list(tags or []), "metadata": dict(metadata or {})})

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends += 1


class AsyncRecorder(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.starts: list[dict[str, Any]] = []
        self.ends = 0

    async def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: Any,
                                  tags: list[str] | None = None,
                                  metadata: dict[str, Any] | None = None,
                                  **kwargs: Any) -> None:
        self.starts.append({"tags": list(tags or []), "metadata": dict(metadata or {})})

    async def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends += 1


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_callbacks_attached_to_the_model_still_fire(server, mode):
    handlers = {name: Recorder() for name in ("m-a", "m-b", "m-big")}
    pool = ModelPool()
    for name, model, tier in (("local-a", "m-a", "local"), ("local-b", "m-b", "local"),
                              ("big", "m-big", "paid")):
        chat = init_chat_model(f"openai:{model}", base_url=server.base_url, api_key="x",
                               max_retries=0, callbacks=[handlers[model]])
        pool.add(name, chat, tier=tier, domains=["arithmetic"], price=PRICE)  # type: ignore[arg-type]
    graph = create_colm_graph(pool=pool)
    out = graph.invoke({"question": QUESTION}) if mode == "invoke" else \
        await graph.ainvoke({"question": QUESTION})
    check_colm_run(out)
    per_model = Counter(r["model"] for r in out["ledger"])
    assert [len(handlers[m].starts) for m in ("m-a", "m-b", "m-big")] == \
        [per_model["local-a"], per_model["local-b"], per_model["big"]] == [2, 2, 1]
    assert [handlers[m].ends for m in ("m-a", "m-b", "m-big")] == [2, 2, 1]
    # the model's own handler gets the protocol's metadata too
    assert {s["metadata"]["colm_role"] for s in handlers["m-big"].starts} == {"server"}


# -- (d) a handler passed at invoke: tracing metadata ----------------------------------------


def _call_keys(ledger: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter((r["node"], r["role"], r["tier"], r["model"], r["round"]) for r in ledger)


def _start_keys(starts: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter((s["metadata"]["colm_node"], s["metadata"]["colm_role"],
                    s["metadata"]["colm_tier"], s["metadata"]["colm_model"],
                    s["metadata"]["colm_round"]) for s in starts)


@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream"])
async def test_invoke_handler_sees_every_call_with_role_tier_and_model(server, mode):
    graph = create_colm_graph(pool=make_pool(server))
    handler: Recorder | AsyncRecorder = AsyncRecorder() if mode == "ainvoke" else Recorder()
    config: RunnableConfig = {"callbacks": [handler], "tags": ["my-run"],
                              "metadata": {"user": "u1"}}
    if mode == "invoke":
        out = graph.invoke({"question": QUESTION}, config)
    elif mode == "ainvoke":
        out = await graph.ainvoke({"question": QUESTION}, config)
    else:
        out = list(graph.stream({"question": QUESTION}, config, stream_mode="values"))[-1]
    check_colm_run(out)
    assert len(handler.starts) == handler.ends == len(out["ledger"]) == 5
    assert _start_keys(handler.starts) == _call_keys(out["ledger"])
    for start in handler.starts:
        meta, tags = start["metadata"], start["tags"]
        assert f"colm:{meta['colm_role']}" in tags
        assert f"tier:{meta['colm_tier']}" in tags
        assert f"model:{meta['colm_model']}" in tags
        assert meta["colm_node"] == meta["langgraph_node"]
        assert "my-run" in tags and meta["user"] == "u1"  # the caller's own config is kept
    roles = {(s["metadata"]["colm_role"], s["metadata"]["colm_tier"]) for s in handler.starts}
    assert roles == {("client", "local"), ("server", "paid")}


def test_invoke_handler_sees_the_llm_selector_call(server):
    """A protocol whose selector is the server model: that call is traced too."""
    def select_then_answer(body: dict[str, Any]) -> dict[str, Any]:
        user = body["messages"][-1]["content"]
        if "<drafts>" not in user and "<guidance>" not in user and body["model"] == "m-big":
            return {"content": "Clients: local-a, local-b"}
        return responder(body)

    server.responder = select_then_answer
    graph = create_colm_graph(pool=make_pool(server), selector="llm")
    handler = Recorder()
    out = graph.invoke({"question": QUESTION}, {"callbacks": [handler]})
    assert _start_keys(handler.starts) == _call_keys(out["ledger"])
    assert any(s["metadata"]["colm_node"] == "select" for s in handler.starts)
