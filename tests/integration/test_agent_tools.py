"""Protocols inside agents: ``langchain.agents.create_agent`` and ``with_structured_output``
on route- and cascade-based ``CollaborativeChatModel``s whose local and paid models are
OpenAI-compatible fakes on 127.0.0.1 that call tools like small models do
(``tests/support/tool_fakes.py``), through the real ``ChatOpenAI`` client.

Each step of an agent is one chat-model call, so one protocol run: the tests read, step by
step, which tier answered (``response_metadata["answered_by"]`` and ``ledger_totals``), what
the router or the verifier decided (the ``colm_step`` events of the run) and what reached
each fake (its request log and its responder's decisions), and check that they agree.
Variants whose reply is not one model call refuse tools with one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from colm_graph import ModelPool
from colm_graph.errors import ColmGraphError
from colm_graph.integrations.chat_model import STEP_EVENT, CollaborativeChatModel
from tests.support.openai_server import FakeOpenAIServer
from tests.support.pools import local_entry, paid_entry, write_pool
from tests.support.tool_fakes import AgentResponder, agent_responder

pytestmark = pytest.mark.integration

KEY_ENV = "COLM_AGENT_TOOLS_KEY"
SECRET = "sk-colm-agent-tools-5be01c"
PRICE = (2.5, 10.0)  # the paid model's USD per million input / output tokens
ROUTE_THRESHOLD = 0.6

PRICES = {"widget": 12, "gadget": 30}


@tool
def add(a: int, b: int) -> int:
    """Add two integers a and b."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers a and b."""
    return a * b


@tool
def lookup(item: str) -> int:
    """Look up the unit price in dollars of a catalogue item."""
    return PRICES[item.lower()]


TOOLS = [add, multiply, lookup]

# Three user turns; the fakes take arguments from the latest user turn, so the numbers
# chain: widget 12, gadget 30, 12 * 3 = 36, 36 + 30 = 66.
TURNS = ("Use lookup to find the price of the 'widget'.",
         "Use lookup for the 'gadget' price and multiply 12 by 3.",
         "Add 36 and 30.")
TOOL_RESULTS = [("lookup", "12"), ("lookup", "30"), ("multiply", "36"), ("add", "66")]
FINAL = "66"
SYSTEM = "You are the shop's assistant. Use the tools for prices and arithmetic."
ROLES = {"human": "user", "ai": "assistant", "tool": "tool"}


# -- fakes --------------------------------------------------------------------------------
@dataclass
class Fakes:
    """A local and a paid fake, their responders and the pool pointing at them."""

    local: FakeOpenAIServer
    paid: FakeOpenAIServer
    local_agent: AgentResponder
    paid_agent: AgentResponder
    pool: ModelPool

    def chat(self, graph: str, **params: Any) -> CollaborativeChatModel:
        return CollaborativeChatModel(graph=graph, pool=self.pool, params=params)


@pytest.fixture
def make_fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
               ) -> Iterator[Callable[..., Fakes]]:
    """``make_fakes(**knobs)``: fresh fakes whose *local* responder has ``knobs`` (the
    paid one behaves)."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    with ExitStack() as stack:
        def make(**knobs: float) -> Fakes:
            local_agent, paid_agent = agent_responder(seed=3, **knobs), agent_responder(seed=4)
            local = stack.enter_context(FakeOpenAIServer(responder=local_agent))
            paid = stack.enter_context(FakeOpenAIServer(responder=paid_agent))
            path = write_pool(tmp_path / "pool.yaml", [
                local_entry("small", "m-small", local.base_url),
                paid_entry("big", "m-big", paid.base_url, key_env=KEY_ENV, price=PRICE),
            ])
            return Fakes(local, paid, local_agent, paid_agent, ModelPool.from_yaml(path))

        yield make


class StepEvents(BaseCallbackHandler):
    """The ``colm_step`` events of every chat-model run, by run, in order."""

    def __init__(self) -> None:
        self.runs: dict[UUID, list[dict[str, Any]]] = {}

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if name == STEP_EVENT:
            self.runs.setdefault(run_id, []).append(data)

    def node(self, name: str) -> list[dict[str, Any]]:
        """The event of node ``name`` in each run (runs in order; ``{}`` where it did not
        run)."""
        return [next((e for e in events if e["node"] == name), {})
                for events in self.runs.values()]


@dataclass
class Step:
    """One agent step: its reply and what the ledger says of it."""

    message: AIMessage
    answered_by: str
    paid_calls: int
    local_calls: int

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [(c["name"], c["args"]) for c in self.message.tool_calls]


def steps_of(messages: Sequence[BaseMessage]) -> list[Step]:
    out = []
    for m in messages:
        if isinstance(m, AIMessage):
            totals = m.response_metadata["ledger_totals"]
            out.append(Step(m, m.response_metadata["answered_by"], totals["paid_calls"],
                            totals["local_calls"]))
    return out


def converse(agent: Any, handler: StepEvents) -> list[BaseMessage]:
    """The agent's conversation after every turn of :data:`TURNS`."""
    messages: list[BaseMessage] = []
    for turn in TURNS:
        out = agent.invoke({"messages": [*messages, HumanMessage(turn)]},
                           config={"callbacks": [handler]})
        messages = out["messages"]
    return messages


async def aconverse(agent: Any, handler: StepEvents) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for turn in TURNS:
        out = await agent.ainvoke({"messages": [*messages, HumanMessage(turn)]},
                                  config={"callbacks": [handler]})
        messages = out["messages"]
    return messages


def check_conversation(messages: Sequence[BaseMessage]) -> list[Step]:
    """The tools ran with the arguments the fakes took from the user's words, and the last
    reply states the chained result; the steps, in order."""
    results = [m for m in messages if isinstance(m, ToolMessage)]
    assert [(m.name, m.content) for m in results] == TOOL_RESULTS
    assert all(m.status == "success" for m in results)
    steps = steps_of(messages)
    # one step with calls and one final reply per turn (the second turn's calls in parallel)
    assert [len(s.calls) for s in steps] == [1, 0, 2, 0, 1, 0]
    ids = [c["id"] for s in steps for c in s.message.tool_calls]
    assert [m.tool_call_id for m in results] == ids
    assert [s.message.response_metadata["finish_reason"] for s in steps[0::2]] == \
        ["tool_calls"] * 3
    last = steps[-1].message
    assert not last.tool_calls and last.response_metadata["finish_reason"] == "stop"
    assert FINAL in last.text
    return steps


def check_ledger(step: Step, paid: bool) -> None:
    """The step was answered by the paid (else the local) model, with a valid reply, and
    cost money exactly when it was paid."""
    assert step.answered_by == ("big" if paid else "small")
    assert step.message.response_metadata.get("invalid") is None
    assert (step.message.response_metadata["ledger_totals"]["paid_usd"] > 0) == paid


def tools_offered(fake: FakeOpenAIServer) -> list[list[str]]:
    return [[t["function"]["name"] for t in r["body"].get("tools") or ()]
            for r in fake.chat_requests]


# -- route ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_route_agent_sends_each_step_where_its_score_says(make_fakes, mode):
    fakes = make_fakes()
    agent = create_agent(model=fakes.chat("route", threshold=ROUTE_THRESHOLD), tools=TOOLS,
                         system_prompt=SYSTEM)
    handler = StepEvents()
    messages = (converse(agent, handler) if mode == "sync"
                else await aconverse(agent, handler))
    steps = check_conversation(messages)

    scores = [e["score"] for e in handler.node("score")]
    assert len(scores) == len(steps) == 6
    routed_paid = [s > ROUTE_THRESHOLD for s in scores]
    # the question grows with the conversation, and with it the heuristic score: the
    # threshold splits the steps, the early ones local, the later ones paid
    assert scores == sorted(scores)
    assert 0 < sum(routed_paid) < len(steps)
    for step, paid in zip(steps, routed_paid, strict=True):
        check_ledger(step, paid)
        assert (step.paid_calls, step.local_calls) == ((1, 0) if paid else (0, 1))

    paid_steps = [s for s, p in zip(steps, routed_paid, strict=True) if p]
    local_steps = [s for s, p in zip(steps, routed_paid, strict=True) if not p]
    # the paid share, as the router decided it, as the ledger counts it and as the fakes
    # saw it: each fake got exactly the steps routed to it, every one with the three tools
    by_router = len(paid_steps) / len(steps)
    by_ledger = sum(s.paid_calls for s in steps) / sum(s.paid_calls + s.local_calls
                                                       for s in steps)
    requests = len(fakes.paid.chat_requests), len(fakes.local.chat_requests)
    assert by_router == by_ledger == requests[0] / sum(requests)
    assert requests == (len(paid_steps), len(local_steps))
    assert tools_offered(fakes.paid) + tools_offered(fakes.local) == \
        [["add", "multiply", "lookup"]] * len(steps)
    # the answering model got the agent's conversation as it stood, tool results and all
    roles = [ROLES[m.type] for m in messages]
    position = {id(m): i for i, m in enumerate(messages)}
    for fake_steps, fake in ((paid_steps, fakes.paid), (local_steps, fakes.local)):
        sent = [[m["role"] for m in r["body"]["messages"]] for r in fake.chat_requests]
        assert sent == [["system", *roles[:position[id(s.message)]]] for s in fake_steps]
    assert all(r["body"]["messages"][0]["content"] == SYSTEM
               for r in fakes.paid.chat_requests + fakes.local.chat_requests)
    # and each step's calls are the ones its model decided on
    for fake_steps, agent_ in ((paid_steps, fakes.paid_agent), (local_steps,
                                                                fakes.local_agent)):
        decided = [[(c["name"], c["args"]) for c in d.tool_calls]
                   for d in agent_.decisions.snapshot()]
        assert [s.calls for s in fake_steps] == decided
    # the paid spend is the paid fake's usage at the paid price
    spent = sum(s.message.response_metadata["ledger_totals"]["paid_usd"] for s in steps)
    billed = sum(r["prompt_tokens"] * PRICE[0] + r["completion_tokens"] * PRICE[1]
                 for r in fakes.paid.chat_requests) / 1e6
    assert spent == pytest.approx(billed)
    assert SECRET not in json.dumps([s.message.response_metadata for s in steps])


# -- cascade --------------------------------------------------------------------------------
def test_cascade_agent_escalates_every_call_the_local_model_garbles(make_fakes):
    fakes = make_fakes(invalid_args=1.0)
    agent = create_agent(model=fakes.chat("cascade"), tools=TOOLS)
    handler = StepEvents()
    steps = check_conversation(converse(agent, handler))

    tool_steps, final_steps = steps[0::2], steps[1::2]
    # every local sample of a tool step sent arguments that are not JSON: no agreement,
    # the paid model answers, and its valid calls are the reply
    local = fakes.local_agent.decisions.snapshot()
    assert len(local) == 3 * len(steps)
    calls = [d for d in local if d.kind == "tool_calls"]
    assert len(calls) == 3 * len(tool_steps)
    assert all("invalid_args" in d.misbehaviours for d in calls)
    verify = [e["score"] for e in handler.node("verify")]
    assert verify[0::2] == [0.0] * len(tool_steps)
    for step in tool_steps:
        check_ledger(step, paid=True)
        assert (step.paid_calls, step.local_calls) == (1, 3)
    paid = fakes.paid_agent.decisions.snapshot()
    assert [s.calls for s in tool_steps] == [[(c["name"], c["args"]) for c in d.tool_calls]
                                            for d in paid]
    # the final replies are text, which the local model writes well: its samples agree
    assert verify[1::2] == [1.0] * len(final_steps)
    for step in final_steps:
        check_ledger(step, paid=False)
        assert (step.paid_calls, step.local_calls) == (0, 3)
    assert len(fakes.paid.chat_requests) == len(tool_steps)
    assert len(fakes.local.chat_requests) == 3 * len(steps)


@pytest.mark.parametrize("knobs", [{"preamble": 0.5},
                                   {"text_tool_calls": 1.0, "think": 1.0}],
                         ids=["preamble", "hermes_text_calls"])
def test_cascade_agent_with_a_sound_local_model_never_pays(make_fakes, knobs):
    """Quirks that do not change what a reply does (a preamble beside the calls, calls
    written as ``<tool_call>`` text, a ``<think>`` block) are no reason to escalate."""
    fakes = make_fakes(**knobs)
    agent = create_agent(model=fakes.chat("cascade"), tools=TOOLS)
    handler = StepEvents()
    steps = check_conversation(converse(agent, handler))
    assert [e["score"] for e in handler.node("verify")] == [1.0] * len(steps)
    for step in steps:
        check_ledger(step, paid=False)
        assert (step.paid_calls, step.local_calls) == (0, 3)
        assert "<tool_call>" not in step.message.text  # read back as calls
    assert fakes.paid.chat_requests == []
    assert len(fakes.local.chat_requests) == 3 * len(steps)
    # every quirk showed up, and the samples agreed by what they do, not word for word:
    # the final replies are phrased differently
    decisions = fakes.local_agent.decisions.snapshot()
    fired = {k for d in decisions for k in d.misbehaviours}
    assert fired == set(knobs)
    kinds = [d.kind for d in decisions]
    assert kinds.count("text_tool_calls" if "text_tool_calls" in knobs else "tool_calls") == 9
    finals = [decisions[i:i + 3] for i in range(0, len(decisions), 3)][1::2]
    assert all(d.kind == "final" for trio in finals for d in trio)
    assert any(len({d.content for d in trio}) > 1 for trio in finals)


# -- structured output ------------------------------------------------------------------------
class Order(BaseModel):
    """An order for a catalogue item."""

    item: str = Field(description="the catalogue item")
    quantity: int = Field(description="how many units", ge=1)


class Contact(BaseModel):
    """A contact."""

    name: str = Field(description="full name")
    city: str = Field(description="the city they live in")


ORDER = "Order 3 units of the 'widget'."
CONTACT = "Ada Lovelace lives in London; save her as a contact."
CONTACT_JSON = CONTACT + " Return a JSON object with the keys name and city."


def check_raw_shape(out: Any) -> AIMessage:
    assert isinstance(out, dict) and set(out) == {"raw", "parsed", "parsing_error"}
    assert isinstance(out["raw"], AIMessage)
    return out["raw"]


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_cascade_structured_output_escalates_a_reply_that_does_not_validate(make_fakes,
                                                                           method):
    fakes = make_fakes(wrong_types=1.0)  # the quantity sent as "3"
    out = fakes.chat("cascade").with_structured_output(
        Order, method=method, include_raw=True).invoke(ORDER)
    raw = check_raw_shape(out)
    assert out["parsing_error"] is None
    assert out["parsed"] == Order(item="widget", quantity=3)
    assert raw.response_metadata["answered_by"] == "big"
    assert raw.response_metadata["ledger_totals"]["paid_calls"] == 1
    local = fakes.local_agent.decisions.snapshot()
    assert len(local) == 3 and all(d.misbehaviours == ("wrong_types",) for d in local)
    assert len(fakes.paid.chat_requests) == 1
    body = fakes.paid.chat_requests[0]["body"]
    if method == "function_calling":
        assert body["tool_choice"] == {"type": "function", "function": {"name": "Order"}}
        assert raw.tool_calls[0]["args"] == {"item": "widget", "quantity": 3}
    else:
        assert body["response_format"]["json_schema"]["schema"]["required"] == ["item",
                                                                               "quantity"]
        assert json.loads(raw.text) == {"item": "widget", "quantity": 3}


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
def test_cascade_reads_fenced_json_without_paying(make_fakes, method):
    fakes = make_fakes(fenced_json=1.0)
    out = fakes.chat("cascade").with_structured_output(
        Contact, method=method, include_raw=True).invoke(CONTACT_JSON)
    raw = check_raw_shape(out)
    assert out["parsing_error"] is None
    assert out["parsed"] == Contact(name="Ada Lovelace", city="London")
    assert "```json" in raw.text  # the local model's own reply, fence and all
    assert raw.response_metadata["answered_by"] == "small"
    assert fakes.paid.chat_requests == []
    assert all(d.misbehaviours == ("fenced_json",)
               for d in fakes.local_agent.decisions.snapshot())


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_route_structured_output_follows_the_router(make_fakes, method):
    """A route checks the reply but does not escalate: below the threshold the local reply
    that leaves out a required field comes back flagged, and does not parse; above it the
    paid model's does."""
    fakes = make_fakes(wrong_types=1.0)  # strings only: a required field is left out
    low = fakes.chat("route", threshold=1.0).with_structured_output(
        Contact, method=method, include_raw=True).invoke(CONTACT)
    raw = check_raw_shape(low)
    sent = raw.tool_calls[0]["args"] if method == "function_calling" else json.loads(raw.text)
    (missing,) = {"name", "city"} - set(sent)
    assert low["parsed"] is None
    assert isinstance(low["parsing_error"], Exception)
    assert missing in str(low["parsing_error"])
    assert raw.response_metadata["answered_by"] == "small"
    assert f"'{missing}' is a required property" in raw.response_metadata["invalid"]
    assert fakes.paid.chat_requests == []

    high = fakes.chat("route", threshold=0.0).with_structured_output(
        Contact, method=method, include_raw=True).invoke(CONTACT)
    raw = check_raw_shape(high)
    assert high["parsing_error"] is None
    assert high["parsed"] == Contact(name="Ada Lovelace", city="London")
    assert raw.response_metadata["answered_by"] == "big"
    assert raw.response_metadata.get("invalid") is None
    assert len(fakes.paid.chat_requests) == 1 and len(fakes.local.chat_requests) == 1


def test_structured_output_without_include_raw_is_the_parsed_value(make_fakes):
    fakes = make_fakes(wrong_types=1.0)
    schema = Order.model_json_schema()
    parsed = fakes.chat("cascade").with_structured_output(schema).invoke(ORDER)
    assert parsed == {"item": "widget", "quantity": 3}
    assert len(fakes.paid.chat_requests) == 1


class Total(BaseModel):
    """The total the tools computed."""

    total: int


def test_agent_with_a_provider_strategy_gets_tools_and_a_response_format(make_fakes):
    from langchain.agents.structured_output import ProviderStrategy

    fakes = make_fakes()
    agent = create_agent(model=fakes.chat("route", threshold=ROUTE_THRESHOLD), tools=[add],
                         response_format=ProviderStrategy(Total))
    out = agent.invoke({"messages": [HumanMessage("Add 36 and 30.")]})
    assert out["structured_response"] == Total(total=66)


# -- variants that cannot call tools ---------------------------------------------------------------
REFUSING = ("colm", "cope", "moa", "debate", "self_consistency")


def check_refusal(message: str, variant: str, what: str) -> None:
    assert "\n" not in message
    assert message.startswith(f"{what}: variant {variant!r} cannot call tools")
    for name in ("single", "route", "cascade", f"protocol_tool({variant!r})"):
        assert name in message


@pytest.mark.parametrize("variant", REFUSING)
def test_variants_whose_reply_is_not_one_call_refuse_tools_in_one_line(variant):
    chat = CollaborativeChatModel(graph=variant)
    with pytest.raises(ColmGraphError) as bound:
        chat.bind_tools(TOOLS)
    check_refusal(str(bound.value), variant, "bind_tools")
    with pytest.raises(ColmGraphError) as structured:
        chat.with_structured_output(Order)
    check_refusal(str(structured.value), variant, "with_structured_output")
    with pytest.raises(ColmGraphError) as called:  # tools given per call
        chat.invoke("Add 2 and 3.", tools=[add])
    check_refusal(str(called.value), variant, "tools")


def test_an_agent_on_colm_fails_with_the_refusal_before_any_model_call(make_fakes):
    fakes = make_fakes()
    agent = create_agent(model=fakes.chat("colm"), tools=TOOLS)
    with pytest.raises(ColmGraphError) as failed:
        agent.invoke({"messages": [HumanMessage("Add 2 and 3.")]})
    assert not isinstance(failed.value, NotImplementedError)
    check_refusal(str(failed.value), "colm", "bind_tools")
    assert fakes.local.chat_requests == [] and fakes.paid.chat_requests == []


def test_tool_variants_accept_tools_where_colm_refuses(make_fakes):
    fakes = make_fakes()
    for variant in ("single", "route", "cascade"):
        reply = fakes.chat(variant).bind_tools([add]).invoke("Add 2 and 3.")
        assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("add",
                                                                      {"a": 2, "b": 3})]


def test_a_paid_tool_call_stream_dropped_half_way_falls_back_to_the_local_call(
        tmp_path, monkeypatch):
    """Real providers drop streams: the paid model's streamed tool call stops half-way,
    without ``[DONE]`` (its arguments cut off). The run answers with the local model's
    call, checked, and says it is degraded; no half call reaches the agent."""
    from tests.support.openai_server import FaultServer

    monkeypatch.setenv(KEY_ENV, SECRET)
    local_agent, paid_agent = agent_responder(seed=3), agent_responder(seed=4)
    with FakeOpenAIServer(responder=local_agent) as local, \
            FaultServer({"m-big": ["truncated"]}, responder=paid_agent,
                        stream_pieces=4) as paid:
        pool = ModelPool.from_yaml(write_pool(tmp_path / "pool.yaml", [
            local_entry("small", "m-small", local.base_url),
            paid_entry("big", "m-big", paid.base_url, key_env=KEY_ENV, price=PRICE),
        ]))
        chat = CollaborativeChatModel(graph="route", pool=pool, params={"threshold": 0.0})
        reply = chat.bind_tools(TOOLS).invoke("Use add to compute 36 plus 30.")
        assert len(paid.chat_requests) >= 1  # the paid model was asked, and cut off
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("add", {"a": 36, "b": 30})]
    meta = reply.response_metadata
    assert meta["answered_by"] == "small" and "invalid" not in meta
    assert meta["degraded"] is True
