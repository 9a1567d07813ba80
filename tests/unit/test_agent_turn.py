"""Agent turns (:mod:`colm_graph.core.agent`): what a request with tools or a response format
asks, how a reply is checked against it, and which variants take one.

The replies here are ``AIMessage`` objects as ``ChatOpenAI`` builds them from what real
servers send (tool calls, ``invalid_tool_calls`` for arguments that are not JSON, Hermes
``<tool_call>`` blocks from a vLLM without a tool parser, ``<think>`` blocks, fences); the
variants run over the built-in simulator, whose models call tools too."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from colm_graph.core.agent import AgentTurn, agent_turn, json_of_reply, tool_choice_of
from colm_graph.core.messages import Conversation, Turn, messages_to_input
from colm_graph.errors import ColmGraphError, ConfigError
from colm_graph.integrations.chat_model import CollaborativeChatModel
from colm_graph.pool import ModelPool
from colm_graph.spec import load_spec
from colm_graph.spec.reply import TOOL_VARIANTS, tools_refusal


@tool
def add(a: int, b: int) -> int:
    """Add two integers a and b."""
    return a + b


@tool
def get_weather(location: str, unit: str = "celsius") -> str:
    """Get the current weather for a location."""
    return f"18 degrees {unit} in {location}"


class Person(BaseModel):
    """A person's name and age."""

    name: str
    age: int = Field(ge=0)


def _turn(**kw: Any) -> AgentTurn:
    kw.setdefault("tools", [add, get_weather])
    turn = AgentTurn.of([HumanMessage("What is 3 plus 4?")], **kw)
    assert turn is not None
    return turn


def _call(name: str, args: dict[str, Any], cid: str = "call_1") -> dict[str, Any]:
    return {"name": name, "args": args, "id": cid, "type": "tool_call"}


# -- the request ----------------------------------------------------------------------------
@pytest.mark.parametrize(("choice", "expected"), [
    (None, None),
    ("auto", "auto"),
    ("none", "none"),
    ("required", "required"),
    ("any", "required"),
    ("add", {"type": "function", "function": {"name": "add"}}),
    ({"type": "function", "function": {"name": "get_weather"}},
     {"type": "function", "function": {"name": "get_weather"}}),
    ({"type": "required"}, "required"),
])
def test_tool_choice_is_normalised_to_what_the_openai_api_takes(choice: Any,
                                                                 expected: Any) -> None:
    assert _turn(tool_choice=choice).tool_choice == expected


def test_tool_choice_true_means_the_one_tool_and_needs_exactly_one() -> None:
    assert _turn(tools=[add], tool_choice=True).tool_choice == {
        "type": "function", "function": {"name": "add"}}
    with pytest.raises(ConfigError, match="true needs exactly one tool, got 2"):
        _turn(tool_choice=True)


@pytest.mark.parametrize(("kw", "message"), [
    ({"tool_choice": "multiply"},
     r"bind_tools.tool_choice: 'multiply' is not 'auto', 'none', 'required' or one of the"
     r" tools \(add, get_weather\)"),
    ({"tool_choice": {"type": "function", "function": {"name": "nope"}}},
     r"bind_tools.tool_choice: expected .*one of add, get_weather"),
    ({"tool_choice": 3}, r"bind_tools.tool_choice: expected a string or an object, got int"),
    ({"tools": [], "tool_choice": "required"},
     r"bind_tools.tool_choice: 'required' needs tools; none are given"),
    ({"tools": [add, add]}, r"bind_tools.tools: the tool name 'add' is given twice"),
    ({"tools": [add, 42]}, r"bind_tools.tools\[1\]: not a tool LangChain can describe"),
    ({"parallel_tool_calls": "yes"},
     r"bind_tools.parallel_tool_calls: expected true or false, got 'yes'"),
    ({"response_format": {"type": "xml"}},
     r"bind_tools.response_format: expected \{'type': 'text' \| 'json_object'"),
    ({"response_format": {"type": "json_schema", "json_schema": "Person"}},
     r"bind_tools.response_format.json_schema: expected \{'name'"),
    ({"response_format": {"type": "json_schema", "json_schema": {
        "name": "P", "schema": {"properties": {"a": {"type": "frob"}}}}}},
     r"bind_tools.response_format.json_schema.schema: not a valid JSON Schema at"
     r" properties/a/type: 'frob' is not valid"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "required": "a"}}}]},
     r"bind_tools.tools\[0\].function.parameters: not a valid JSON Schema at required:"),
])
def test_a_bad_setting_is_one_line_naming_the_field(kw: dict[str, Any], message: str) -> None:
    kw.setdefault("tools", [add, get_weather])
    with pytest.raises(ConfigError, match=message) as info:
        AgentTurn.of([HumanMessage("hi")], where="bind_tools", **kw)
    assert "\n" not in str(info.value)


def test_a_plain_question_is_no_turn_and_tool_results_make_one() -> None:
    assert AgentTurn.of([HumanMessage("hi")]) is None
    assert AgentTurn.of([HumanMessage("hi")], tools=[], tool_choice="none",
                        response_format={"type": "text"}) is None
    history = [HumanMessage("What is 3 plus 4?"), AIMessage("", tool_calls=[
        _call("add", {"a": 3, "b": 4})]), ToolMessage("7", tool_call_id="call_1")]
    turn = AgentTurn.of(history)
    assert turn is not None and turn.tools == () and turn.messages == tuple(history)


def test_the_call_sends_what_was_set_in_openai_format() -> None:
    turn = _turn(tool_choice="add", parallel_tool_calls=False)
    kwargs = turn.call_kwargs()
    assert [t["function"]["name"] for t in kwargs["tools"]] == ["add", "get_weather"]
    assert kwargs["tools"][0]["function"]["parameters"]["required"] == ["a", "b"]
    assert kwargs["tool_choice"] == {"type": "function", "function": {"name": "add"}}
    assert kwargs["parallel_tool_calls"] is False
    assert "response_format" not in kwargs
    fmt = {"type": "json_object"}
    assert AgentTurn.of([HumanMessage("x")], response_format=fmt).call_kwargs() == {
        "response_format": fmt}
    assert turn.schema("nope") is None and turn.forced() == "add"


def test_the_turn_travels_in_the_run_config() -> None:
    turn = _turn()
    assert agent_turn({"configurable": {"colm_turn": turn}}) is turn
    assert agent_turn({"configurable": {"colm_turn": "not a turn"}}) is None
    assert agent_turn(None) is None


# -- the reply ------------------------------------------------------------------------------
def test_a_valid_call_has_a_canonical_answer_whatever_the_argument_order() -> None:
    turn = _turn()
    one = turn.read(AIMessage("", tool_calls=[_call("add", {"a": 3, "b": 4})]))
    two = turn.read(AIMessage("Let me add those.",
                              tool_calls=[_call("add", {"b": 4, "a": 3}, "call_9")]))
    assert one.invalid is None and one.answer is not None
    assert one.answer.startswith('add {"a": 3, "b": 4} #')
    assert two.answer == one.answer
    assert two.tool_calls == [{"name": "add", "args": {"b": 4, "a": 3}, "id": "call_9"}]


def test_calls_that_differ_only_in_what_text_normalisation_drops_stay_apart() -> None:
    from colm_graph.core.answers import answers_match

    turn = AgentTurn.of([HumanMessage("x")], tools=[{
        "type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])
    assert turn is not None
    one = turn.read(AIMessage("", tool_calls=[_call("f", {"a": 3})])).answer
    other = turn.read(AIMessage("", tool_calls=[_call("f", {"the": 3})])).answer
    same = turn.read(AIMessage("", tool_calls=[_call("f", {"a": 3}, "call_7")])).answer
    assert answers_match(one, same, kind="text")
    assert not answers_match(one, other, kind="text")


@pytest.mark.parametrize(("calls", "kw", "invalid"), [
    ([_call("multiply", {"a": 3, "b": 4})], {},
     "the reply calls 'multiply', which is not one of the tools (add, get_weather)"),
    ([_call("add", {"a": 3})], {}, "tool 'add' arguments: the value: 'b' is a required"),
    ([_call("add", {"a": "3", "b": 4})], {}, "tool 'add' arguments: a: '3' is not of type"),
    ([], {"tool_choice": "required"}, "tool_choice 'required': the reply calls no tool"),
    ([], {"tool_choice": "add"}, "tool_choice 'add': the reply calls no tool"),
    ([_call("get_weather", {"location": "Paris"})], {"tool_choice": "add"},
     "tool_choice 'add': the reply calls 'get_weather'"),
    ([_call("add", {"a": 3, "b": 4})], {"tool_choice": "none"},
     "tool_choice 'none': the reply calls 'add'"),
    ([_call("add", {"a": 3, "b": 4}), _call("add", {"a": 1, "b": 2}, "call_2")],
     {"parallel_tool_calls": False}, "parallel_tool_calls false: the reply makes 2 calls"),
])
def test_a_call_that_does_not_do_what_was_asked_has_no_answer(
        calls: list[dict[str, Any]], kw: dict[str, Any], invalid: str) -> None:
    reading = _turn(**kw).read(AIMessage("I think the answer is 7.", tool_calls=calls))
    assert reading.answer is None
    assert reading.invalid is not None and reading.invalid.startswith(invalid)


def test_arguments_that_are_not_json_are_invalid() -> None:
    # what ChatOpenAI builds from arguments "{'a': 3, 'b': 4}" (a Python dict, not JSON)
    reply = AIMessage("", invalid_tool_calls=[{
        "name": "add", "args": "{'a': 3, 'b': 4}", "id": "call_1", "error": "bad json",
        "type": "invalid_tool_call"}])
    reading = _turn().read(reply)
    assert reading.answer is None
    assert reading.invalid == "tool 'add': arguments are not valid JSON"


def test_hermes_tool_call_blocks_in_the_content_are_read_as_calls() -> None:
    text = ("<think>The user wants a sum.</think>\nI'll use the add tool.\n<tool_call>\n"
            '{"name": "add", "arguments": {"a": 3, "b": 4}}\n</tool_call>')
    reading = _turn().read(AIMessage(text))
    assert reading.invalid is None
    assert reading.answer == _turn().read(AIMessage("", tool_calls=[
        _call("add", {"a": 3, "b": 4})])).answer
    assert [c["name"] for c in reading.tool_calls] == ["add"]
    assert reading.content is not None and "<tool_call>" not in reading.content
    assert "I'll use the add tool." in reading.content
    # a block naming no tool of the request is left as text
    other = _turn().read(AIMessage('<tool_call>{"name": "rm", "arguments": {}}</tool_call>'))
    assert other.tool_calls == [] and other.content is None
    # without tools offered, nothing is recovered
    plain = AgentTurn.of([HumanMessage("x")], response_format={"type": "json_object"})
    assert plain is not None and plain.read(AIMessage(text)).tool_calls == []


def test_a_final_text_reply_answers_with_its_stated_answer() -> None:
    turn = _turn()
    reading = turn.read(AIMessage("**Result.** Adding gives 7.\n\nAnswer: 7"))
    assert reading.invalid is None and reading.tool_calls == [] and reading.answer == "7"
    assert turn.read(AIMessage("It is seven.")).answer == "seven"
    assert turn.read(AIMessage("  Sunny,   18 degrees in Paris. ")).answer == \
        "Sunny, 18 degrees in Paris."
    assert turn.read(AIMessage("<think>hmm</think>")).answer is None


def _person_turn() -> AgentTurn:
    fmt = {"type": "json_schema",
           "json_schema": {"name": "Person", "schema": Person.model_json_schema()}}
    turn = AgentTurn.of([HumanMessage("Anna is 31.")], response_format=fmt)
    assert turn is not None
    return turn


@pytest.mark.parametrize("text", [
    '{"name": "Anna", "age": 31}',
    '<think>Extract fields.</think>\n```json\n{"age": 31, "name": "Anna"}\n```',
    'Here is the JSON you asked for:\n```\n{"name": "Anna", "age": 31}\n```\nLet me know!',
])
def test_a_structured_reply_is_read_through_think_blocks_fences_and_chatter(text: str) -> None:
    reading = _person_turn().read(AIMessage(text))
    assert reading.invalid is None
    assert reading.structured == {"name": "Anna", "age": 31}
    assert reading.answer is not None
    assert reading.answer.startswith('{"age": 31, "name": "Anna"} #')


@pytest.mark.parametrize(("text", "invalid"), [
    ("Anna is 31 years old.", "response_format: the reply is not a JSON object"),
    ('["Anna", 31]', "response_format: the reply is not a JSON object"),
    ('{"name": "Anna", "age": "31"}', "response_format: age: '31' is not of type 'integer'"),
    ('{"name": "Anna", "age": -1}', "response_format: age: -1 is less than the minimum"),
    ('{"name": "Anna"}', "response_format: the value: 'age' is a required property"),
])
def test_a_structured_reply_that_does_not_validate_has_no_answer(text: str,
                                                                 invalid: str) -> None:
    reading = _person_turn().read(AIMessage(text))
    assert reading.answer is None
    assert reading.invalid is not None and reading.invalid.startswith(invalid)


def test_json_of_reply_finds_the_object_or_nothing() -> None:
    assert json_of_reply('Sure! {"a": 1} hope that helps') == {"a": 1}
    assert json_of_reply("no json here") is None
    assert json_of_reply("```json\n[1, 2]\n```") == [1, 2]


def test_tool_choice_of_without_tools_names_none() -> None:
    with pytest.raises(ConfigError, match=r"one of the tools \(none given\)"):
        tool_choice_of("add", [])


# -- the conversation as the router and the verifier read it --------------------------------
def test_tool_calls_and_results_are_part_of_the_question_text() -> None:
    history = [HumanMessage("What is 3 plus 4, times 2?"),
               AIMessage("", tool_calls=[_call("add", {"a": 3, "b": 4})]),
               ToolMessage("7", tool_call_id="call_1")]
    text = messages_to_input(history, trailing=True)["question"]
    assert "What is 3 plus 4, times 2?" in text
    assert 'add({"a": 3, "b": 4})' in text and "Tool result" in text and "7" in text
    assert "Tool result" not in messages_to_input(history[:1])["question"]


def test_trailing_turns_end_the_question_only_when_asked() -> None:
    conv = Conversation()
    for turn in (Turn("human", "Weather in Paris?"), Turn("ai", "called get_weather(...)"),
                 Turn("tool", "18 degrees")):
        conv.add(turn)
    assert "18 degrees" in conv.result(trailing=True)["question"]
    assert "18 degrees" not in conv.result()["question"]


# -- which variants take tools ----------------------------------------------------------------
@pytest.mark.parametrize("variant", ["colm", "cope", "moa", "debate", "self_consistency"])
def test_variants_whose_reply_is_not_one_call_refuse_tools_in_one_line(variant: str) -> None:
    chat = CollaborativeChatModel(graph=variant)
    for what, attempt in (("bind_tools", lambda: chat.bind_tools([add])),
                          ("with_structured_output",
                           lambda: chat.with_structured_output(Person))):
        with pytest.raises(ColmGraphError) as info:
            attempt()
        line = str(info.value)
        assert "\n" not in line and line.startswith(f"{what}: variant {variant!r} cannot")
        assert "(single, route, cascade, or a spec of that shape)" in line
        assert f"protocol_tool({variant!r})" in line


def test_the_shipped_tool_variants_are_the_ones_the_specs_allow() -> None:
    from colm_graph.spec.compile import reply_nodes_of

    allowed = []
    for name in ("single", "route", "cascade", "colm", "cope", "moa", "debate",
                 "self_consistency"):
        spec = load_spec(name)
        if tools_refusal(spec, reply_nodes_of(spec)) is None:
            allowed.append(name)
    assert tuple(allowed) == TOOL_VARIANTS


def test_a_user_spec_of_the_single_call_shape_takes_tools(tmp_path: Any) -> None:
    from colm_graph.spec.compile import reply_nodes_of

    one_call = tmp_path / "ask_local.yaml"
    one_call.write_text(
        "name: ask_local\nroles:\n  m: {tier: local, count: 1}\nnodes:\n"
        "  ask: {kind: answer, role: m}\n  finish: {kind: finish}\nedges:\n"
        "  - {from: START, to: ask}\n  - {from: ask, to: finish}\n"
        "  - {from: finish, to: END}\n", encoding="utf-8")
    voted = tmp_path / "voted.yaml"
    voted.write_text(
        "name: voted\nroles:\n  m: {tier: local, count: 1}\nnodes:\n"
        "  ask: {kind: answer, role: m, samples: 3}\n  tally: {kind: vote}\n"
        "  finish: {kind: finish, options: {output: majority}}\nedges:\n"
        "  - {from: START, to: ask}\n  - {from: ask, to: tally}\n"
        "  - {from: tally, to: finish}\n  - {from: finish, to: END}\n", encoding="utf-8")
    assert tools_refusal(load_spec(one_call), reply_nodes_of(load_spec(one_call))) is None
    reason = tools_refusal(load_spec(voted), reply_nodes_of(load_spec(voted)))
    assert reason == "its reply is a vote over several samples, not one model call"
    chat = CollaborativeChatModel(graph=str(one_call))
    reply = chat.bind_tools([add]).invoke("Use the add tool: what is 12 plus 30?")
    assert [c["name"] for c in reply.tool_calls] == ["add"]


# -- the simulator's models call tools --------------------------------------------------------
@pytest.mark.parametrize("variant", ["single", "route", "cascade"])
def test_tool_variants_reply_with_the_answering_models_tool_calls(variant: str) -> None:
    chat = CollaborativeChatModel(graph=variant).bind_tools([add, get_weather])
    question = "Use the add tool to compute 12 plus 30."
    reply = chat.invoke(question)
    assert isinstance(reply, AIMessage)
    assert [c["name"] for c in reply.tool_calls] == ["add"]
    meta = reply.response_metadata
    assert meta["finish_reason"] == "tool_calls"
    assert meta["answered_by"].startswith("sim-")
    if reply.tool_calls[0]["args"] != {"a": 12, "b": 30}:
        # a small model's slip is passed on (single, route) and says what is wrong
        assert variant != "cascade", "a cascade escalates a call that does not check out"
        assert meta["invalid"].startswith("tool 'add' arguments: the value: '")
    else:
        assert "invalid" not in meta
    follow = chat.invoke([HumanMessage(question), reply,
                          ToolMessage("42", tool_call_id=reply.tool_calls[0]["id"])])
    assert follow.tool_calls == [] and "42" in follow.text
    assert follow.response_metadata["finish_reason"] == "stop"


def _clumsy_pool(tmp_path: Any) -> ModelPool:
    """The local model always leaves a required field out; the paid one never does."""
    path = tmp_path / "pool.yaml"
    path.write_text(
        "models:\n"
        "  - {name: clumsy, provider: sim, tier: local, sim: {tool_slip: 1.0, seed: 3}}\n"
        "  - {name: careful, provider: sim, tier: paid, price: {input: 1.0, output: 2.0},\n"
        "     sim: {tool_slip: 0.0, default_skill: 0.9, seed: 4}}\n"
        "server: careful\n", encoding="utf-8")
    return ModelPool.from_yaml(path)


def test_a_cascade_escalates_a_local_call_that_does_not_check_out(tmp_path: Any) -> None:
    question = "Use the add tool to compute 12 plus 30."
    pool = _clumsy_pool(tmp_path)
    routed = CollaborativeChatModel(graph="route", pool=pool, params={"threshold": 1.0})
    local = routed.bind_tools([add]).invoke(question)
    assert local.response_metadata["answered_by"] == "clumsy"
    assert local.response_metadata["invalid"].startswith("tool 'add' arguments: the value:")
    cascaded = CollaborativeChatModel(graph="cascade", pool=pool).bind_tools([add])
    reply = cascaded.invoke(question)
    assert reply.tool_calls[0]["args"] == {"a": 12, "b": 30}
    assert "invalid" not in reply.response_metadata
    assert reply.response_metadata["answered_by"] == "careful"
    totals = reply.response_metadata["ledger_totals"]
    assert (totals["local_calls"], totals["paid_calls"]) == (3, 1)


def test_structured_output_falls_back_through_the_cascade(tmp_path: Any) -> None:
    pool = _clumsy_pool(tmp_path)
    chat = CollaborativeChatModel(graph="cascade", pool=pool)
    for method in ("function_calling", "json_schema"):
        out = chat.with_structured_output(Person, method=method, include_raw=True).invoke(
            "Extract the person: name is Anna, age is 31.")
        assert out["parsed"] == Person(name="Anna", age=31) and out["parsing_error"] is None
        assert out["raw"].response_metadata["answered_by"] == "careful"


def test_structured_output_over_the_simulator_validates() -> None:
    chat = CollaborativeChatModel(graph="single")
    person = chat.with_structured_output(Person).invoke(
        "Extract the person: name is Anna, age is 31.")
    assert person == Person(name="Anna", age=31)
    raw = chat.with_structured_output(Person, method="json_schema", include_raw=True).invoke(
        "Extract the person: name is Anna, age is 31.")
    assert set(raw) == {"raw", "parsed", "parsing_error"}
    assert raw["parsed"] == Person(name="Anna", age=31) and raw["parsing_error"] is None
