"""The tool-calling fakes (``tests/support/tool_fakes.py``'s ``agent_responder`` behind
``tests/support/openai_server.py``'s ``FakeOpenAIServer``) seen through the real
``langchain_openai.ChatOpenAI`` over HTTP: tool calls from the user's words, forced and
parallel calls, a final answer from a tool result, streamed tool-call deltas merged by
LangChain, structured output by each method, and every misbehaviour knob showing up the way
a real model's would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from tests.support.openai_server import FakeOpenAIServer
from tests.support.tool_fakes import AgentResponder, agent_responder, parse_text_tool_calls

pytestmark = pytest.mark.integration


@tool
def get_weather(location: str) -> str:
    """Get the current weather for a location."""
    return f"It is sunny in {location}."


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(description="The person's name")
    age: int = Field(description="The person's age in years")


class Place(BaseModel):
    """A city and its country."""

    city: str
    country: str


ARITH = "What is 3 + 4? Also, what is 5 * 6?"


@pytest.fixture
def srv() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(responder=agent_responder()) as server:
        yield server


def chat(server: FakeOpenAIServer, **kw: Any) -> ChatOpenAI:
    return ChatOpenAI(base_url=server.base_url, api_key="sk-test", model="fake",
                      max_retries=0, **kw)


def responder(server: FakeOpenAIServer) -> AgentResponder:
    r = server.responder
    assert isinstance(r, AgentResponder)
    return r


def misbehaving(server: FakeOpenAIServer, knob: str) -> AgentResponder:
    """Swap in a responder whose ``knob`` fires on every request."""
    r = agent_responder(**{knob: 1})
    server.responder = r
    return r


def calls(msg: AIMessage) -> list[tuple[str, dict[str, Any]]]:
    return [(c["name"], c["args"]) for c in msg.tool_calls]


# -- tool calls ---------------------------------------------------------------------------------
def test_tool_call_from_the_users_words(srv: FakeOpenAIServer) -> None:
    msg = chat(srv).bind_tools([get_weather]).invoke("What is the weather in Paris?")
    assert calls(msg) == [("get_weather", {"location": "Paris"})]
    assert msg.content == "" and not msg.invalid_tool_calls
    assert msg.response_metadata["finish_reason"] == "tool_calls"
    assert str(msg.tool_calls[0]["id"]).startswith("call_")
    body = srv.chat_requests[-1]["body"]
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]
    assert responder(srv).decisions[-1].kind == "tool_calls"


def test_pydantic_and_dict_tools(srv: FakeOpenAIServer) -> None:
    class lookup_person(BaseModel):  # noqa: N801 (a tool name, as models see it)
        """Look a person up by name."""

        name: str

    raw = {"type": "function", "function": {
        "name": "convert_currency", "description": "Convert an amount between currencies.",
        "parameters": {"type": "object", "properties": {
            "amount": {"type": "number"},
            "currency": {"type": "string", "enum": ["USD", "EUR", "GBP"]}},
            "required": ["amount", "currency"]}}}
    llm = chat(srv).bind_tools([lookup_person, raw])
    assert calls(llm.invoke("Please lookup_person for 'Ada Lovelace'.")) == [
        ("lookup_person", {"name": "Ada Lovelace"})]
    assert calls(llm.invoke("convert_currency: 12.5 in EUR")) == [
        ("convert_currency", {"amount": 12.5, "currency": "EUR"})]


def test_no_matching_tool_is_a_text_answer(srv: FakeOpenAIServer) -> None:
    msg = chat(srv).bind_tools([get_weather]).invoke("Hello!")
    assert msg.tool_calls == [] and isinstance(msg.content, str) and msg.content
    assert msg.response_metadata["finish_reason"] == "stop"
    assert responder(srv).decisions[-1].reason == "no_match"


@pytest.mark.parametrize(("choice", "expected"), [
    ("multiply", "multiply"),  # LangChain sends {"type": "function", "function": {...}}
    ("required", "add"),  # a call is required: the first tool when none matches
])
def test_tool_choice_forces_a_call(srv: FakeOpenAIServer, choice: str, expected: str) -> None:
    msg = chat(srv).bind_tools([add, multiply], tool_choice=choice).invoke(
        "Use the numbers 6 and 7.")
    assert calls(msg) == [(expected, {"a": 6, "b": 7})]
    sent = srv.chat_requests[-1]["body"]["tool_choice"]
    assert sent == ({"type": "function", "function": {"name": "multiply"}}
                    if choice == "multiply" else "required")


def test_tool_choice_none_answers_in_text(srv: FakeOpenAIServer) -> None:
    msg = chat(srv).bind_tools([add], tool_choice="none").invoke("What is 3 + 4?")
    assert msg.tool_calls == [] and "7" in str(msg.content)


def test_parallel_calls_and_parallel_tool_calls_false(srv: FakeOpenAIServer) -> None:
    both = chat(srv).bind_tools([add, multiply]).invoke(ARITH)
    assert calls(both) == [("add", {"a": 3, "b": 4}), ("multiply", {"a": 5, "b": 6})]
    assert len({c["id"] for c in both.tool_calls}) == 2
    one = chat(srv).bind_tools([add, multiply], parallel_tool_calls=False).invoke(ARITH)
    assert srv.chat_requests[-1]["body"]["parallel_tool_calls"] is False
    assert len(one.tool_calls) == 1 and calls(one)[0] in calls(both)


def test_tool_result_gets_a_final_answer(srv: FakeOpenAIServer) -> None:
    llm = chat(srv).bind_tools([add, multiply])
    question = HumanMessage("What is 3 + 4?")
    call = llm.invoke([question])
    assert calls(call) == [("add", {"a": 3, "b": 4})]
    result = add.invoke(call.tool_calls[0])  # a ToolMessage answering that call
    assert isinstance(result, ToolMessage) and result.content == "7"
    final = llm.invoke([question, call, result])
    assert final.tool_calls == [] and "7" in str(final.content)
    assert final.response_metadata["finish_reason"] == "stop"
    sent = srv.chat_requests[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == sent[2]["tool_call_id"] == call.tool_calls[0]["id"]
    assert responder(srv).decisions[-1].reason == "tool_result"


def test_streamed_tool_calls_merge_into_the_same_calls(srv: FakeOpenAIServer) -> None:
    llm = chat(srv).bind_tools([add, multiply])
    whole = llm.invoke(ARITH)
    chunks: list[Any] = list(llm.stream(ARITH))
    # per call a head delta and at least two argument fragments, plus role and finish chunks
    assert sum(len(c.tool_call_chunks) for c in chunks) >= 6
    merged = chunks[0]
    for c in chunks[1:]:
        merged += c
    assert isinstance(merged, AIMessageChunk)
    assert calls(merged) == calls(whole) and not merged.invalid_tool_calls
    assert merged.response_metadata["finish_reason"] == "tool_calls"
    assert srv.chat_requests[-1]["body"]["stream"] is True


# -- structured output ----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_structured_output(srv: FakeOpenAIServer, method: str) -> None:
    out = chat(srv).with_structured_output(Person, method=method).invoke(  # type: ignore[arg-type]
        "Alice is 30 years old.")
    assert out == Person(name="Alice", age=30)
    body = srv.chat_requests[-1]["body"]
    if method == "function_calling":
        assert body["tool_choice"] == {"type": "function", "function": {"name": "Person"}}
    else:
        assert body["response_format"]["type"] == "json_schema"
        assert responder(srv).decisions[-1].kind == "json"


def test_structured_output_json_mode(srv: FakeOpenAIServer) -> None:
    out = chat(srv).with_structured_output(Place, method="json_mode").invoke(
        "Paris is the capital of France. Reply in JSON with keys city and country.")
    assert out == Place(city="Paris", country="France")
    assert srv.chat_requests[-1]["body"]["response_format"] == {"type": "json_object"}


def test_json_mode_with_a_json_example(srv: FakeOpenAIServer) -> None:
    out = chat(srv).with_structured_output(Person, method="json_mode").invoke(
        'Alice is 30 years old. Answer in JSON, for example {"name": "Bob", "age": 1}.')
    assert out == Person(name="Alice", age=30)


# -- misbehaviour knobs ---------------------------------------------------------------------------
def test_invalid_args_are_invalid_tool_calls(srv: FakeOpenAIServer) -> None:
    misbehaving(srv, "invalid_args")
    llm = chat(srv).bind_tools([get_weather, add])
    for msg in (llm.invoke("What is the weather in Paris?"), llm.invoke("What is 3 + 4?")):
        assert msg.tool_calls == []
        (bad,) = msg.invalid_tool_calls
        assert bad["name"] in ("get_weather", "add") and bad["error"]
        with pytest.raises(json.JSONDecodeError):
            json.loads(bad["args"] or "")
    # streamed, LangChain's partial-JSON repair does not make them valid either
    merged: Any = None
    for chunk in llm.stream("What is 3 + 4?"):
        merged = chunk if merged is None else merged + chunk
    assert isinstance(merged, AIMessageChunk)
    assert merged.tool_calls == [] and len(merged.invalid_tool_calls) == 1


def test_text_tool_calls_are_hermes_blocks_in_the_content(srv: FakeOpenAIServer) -> None:
    r = misbehaving(srv, "text_tool_calls")
    msg = chat(srv).bind_tools([add, multiply]).invoke(ARITH)
    assert msg.tool_calls == [] and msg.invalid_tool_calls == []
    assert msg.response_metadata["finish_reason"] == "stop"
    content = str(msg.content)
    assert content.count("<tool_call>") == content.count("</tool_call>") == 2
    assert parse_text_tool_calls(content) == [
        {"name": "add", "arguments": {"a": 3, "b": 4}},
        {"name": "multiply", "arguments": {"a": 5, "b": 6}}]
    assert r.decisions[-1].kind == "text_tool_calls"


def test_think_block_before_the_content(srv: FakeOpenAIServer) -> None:
    misbehaving(srv, "think")
    llm = chat(srv).bind_tools([add])
    with_call = llm.invoke("What is 3 + 4?")
    assert calls(with_call) == [("add", {"a": 3, "b": 4})]
    assert str(with_call.content).startswith("<think>") and "</think>" in str(with_call.content)
    prose = chat(srv).invoke("What is 2 + 2?")
    text = str(prose.content)
    assert text.startswith("<think>") and text.split("</think>", 1)[1].strip().endswith("4")


def test_fenced_json_breaks_strict_parsing_not_json_mode(srv: FakeOpenAIServer) -> None:
    r = misbehaving(srv, "fenced_json")
    raw = chat(srv).bind(response_format={"type": "json_object"}).invoke(
        "Paris is the capital of France. Reply in JSON with keys city and country.")
    text = str(raw.content)
    assert "```json" in text and not text.lstrip().startswith("{")
    assert r.decisions[-1].misbehaviours == ("fenced_json",)
    # LangChain's json_mode parser reads Markdown fences; the json_schema method does not
    assert chat(srv).with_structured_output(Place, method="json_mode").invoke(
        "Paris is the capital of France. Reply in JSON with keys city and country."
    ) == Place(city="Paris", country="France")
    with pytest.raises(Exception, match="(?i)json"):
        chat(srv).with_structured_output(Person, method="json_schema").invoke(
            "Alice is 30 years old.")


def test_ignore_tools_even_when_forced(srv: FakeOpenAIServer) -> None:
    r = misbehaving(srv, "ignore_tools")
    msg = chat(srv).bind_tools([add], tool_choice="add").invoke("What is 3 + 4?")
    assert msg.tool_calls == [] and msg.invalid_tool_calls == []
    assert "7" in str(msg.content) and msg.response_metadata["finish_reason"] == "stop"
    assert r.decisions[-1].reason == "ignore_tools"


def test_wrong_types_are_valid_json_but_not_the_schema(srv: FakeOpenAIServer) -> None:
    misbehaving(srv, "wrong_types")
    msg = chat(srv).bind_tools([add]).invoke("What is 3 + 4?")
    ((name, args),) = calls(msg)
    assert name == "add" and not msg.invalid_tool_calls
    assert sorted(args.values(), key=str) in (["3", 4], [3, "4"])  # one number as a string
    # in JSON content too; pydantic's lax mode reads "30" as 30 again
    out = chat(srv).with_structured_output(Person, method="json_schema", include_raw=True
                                           ).invoke("Alice is 30 years old.")
    assert json.loads(out["raw"].content) == {"name": "Alice", "age": "30"}
    assert out["parsed"] == Person(name="Alice", age=30)


def test_knobs_are_deterministic_across_invoke_and_stream(srv: FakeOpenAIServer) -> None:
    r = agent_responder(seed=3, invalid_args=0.5)
    srv.responder = r
    llm = chat(srv).bind_tools([add])
    questions = [f"What is {n} + {n + 1}?" for n in range(8)]
    invoked = [bool(llm.invoke(q).invalid_tool_calls) for q in questions]
    streamed = []
    for q in questions:
        merged: Any = None
        for chunk in llm.stream(q):
            merged = chunk if merged is None else merged + chunk
        streamed.append(bool(merged.invalid_tool_calls))
    assert invoked == streamed and 0 < sum(invoked) < len(invoked)


# -- the server ---------------------------------------------------------------------------------
@pytest.mark.parametrize("tool_calls", [
    [{"name": "", "arguments": {}}],
    [{"name": "add", "arguments": 7}],
    "add",
])
def test_malformed_responder_tool_calls_are_a_500(srv: FakeOpenAIServer,
                                                  tool_calls: Any) -> None:
    import openai

    srv.responder = lambda body: {"tool_calls": tool_calls}
    with pytest.raises(openai.InternalServerError, match="responder raised"):
        chat(srv).invoke("hi")
    (record,) = srv.chat_requests
    assert record["status"] == 500 and record["behaviour"] == "responder-error"
