"""A protocol graph used from the user's own LangGraph graphs: as a node (subgraph), inside a
function node of a parent with other key names, streamed with ``subgraphs=True``, and as a
LangChain tool called by an agent (``colm_graph.integrations.tools.protocol_tool``)."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from colm_graph import ConfigError, ModelPool, create_colm_graph, ledger_totals, load_graph
from colm_graph.core.state import ProtocolState
from colm_graph.integrations.tools import NO_ANSWER, ProtocolToolInput, protocol_tool
from colm_graph.spec.fused import node_updates
from tests.support.fakes import ScriptedChatModel

QUESTION = "What is 17 * 23 + 48?"
# A bundled task item (evals/datasets/colm_tasks.jsonl, arithmetic-0003).
TASK_QUESTION = "What is 60 / 12 + 10 * 5?"
_TIMING = ("latency_s", "started_at")


def _untimed(ledger: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ledger records without wall-clock fields, to compare runs."""
    return [{k: v for k, v in r.items() if k not in _TIMING} for r in ledger]


class Parent(TypedDict, total=False):
    """A user's state: the protocol's keys it cares about, and its own."""

    question: str
    answer: str | None
    ledger: Annotated[list[dict[str, Any]], operator.add]
    note: str
    turns: Annotated[int, operator.add]


class ProtocolParent(ProtocolState, total=False):
    """A user's state built on the package's own state schema (every reducer list)."""

    turns: Annotated[int, operator.add]


def _count(state: Any) -> dict[str, Any]:
    return {"turns": 1}


def _loop(protocol: Any, schema: Any, times: int, checkpointer: Any = None) -> Any:
    """START -> protocol -> count -> (protocol again | END), ``times`` protocol runs."""
    g = StateGraph(schema)
    g.add_node("protocol", protocol)
    g.add_node("count", _count)
    g.add_edge(START, "protocol")
    g.add_edge("protocol", "count")
    g.add_conditional_edges(
        "count", lambda s: END if s["turns"] >= times else "protocol", ["protocol", END])
    return g.compile(checkpointer=checkpointer)


def _inner_outputs(parent: Any, inputs: dict[str, Any], node: str,
                   config: RunnableConfig | None = None) -> list[dict[str, Any]]:
    """What each run of ``node`` returned to the parent (its ``updates`` events)."""
    return [update[node] for update in parent.stream(inputs, config, stream_mode="updates")
            if node in update]


@pytest.fixture(scope="module")
def colm() -> Any:
    return load_graph("colm", pool=ModelPool.default())


@pytest.fixture(scope="module")
def alone(colm: Any) -> dict[str, Any]:
    out = colm.invoke({"question": QUESTION})
    assert len(out["ledger"]) >= 3 and ledger_totals(out["ledger"])["paid_calls"] >= 1
    return dict(out)


# -- a protocol graph as a node ----------------------------------------------------------


def test_subgraph_node_returns_answer_and_its_ledger_once(colm, alone):
    g = StateGraph(Parent)
    g.add_node("colm", colm)
    g.add_edge(START, "colm")
    g.add_edge("colm", END)
    out = g.compile().invoke({"question": QUESTION, "note": "kept", "ledger": []})
    assert out["answer"] == alone["answer"]
    assert out["note"] == "kept"
    assert _untimed(out["ledger"]) == _untimed(alone["ledger"])
    # only the parent's keys come back; the protocol's other outputs stay inside
    assert set(out) == {"question", "answer", "ledger", "note", "turns"}
    assert out["turns"] == 0


def test_subgraph_node_keeps_ledger_entries_already_in_the_parent(colm, alone):
    g = StateGraph(Parent)
    g.add_node("colm", colm)
    g.add_edge(START, "colm")
    g.add_edge("colm", END)
    earlier = {**alone["ledger"][0], "node": "earlier"}
    out = g.compile().invoke({"question": QUESTION, "ledger": [earlier]})
    assert out["ledger"][0] == earlier
    assert _untimed(out["ledger"][1:]) == _untimed(alone["ledger"])


@pytest.mark.parametrize("times", [2, 3])
def test_subgraph_run_in_a_loop_appends_each_runs_ledger_once(colm, alone, times):
    parent = _loop(colm, Parent, times)
    inner = _inner_outputs(parent, {"question": QUESTION}, "protocol")
    assert len(inner) == times
    out = parent.invoke({"question": QUESTION})
    assert out["turns"] == times
    assert _untimed(out["ledger"]) == _untimed(alone["ledger"]) * times
    # the streamed run's parent ledger is exactly the inner runs' ledgers, concatenated
    final = list(parent.stream({"question": QUESTION}, stream_mode="values"))[-1]
    assert _untimed(final["ledger"]) == [r for o in inner for r in _untimed(o["ledger"])]


def _nodes(path):
    return [p["node"] for p in path]


def test_loop_over_the_packages_own_state_concatenates_every_reducer_list(colm, alone):
    """A parent built on ProtocolState gets every reducer list (ledger, responses, guidance,
    path) once per inner run: nothing duplicated, nothing dropped."""
    parent = _loop(colm, ProtocolParent, 2)
    inner = _inner_outputs(parent, {"question": QUESTION}, "protocol")
    out = parent.invoke({"question": QUESTION})
    assert [o["ledger"] for o in inner] and len(inner) == 2
    assert _untimed(out["ledger"]) == _untimed(alone["ledger"]) * 2
    assert out["responses"] == alone["responses"] * 2
    assert out["guidance"] == alone["guidance"] * 2
    # the second run clears the first one's fields first (a hidden step), so its steps
    # come one later; the nodes are the same
    assert _nodes(out["path"]) == _nodes(alone["path"]) * 2


def test_two_protocols_in_sequence_concatenate_their_ledgers(colm, alone):
    drafts = create_colm_graph(pool=ModelPool.default(), rounds=0, name="drafts_only")
    g = StateGraph(ProtocolParent)
    g.add_node("colm", colm)
    g.add_node("drafts", drafts)
    g.add_edge(START, "colm")
    g.add_edge("colm", "drafts")
    g.add_edge("drafts", END)
    parent = g.compile()
    updates = list(parent.stream({"question": QUESTION}, stream_mode="updates"))
    assert [next(iter(u)) for u in updates] == ["colm", "drafts"]
    first, second = updates[0]["colm"], updates[1]["drafts"]
    drafts_alone = drafts.invoke({"question": QUESTION})
    assert _untimed(first["ledger"]) == _untimed(alone["ledger"])
    assert _untimed(second["ledger"]) == _untimed(drafts_alone["ledger"])
    out = parent.invoke({"question": QUESTION})
    assert _untimed(out["ledger"]) == _untimed(alone["ledger"] + drafts_alone["ledger"])
    assert _nodes(out["path"]) == _nodes(alone["path"]) + _nodes(drafts_alone["path"])
    assert out["answer"] == drafts_alone["answer"]  # the last protocol's answer wins


def test_two_different_variants_in_sequence():
    pool = ModelPool.default()
    colm, cope = load_graph("colm", pool=pool), load_graph("cope", pool=pool)
    g = StateGraph(Parent)
    g.add_node("colm", colm)
    g.add_node("cope", cope)
    g.add_edge(START, "colm")
    g.add_edge("colm", "cope")
    g.add_edge("cope", END)
    out = g.compile().invoke({"question": QUESTION})
    a, b = colm.invoke({"question": QUESTION}), cope.invoke({"question": QUESTION})
    assert _untimed(out["ledger"]) == _untimed(a["ledger"] + b["ledger"])


def test_parent_checkpointer_runs_each_invoke_fresh(colm, alone):
    """With a checkpointer on the parent, a second invoke on the same thread runs the
    protocol afresh (no inner state resumed) and appends one more run's ledger."""
    parent = _loop(colm, Parent, 1, checkpointer=InMemorySaver())
    config: RunnableConfig = {"configurable": {"thread_id": "t1"}}
    first = parent.invoke({"question": QUESTION}, config)
    assert _untimed(first["ledger"]) == _untimed(alone["ledger"])
    second = parent.invoke({"question": QUESTION, "turns": -1}, config)
    assert _untimed(second["ledger"]) == _untimed(alone["ledger"]) * 2


async def test_subgraph_node_async(colm, alone):
    parent = _loop(colm, Parent, 2)
    out = await parent.ainvoke({"question": QUESTION})
    assert out["answer"] == alone["answer"]
    assert _untimed(out["ledger"]) == _untimed(alone["ledger"]) * 2


# -- a parent with other key names -------------------------------------------------------


class Chat(TypedDict, total=False):
    query: str
    reply: str
    spent_usd: Annotated[float, operator.add]
    calls: Annotated[list[dict[str, Any]], operator.add]


def _wrapper_parent(protocol: Any) -> Any:
    def ask(state: Chat, config: RunnableConfig) -> dict[str, Any]:
        out = protocol.invoke({"question": state["query"]}, config)
        return {"reply": out["answer"] or "", "calls": out["ledger"],
                "spent_usd": ledger_totals(out["ledger"])["paid_usd"]}

    async def aask(state: Chat, config: RunnableConfig) -> dict[str, Any]:
        out = await protocol.ainvoke({"question": state["query"]}, config)
        return {"reply": out["answer"] or "", "calls": out["ledger"],
                "spent_usd": ledger_totals(out["ledger"])["paid_usd"]}

    from langchain_core.runnables import RunnableLambda

    g = StateGraph(Chat)
    g.add_node("ask", RunnableLambda(ask, afunc=aask))
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    return g.compile()


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_function_node_maps_other_key_names(colm, alone, mode):
    parent = _wrapper_parent(colm)
    inputs = {"query": QUESTION}
    out = parent.invoke(inputs) if mode == "invoke" else await parent.ainvoke(inputs)
    assert out["reply"] == alone["answer"]
    assert _untimed(out["calls"]) == _untimed(alone["ledger"])
    assert out["spent_usd"] == pytest.approx(ledger_totals(alone["ledger"])["paid_usd"])
    assert out["spent_usd"] > 0
    assert set(out) == {"query", "reply", "spent_usd", "calls"}


def test_function_node_shows_protocol_nodes_when_streamed_with_subgraphs(colm):
    events = list(_wrapper_parent(colm).stream({"query": QUESTION}, subgraphs=True))
    # finish runs inside tally's step: the step's path entries name it
    inner = {node for ns, update in events if ns for step, whole in update.items()
             for node, _ in node_updates(step, whole)}
    assert {"select", "draft", "finish"} <= inner
    assert [list(u) for ns, u in events if not ns] == [["ask"]]


# -- streaming and config ----------------------------------------------------------------


def test_stream_subgraphs_shows_inner_node_events(colm, alone):
    g = StateGraph(Parent)
    g.add_node("colm", colm)
    g.add_edge(START, "colm")
    g.add_edge("colm", END)
    events = list(g.compile().stream({"question": QUESTION}, subgraphs=True))
    inner = [(ns, node) for ns, update in events if ns for step, whole in update.items()
             for node, _ in node_updates(step, whole)
             if node != "_begin"]  # the hidden reset step a reused thread starts with
    assert inner and all(ns[0].startswith("colm:") for ns, _ in inner)
    assert [node for _, node in inner if node != "draft" and node != "revise"] == \
        [step["node"] for step in alone["path"] if step["node"] not in ("draft", "revise")]
    assert [list(u) for ns, u in events if not ns] == [["colm"]]


class _ChatStarts(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts: list[tuple[list[str], dict[str, Any]]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, tags: Any = None,
                            metadata: Any = None, **kwargs: Any) -> None:
        self.starts.append((list(tags or []), dict(metadata or {})))


def test_with_config_node_adds_tags_and_metadata_to_inner_calls(colm, alone):
    g = StateGraph(Parent)
    g.add_node("colm", colm.with_config(tags=["my-step"], metadata={"team": "math"}))
    g.add_edge(START, "colm")
    g.add_edge("colm", END)
    parent = g.compile()
    handler = _ChatStarts()
    out = parent.invoke({"question": QUESTION}, {"callbacks": [handler]})
    assert _untimed(out["ledger"]) == _untimed(alone["ledger"])
    assert len(handler.starts) == len(out["ledger"])
    for tags, metadata in handler.starts:
        assert "my-step" in tags and metadata["team"] == "math"
        assert f"colm:{metadata['colm_role']}" in tags
    events = list(parent.stream({"question": QUESTION}, subgraphs=True))
    assert any(ns and "draft" in u for ns, u in events)


# -- a protocol graph as a tool ----------------------------------------------------------


class ToolCallingFake(GenericFakeChatModel):
    """GenericFakeChatModel that accepts ``bind_tools`` (the script already holds the tool
    calls) and records the tools it was bound to."""

    bound: list[Any] = []

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        self.bound = list(tools)
        return self


def _agent_script(tool_name: str, question: str) -> Iterator[AIMessage]:
    return iter([
        AIMessage(content="", tool_calls=[{"name": tool_name, "args": {"question": question},
                                           "id": "call_1", "type": "tool_call"}]),
        AIMessage(content="Done: the protocol answered."),
    ])


def test_protocol_tool_schema_and_defaults(colm):
    tool = protocol_tool(colm)
    assert tool.name == "ask_colm"
    assert tool.args_schema is ProtocolToolInput
    assert set(tool.args) == {"question"}
    assert "colm" in tool.description
    named = protocol_tool("cope", name="math_team", description="Solve math questions.")
    assert (named.name, named.description) == ("math_team", "Solve math questions.")


def test_protocol_tool_returns_the_answer(colm, alone):
    assert protocol_tool(colm).invoke({"question": QUESTION}) == alone["answer"]
    assert protocol_tool("colm").invoke({"question": QUESTION}) == alone["answer"]


async def test_protocol_tool_async(colm, alone):
    assert await protocol_tool(colm).ainvoke({"question": QUESTION}) == alone["answer"]


async def test_protocol_tool_async_uses_ainvoke():
    class OnlyAsync:
        name = "stub"

        def invoke(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the async tool must not call invoke")

        async def ainvoke(self, inputs: dict[str, Any], config: Any = None) -> Any:
            return {"answer": f"async:{inputs['question']}", "ledger": []}

    tool = protocol_tool(OnlyAsync())
    assert tool.name == "ask_stub"
    assert await tool.ainvoke({"question": "q"}) == "async:q"


def test_protocol_tool_details(colm, alone):
    details = protocol_tool(colm, return_details=True).invoke({"question": QUESTION})
    assert details == {"answer": alone["answer"],
                       "paid_usd": ledger_totals(alone["ledger"])["paid_usd"],
                       "usd": ledger_totals(alone["ledger"])["usd"], "degraded": False}
    assert details["paid_usd"] > 0


def test_protocol_tool_no_answer():
    pool = ModelPool()
    pool.add("a", ScriptedChatModel(reply="I cannot tell."), tier="local")
    pool.add("b", ScriptedChatModel(reply="No idea."), tier="paid")
    tool = protocol_tool("single", pool=pool)
    assert tool.invoke({"question": QUESTION}) == NO_ANSWER
    assert protocol_tool("single", pool=pool, return_details=True).invoke(
        {"question": QUESTION})["answer"] is None


def test_protocol_tool_refuses_bad_arguments(colm):
    with pytest.raises(ConfigError, match="pool"):
        protocol_tool(colm, pool=ModelPool.default())
    with pytest.raises(ConfigError, match="name"):
        protocol_tool(colm, name="has spaces")
    with pytest.raises(ConfigError, match="description"):
        protocol_tool(colm, description="  ")
    with pytest.raises(ConfigError, match="graph_or_variant"):
        protocol_tool(42)


def test_agent_calls_the_protocol_tool(colm):
    expected = colm.invoke({"question": TASK_QUESTION})["answer"]
    assert expected is not None
    tool = protocol_tool(colm)
    model = ToolCallingFake(messages=_agent_script(tool.name, TASK_QUESTION))
    agent = create_agent(model=model, tools=[tool])
    out = agent.invoke({"messages": [HumanMessage(TASK_QUESTION)]})
    assert [t.name for t in model.bound] == [tool.name]
    kinds = [type(m) for m in out["messages"]]
    assert kinds == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    result = out["messages"][2]
    assert result.tool_call_id == "call_1" and result.name == tool.name
    assert result.content == expected
    assert out["messages"][-1].content == "Done: the protocol answered."


async def test_agent_calls_the_protocol_tool_async_and_traces_it(colm):
    expected = (await colm.ainvoke({"question": QUESTION}))["answer"]
    tool = protocol_tool(colm)
    agent = create_agent(model=ToolCallingFake(messages=_agent_script(tool.name, QUESTION)),
                         tools=[tool])
    handler = _ChatStarts()
    out = await agent.ainvoke({"messages": [HumanMessage(QUESTION)]},
                              {"callbacks": [handler]})
    assert out["messages"][2].content == expected
    # the agent's two model calls, plus every protocol call with its role, tier and model
    inner = [m for _, m in handler.starts if "colm_role" in m]
    assert len(handler.starts) == 2 + len(inner)
    assert {m["colm_node"] for m in inner} >= {"draft", "guide", "revise"}
    assert all(m["colm_tier"] in ("local", "paid") and m["colm_model"] for m in inner)


def test_agent_stream_with_subgraphs_shows_protocol_nodes(colm):
    tool = protocol_tool(colm)
    agent = create_agent(model=ToolCallingFake(messages=_agent_script(tool.name, QUESTION)),
                         tools=[tool])
    events = list(agent.stream({"messages": [HumanMessage(QUESTION)]}, subgraphs=True))
    # finish runs inside tally's step: the step's path entries name it
    inner = {node for ns, update in events if ns for step, whole in update.items()
             for node, _ in node_updates(step, whole)}
    assert {"select", "draft", "finish"} <= inner
    assert [next(iter(u)) for ns, u in events if not ns] == ["model", "tools", "model"]
