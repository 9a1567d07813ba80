"""CollaborativeChatModel: replies, usage, streaming, callbacks, chains, fallbacks, errors.

Everything runs on the built-in simulated pool, which is deterministic: the same question
on the same variant gives the same calls, tokens and answer.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatResult
from langchain_core.prompts import ChatPromptTemplate
from pydantic import ValidationError

from colm_graph import ColmGraphError, ModelPool, ledger_totals, load_graph
from colm_graph.core.answers import answers_match, extract_answer
from colm_graph.core.messages import result_text
from colm_graph.core.resources import bundled_dir
from colm_graph.integrations.chat_model import STEP_EVENT, CollaborativeChatModel
from colm_graph.pool.providers.sim.tasks import bundled_tasks

QUESTION = bundled_tasks().tasks[0].question  # an arithmetic task the simulator answers
_TIMING = ("latency_s",)


def _without_timing(totals: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in totals.items() if k not in _TIMING}


class Recorder(BaseCallbackHandler):
    """Records chat-model starts, chain starts and custom events with their run ids."""

    def __init__(self) -> None:
        self.chat_starts: list[dict[str, Any]] = []
        self.parents: dict[uuid.UUID, uuid.UUID | None] = {}
        self.custom: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: uuid.UUID,
                            parent_run_id: uuid.UUID | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.parents[run_id] = parent_run_id
        self.chat_starts.append({"run_id": run_id, "parent": parent_run_id,
                                 "metadata": dict(metadata or {})})

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: uuid.UUID,
                       parent_run_id: uuid.UUID | None = None, **kwargs: Any) -> None:
        self.parents[run_id] = parent_run_id

    def on_custom_event(self, name: str, data: Any, *, run_id: uuid.UUID,
                        **kwargs: Any) -> None:
        self.custom.append({"name": name, "data": data, "run_id": run_id})

    def ancestors(self, run_id: uuid.UUID) -> list[uuid.UUID]:
        out = []
        parent = self.parents.get(run_id)
        while parent is not None:
            out.append(parent)
            parent = self.parents.get(parent)
        return out


class Broken(BaseChatModel):
    """A chat model whose endpoint is down."""

    @property
    def _llm_type(self) -> str:
        return "broken"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        raise RuntimeError("endpoint down")


@pytest.fixture(scope="module")
def pool() -> ModelPool:
    return ModelPool.default()


@pytest.fixture(scope="module")
def direct(pool: ModelPool) -> dict[str, Any]:
    """The colm graph's own result for QUESTION, run without the wrapper."""
    return load_graph("colm", pool=pool).invoke({"question": QUESTION})


@pytest.fixture
def chat(pool: ModelPool) -> CollaborativeChatModel:
    return CollaborativeChatModel(graph="colm", pool=pool)


# -- replies and usage --------------------------------------------------------------------


def test_reply_matches_a_direct_graph_run(chat: CollaborativeChatModel,
                                          direct: dict[str, Any]) -> None:
    reply = chat.invoke(QUESTION)
    assert isinstance(reply, AIMessage)
    assert reply.content == result_text(direct)
    meta = reply.response_metadata
    assert meta["answer"] == direct["answer"] == bundled_tasks().tasks[0].answer
    assert meta["model_name"] == "colm-graph/colm"
    assert meta["variant"] == "colm"
    assert meta["stop_reason"] == direct["stop_reason"]
    assert meta["degraded"] is False
    assert meta["simulated"] is True
    assert _without_timing(meta["ledger_totals"]) == \
        _without_timing(dict(ledger_totals(direct["ledger"])))


def test_usage_is_the_sum_over_every_call(chat: CollaborativeChatModel,
                                          direct: dict[str, Any]) -> None:
    reply = chat.invoke(QUESTION)
    totals = reply.response_metadata["ledger_totals"]
    assert totals["calls"] > 1  # a real collaboration, not one call
    usage = reply.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] == totals["input_tokens"] == \
        sum(r["input_tokens"] for r in direct["ledger"])
    assert usage["output_tokens"] == totals["output_tokens"] == \
        sum(r["output_tokens"] for r in direct["ledger"])
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_paid_calls_are_priced(pool: ModelPool) -> None:
    # The cascade escalates "2+3" to the paid server on this pool.
    reply = CollaborativeChatModel(graph="cascade", pool=pool).invoke("What is 2+3?")
    totals = reply.response_metadata["ledger_totals"]
    assert totals["paid_calls"] >= 1 and totals["usd"] == totals["paid_usd"] > 0


def test_simulated_means_every_call_was_simulated() -> None:
    """One definition for every adapter (:class:`RunResult`): a run is simulated when it made
    calls and the simulator answered all of them; one real call makes it not simulated."""
    fake_pool = ModelPool.default().add("fake", FakeListChatModel(responses=["Answer: 5"]),
                                        tier="paid")
    only_fake = CollaborativeChatModel(graph="single", pool=fake_pool, roles={"solver": "fake"})
    meta = only_fake.invoke("What is 2+3?").response_metadata
    assert meta["answer"] == "5" and meta["simulated"] is False
    mixed = CollaborativeChatModel(graph="cascade", pool=fake_pool, roles={"paid": "fake"})
    meta = mixed.invoke("What is 2+3?").response_metadata
    assert meta["ledger_totals"]["paid_calls"] == 1
    assert meta["ledger_totals"]["local_calls"] >= 1
    assert meta["simulated"] is False  # the paid call was a real model
    sim_only = CollaborativeChatModel(graph="cascade", pool=ModelPool.default())
    assert sim_only.invoke("What is 2+3?").response_metadata["simulated"] is True


async def test_ainvoke_matches_invoke(chat: CollaborativeChatModel) -> None:
    sync = chat.invoke(QUESTION)
    reply = await chat.ainvoke(QUESTION)
    assert reply.content == sync.content
    assert reply.usage_metadata == sync.usage_metadata


def test_conversation_context_reaches_the_graph(chat: CollaborativeChatModel) -> None:
    reply = chat.invoke([SystemMessage("Be brief."), HumanMessage("Hi"),
                         AIMessage("Hello."), HumanMessage(QUESTION)])
    assert reply.response_metadata["answer"] == bundled_tasks().tasks[0].answer


# -- streaming ------------------------------------------------------------------------------


def test_stream_concatenates_to_the_invoke_reply(chat: CollaborativeChatModel) -> None:
    reply = chat.invoke(QUESTION)
    chunks = list(chat.stream(QUESTION))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert len(chunks) > 2
    assert "".join(c.text for c in chunks) == reply.content
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert full.usage_metadata == reply.usage_metadata
    assert full.response_metadata["model_name"] == "colm-graph/colm"
    assert full.response_metadata["answer"] == reply.response_metadata["answer"]
    assert [c.usage_metadata is not None for c in chunks].count(True) == 1
    assert chunks[-1].chunk_position == "last"


async def test_astream_concatenates_to_the_invoke_reply(chat: CollaborativeChatModel) -> None:
    reply = chat.invoke(QUESTION)
    chunks = [c async for c in chat.astream(QUESTION)]
    assert len(chunks) > 2
    assert "".join(c.text for c in chunks) == reply.content
    assert chunks[-1].usage_metadata == reply.usage_metadata


# -- callbacks: inner calls are child runs; node steps are custom events --------------------


def _check_run_tree(rec: Recorder, totals: dict[str, Any], direct: dict[str, Any]) -> None:
    top = [s for s in rec.chat_starts if s["parent"] is None]
    assert len(top) == 1, "one chat-model run at the top"
    outer = top[0]["run_id"]
    inner = [s for s in rec.chat_starts if s["parent"] is not None]
    assert len(inner) == totals["calls"]
    for start in inner:
        assert outer in rec.ancestors(start["run_id"])
        meta = start["metadata"]
        assert {"colm_node", "colm_role", "colm_tier", "colm_model", "colm_round"} <= set(meta)
    assert {s["metadata"]["colm_model"] for s in inner} == {r["model"] for r in direct["ledger"]}
    steps = [e for e in rec.custom if e["name"] == STEP_EVENT]
    assert steps and all(e["run_id"] == outer for e in steps)
    assert {e["data"]["node"] for e in steps} == {p["node"] for p in direct["path"]}
    assert sum(e["data"].get("calls", 0) for e in steps) == totals["calls"]
    answers = sorted((r["client"], r["answer"]) for e in steps
                     for r in e["data"].get("responses", []))
    assert answers == sorted((r["client"], r["answer"]) for r in direct["responses"])
    finish = [e["data"] for e in steps if "stop_reason" in e["data"]]
    assert finish[-1]["answer"] == direct["answer"]


def test_invoke_reports_child_runs_and_steps(chat: CollaborativeChatModel,
                                             direct: dict[str, Any]) -> None:
    rec = Recorder()
    reply = chat.invoke(QUESTION, config={"callbacks": [rec]})
    _check_run_tree(rec, reply.response_metadata["ledger_totals"], direct)


def test_stream_reports_child_runs_and_steps(chat: CollaborativeChatModel,
                                             direct: dict[str, Any]) -> None:
    rec = Recorder()
    chunks = list(chat.stream(QUESTION, config={"callbacks": [rec]}))
    _check_run_tree(rec, chunks[-1].response_metadata["ledger_totals"], direct)


async def test_async_calls_report_child_runs_and_steps(chat: CollaborativeChatModel,
                                                       direct: dict[str, Any]) -> None:
    rec = Recorder()
    reply = await chat.ainvoke(QUESTION, config={"callbacks": [rec]})
    _check_run_tree(rec, reply.response_metadata["ledger_totals"], direct)
    rec = Recorder()
    chunks = [c async for c in chat.astream(QUESTION, config={"callbacks": [rec]})]
    _check_run_tree(rec, chunks[-1].response_metadata["ledger_totals"], direct)


def test_streaming_flag_keeps_the_run_tree(pool: ModelPool, direct: dict[str, Any]) -> None:
    rec = Recorder()
    chat = CollaborativeChatModel(graph="colm", pool=pool, streaming=True)
    reply = chat.invoke(QUESTION, config={"callbacks": [rec]})
    _check_run_tree(rec, reply.response_metadata["ledger_totals"], direct)


async def test_astream_events_show_steps_and_inner_models(
        chat: CollaborativeChatModel) -> None:
    events = [e async for e in chat.astream_events(QUESTION, version="v2")]
    names = {e["name"] for e in events if e["event"] == "on_custom_event"}
    assert names == {STEP_EVENT}
    inner = [e for e in events if e["event"] == "on_chat_model_start"
             and "colm_node" in e.get("metadata", {})]
    assert inner and all(e["metadata"]["colm_tier"] in ("local", "paid") for e in inner)
    streamed = "".join(e["data"]["chunk"].text for e in events
                       if e["event"] == "on_chat_model_stream" and not e["parent_ids"])
    assert streamed == chat.invoke(QUESTION).content


# -- LCEL, fallbacks, batch -----------------------------------------------------------------


def test_in_an_lcel_chain(chat: CollaborativeChatModel) -> None:
    prompt = ChatPromptTemplate.from_messages([("system", "Answer exactly."),
                                               ("human", "{question}")])
    chain = prompt | chat | StrOutputParser()
    text = chain.invoke({"question": QUESTION})
    assert isinstance(text, str)
    # the reply is the response that carries the answer, in its model's own writing
    assert answers_match(extract_answer(text), bundled_tasks().tasks[0].answer)
    assert "".join(chain.stream({"question": QUESTION})) == text


def test_a_failing_variant_falls_back(pool: ModelPool) -> None:
    # a local model's failure propagates (a failing paid model falls back to the local tier)
    broken_pool = ModelPool.default().add("broken", Broken(), tier="local")
    failing = CollaborativeChatModel(graph="single", pool=broken_pool,
                                     roles={"solver": "broken"})
    with pytest.raises(RuntimeError, match="endpoint down"):
        failing.invoke(QUESTION)
    backup = FakeListChatModel(responses=["Answer: from the backup"])
    assert failing.with_fallbacks([backup]).invoke(QUESTION).content == \
        "Answer: from the backup"
    other = CollaborativeChatModel(graph="cascade", pool=pool)
    reply = failing.with_fallbacks([other]).invoke(QUESTION)
    assert reply.response_metadata["model_name"] == "colm-graph/cascade"


def test_batch_of_three(chat: CollaborativeChatModel) -> None:
    questions: list[Any] = [t.question for t in bundled_tasks().tasks[:3]]
    replies = chat.batch(questions)
    singles = [chat.invoke(q) for q in questions]
    assert [r.response_metadata["answer"] for r in replies] == \
        [r.response_metadata["answer"] for r in singles]
    assert all(r.response_metadata["answer"] for r in replies)
    assert [r.content for r in replies] == [r.content for r in singles]


# -- choosing the variant ---------------------------------------------------------------------


def test_variant_by_path(tmp_path: Path, pool: ModelPool) -> None:
    text = (bundled_dir("graphs") / "single.yaml").read_text(encoding="utf-8")
    spec = tmp_path / "mine.yaml"
    spec.write_text(text.replace("name: single", "name: my_single", 1), encoding="utf-8")
    chat = CollaborativeChatModel(graph=str(spec), pool=pool)
    reply = chat.invoke(QUESTION)
    assert reply.response_metadata["model_name"] == "colm-graph/my_single"
    assert reply.response_metadata["ledger_totals"]["calls"] == 1


def test_compiled_graph_and_per_call_model(pool: ModelPool) -> None:
    chat = CollaborativeChatModel(compiled=load_graph("single", pool=pool), pool=pool)
    assert chat.invoke(QUESTION).response_metadata["model_name"] == "colm-graph/single"
    for model in ("cascade", "colm-graph/cascade"):
        reply = chat.invoke(QUESTION, model=model)
        assert reply.response_metadata["model_name"] == "colm-graph/cascade"
    assert chat._get_ls_params()["ls_model_name"] == "colm-graph/single"


def test_graph_is_built_once(chat: CollaborativeChatModel) -> None:
    chat.invoke(QUESTION)
    graph = chat._graph_for(None)[1]
    chat.invoke("What is 4*5?")
    assert chat._graph_for(None)[1] is graph


def test_identifying_params(pool: ModelPool) -> None:
    chat = CollaborativeChatModel(graph="colm", pool=pool, params={"rounds": 1})
    assert chat._llm_type == "colm-graph"
    params = chat._identifying_params
    assert params["variant"] == "colm" and params["params"] == {"rounds": 1}


# -- errors ---------------------------------------------------------------------------------


def test_unknown_variant_fails_at_construction() -> None:
    with pytest.raises(ColmGraphError, match="'nope': no such variant") as info:
        CollaborativeChatModel(graph="nope")
    assert "\n" not in str(info.value)


def test_unknown_parameter_fails_on_first_call() -> None:
    chat = CollaborativeChatModel(graph="colm", params={"nope": 1})
    with pytest.raises(ColmGraphError, match="parameter 'nope'") as info:
        chat.invoke(QUESTION)
    assert "\n" not in str(info.value)


def test_misspelt_field_and_bad_compiled_graph() -> None:
    with pytest.raises(ValidationError, match="grpah"):
        CollaborativeChatModel(grpah="cope")  # type: ignore[call-arg]
    with pytest.raises(ColmGraphError, match="compiled: expected a compiled LangGraph graph"):
        CollaborativeChatModel(compiled=3)
    with pytest.raises(ColmGraphError, match="params would be ignored"):
        CollaborativeChatModel(compiled=load_graph("single"), params={"max_paid_usd": 1})


def test_no_user_message_raises(chat: CollaborativeChatModel) -> None:
    with pytest.raises(ColmGraphError, match="expected a user"):
        chat.invoke([SystemMessage("You are helpful.")])
