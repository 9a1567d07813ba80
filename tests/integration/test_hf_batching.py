"""Shared pipelines and micro-batching of the ``huggingface`` provider, on the tiny model.

Batching is observed through the batcher's own counters (``calls`` pipeline calls for
``requests`` requests), read as deltas because the pipeline cache lives for the session.
Tests that need a batch to form use a long ``batch_wait_s`` (a batch of ``max_batch`` runs
at once, so they do not wait it out) and a settings key of their own.
"""

from __future__ import annotations

import asyncio
import os
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from langchain_core.messages import HumanMessage

from colm_graph import ModelPool, load_graph
from colm_graph.pool import ModelSpec
from colm_graph.pool.providers.huggingface import LocalChatHuggingFace, build, shared_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Different lengths, so that a batch is left-padded.
PROMPTS = [
    "What is 2+2?",
    "A train leaves at 9 and arrives at 11. How long does the trip take, in hours?",
    "Tom has 3 more books than Anna, who has 9 books. How many books does Tom have?",
    "Sum?",
]
LONG_WAIT_S = 120.0  # a batch of 4 with max_batch=4 never waits this out


def spec(model_dir, name: str = "tiny", max_tokens: int = 8) -> ModelSpec:
    return ModelSpec(name=name, provider="huggingface", model=str(model_dir), tier="local",
                     max_tokens=max_tokens)


def batched(model_dir, name: str = "tiny", max_tokens: int = 8) -> LocalChatHuggingFace:
    return build(spec(model_dir, name, max_tokens), max_batch=len(PROMPTS),
                 batch_wait_s=LONG_WAIT_S)


def reference_texts(model_dir, max_tokens: int = 8) -> list[str]:
    """One prompt per pipeline call (batching off)."""
    chat = build(spec(model_dir, "ref", max_tokens), max_batch=1)
    before = chat._batcher.calls
    texts = [str(chat.invoke(p).text) for p in PROMPTS]
    assert chat._batcher.calls - before == len(PROMPTS)
    assert chat._batcher.largest_batch == 1
    return texts


def in_threads(chats: list[LocalChatHuggingFace], prompts: list[str], **kwargs):
    """Invoke ``chats[i % len(chats)]`` on every prompt, all at once, in threads."""
    barrier = threading.Barrier(len(prompts))

    def call(i: int):
        barrier.wait()
        return chats[i % len(chats)].invoke(prompts[i], **kwargs)

    with ThreadPoolExecutor(len(prompts)) as pool:
        futures = [pool.submit(call, i) for i in range(len(prompts))]
        return [f.result() if f.exception() is None else f.exception() for f in futures]


def write_pool(tmp_path, model_dir, names: list[str]) -> ModelPool:
    rel = os.path.relpath(model_dir, tmp_path)
    entries = "".join(textwrap.dedent(f"""\
          - name: {name}
            provider: huggingface
            model: {rel if i % 2 else model_dir}
            tier: local
            max_tokens: 8
            domains: [arithmetic]
        """) for i, name in enumerate(names))
    path = tmp_path / "models.yaml"
    path.write_text("models:\n" + entries + textwrap.dedent("""\
          - name: sim-server
            provider: sim
            tier: paid
            price: {input: 1.0, output: 2.0}
        """))
    return ModelPool.from_yaml(path)


def chat_of(pool: ModelPool, name: str) -> LocalChatHuggingFace:
    chat = pool.entry(name).chat_model
    assert isinstance(chat, LocalChatHuggingFace)
    return chat


def test_entries_over_the_same_directory_share_one_pipeline(tmp_path, tiny_hf_model_dir):
    pool = write_pool(tmp_path, tiny_hf_model_dir, ["hf-a", "hf-b"])
    a, b = chat_of(pool, "hf-a"), chat_of(pool, "hf-b")
    assert a is not b
    assert a.llm is b.llm and a.batcher is b.batcher and a.tokenizer is b.tokenizer
    assert a.llm.pipeline.tokenizer.padding_side == "left"
    assert a.tokenizer is not a.llm.pipeline.tokenizer  # callers count on their own tokenizer
    assert a.invoke("Hi").response_metadata["model_name"] == "hf-a"
    assert b.invoke("Hi").response_metadata["model_name"] == "hf-b"
    other = build(spec(tiny_hf_model_dir, "hf-c", max_tokens=5))
    assert other.llm is not a.llm  # other generation settings, other pipeline
    assert shared_pipeline(tiny_hf_model_dir, max_new_tokens=8).llm is a.llm


def test_concurrent_threads_are_batched_with_unbatched_results(tiny_hf_model_dir):
    expected = reference_texts(tiny_hf_model_dir)
    assert len(set(expected)) > 1  # the prompts tell the results apart
    chats = [batched(tiny_hf_model_dir, "t1"), batched(tiny_hf_model_dir, "t2")]
    batcher = chats[0]._batcher
    assert chats[1]._batcher is batcher
    calls, requests = batcher.calls, batcher.requests
    results = in_threads(chats, PROMPTS)
    assert batcher.requests - requests == len(PROMPTS)
    assert batcher.calls - calls < len(PROMPTS)
    assert [r.text for r in results] == expected
    assert [r.response_metadata["model_name"] for r in results] == ["t1", "t2", "t1", "t2"]


async def test_concurrent_ainvoke_is_batched_without_blocking_the_loop(tiny_hf_model_dir):
    expected = reference_texts(tiny_hf_model_dir)
    chat = batched(tiny_hf_model_dir, "async")
    batcher = chat._batcher
    loop_ran = threading.Event()

    def gate(prompts: list[str]) -> None:
        # The batch runs only once a task scheduled after the requests has run: a blocked
        # event loop would fail this batch.
        if not loop_ran.wait(60):
            raise RuntimeError("the event loop was blocked")

    async def mark() -> None:
        loop_ran.set()

    calls, requests = batcher.calls, batcher.requests
    batcher.before_call = gate
    try:
        results, _ = await asyncio.gather(asyncio.gather(*(chat.ainvoke(p) for p in PROMPTS)),
                                          mark())
    finally:
        batcher.before_call = None
    assert batcher.requests - requests == len(PROMPTS)
    assert batcher.calls - calls < len(PROMPTS)
    assert [r.text for r in results] == expected


def test_token_counts_are_per_request(tiny_hf_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_hf_model_dir))
    chat = batched(tiny_hf_model_dir, "count")
    results = in_threads([chat], PROMPTS)
    for prompt, msg in zip(PROMPTS, results, strict=True):
        rendered = chat._to_chat_prompt([HumanMessage(prompt)])
        n_in = len(tok.encode(rendered, add_special_tokens=False))
        n_out = len(tok.encode(msg.text, add_special_tokens=False))
        assert msg.usage_metadata == {"input_tokens": n_in, "output_tokens": n_out,
                                      "total_tokens": n_in + n_out}
    assert len({m.usage_metadata["input_tokens"] for m in results}) == len(PROMPTS)


def test_a_generation_error_reaches_every_caller_of_the_batch(tiny_hf_model_dir):
    chat = batched(tiny_hf_model_dir, "err")
    batcher = chat._batcher
    calls = batcher.calls
    # max_new_tokens=0 is rejected by generate(), inside the pipeline call
    results = in_threads([chat], PROMPTS, pipeline_kwargs={"max_new_tokens": 0})
    assert all(isinstance(r, ValueError) and "max_new_tokens" in str(r) for r in results)
    assert batcher.calls - calls < len(PROMPTS)

    def fail(prompts: list[str]) -> None:
        raise RuntimeError(f"boom x{len(prompts)}")

    batcher.before_call = fail
    try:
        results = in_threads([chat], PROMPTS)
    finally:
        batcher.before_call = None
    assert all(isinstance(r, RuntimeError) and str(r).startswith("boom") for r in results)
    assert all(r.text for r in in_threads([chat], PROMPTS))  # and serves afterwards


def test_requests_with_other_pipeline_kwargs_get_their_own_batch(tiny_hf_model_dir):
    shared = shared_pipeline(tiny_hf_model_dir, max_new_tokens=8, max_batch=2,
                             batch_wait_s=LONG_WAIT_S)
    batcher = shared.batcher
    calls = batcher.calls
    barrier = threading.Barrier(4)

    def call(i: int) -> str:
        barrier.wait()
        return batcher.generate(PROMPTS[i], max_new_tokens=2 + 2 * (i % 2))

    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(call, range(4)))
    assert batcher.calls - calls == 2 and batcher.largest_batch == 2
    alone = [batcher.pipeline([p], max_new_tokens=2 + 2 * (i % 2))[0][0]["generated_text"]
             for i, p in enumerate(PROMPTS)]
    assert texts == alone


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_colm_over_three_clients_on_one_model(tmp_path, tiny_hf_model_dir, mode):
    names = ["hf-1", "hf-2", "hf-3"]
    pool = write_pool(tmp_path, tiny_hf_model_dir, names)
    graph = load_graph("colm", pool=pool, params={"top_k": 3, "rounds": 1})
    batcher = chat_of(pool, "hf-1")._batcher
    assert all(chat_of(pool, n)._batcher is batcher for n in names)
    requests = batcher.requests
    inputs = {"question": "What is 12 * (3 + 4) - 5?"}
    out = graph.invoke(inputs) if mode == "invoke" else await graph.ainvoke(inputs)
    assert sorted(out["selected"]) == names and out["stop_reason"]
    local = [c for c in out["ledger"] if c["model"] in names]
    assert {c["model"] for c in local} == set(names)
    assert batcher.requests - requests == len(local)
    assert all(c["tokens_estimated"] is False and c["input_tokens"] > 0 for c in local)


def test_stop_ends_the_worker_and_a_later_request_starts_one(tiny_hf_model_dir):
    batcher = shared_pipeline(tiny_hf_model_dir, max_new_tokens=8).batcher
    first = batcher.generate(PROMPTS[0])
    worker = batcher._worker
    assert worker is not None and worker.is_alive()
    batcher.stop()
    assert not worker.is_alive() and batcher._worker is None
    assert batcher.generate(PROMPTS[0]) == first
