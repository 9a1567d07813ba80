"""Tool calling and structured output through ``colm-graph serve`` with the official ``openai``
client: a real uvicorn server on 127.0.0.1 over a pool whose local (``small``) and paid
(``big``) models are two ``FakeOpenAIServer``s answering like small tool-calling models
(``tests/support/tool_fakes.py``). ``single`` answers with the paid model, ``route`` (the
heuristic scorer on short questions) with the local one, ``cascade`` with three local samples
and escalates to the paid model when they do not check out."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import pytest

from colm_graph import ModelPool
from colm_graph.integrations.serve import create_app
from tests.support.openai_server import FakeOpenAIServer
from tests.support.pools import local_entry, paid_entry, write_pool
from tests.support.serving import serving
from tests.support.tool_fakes import AgentResponder, agent_responder

pytestmark = pytest.mark.integration

TOKEN = "colm-tools-token-81d2c4"
PAID_KEY = "sk-colm-tools-paid-4be07a93"
KEY_ENV = "COLM_SERVE_TOOLS_KEY"
VARIANTS = ("single", "route", "cascade")
ANSWERED_BY = {"single": "big", "route": "small", "cascade": "small"}
CALLS = {"single": (0, 1), "route": (1, 0), "cascade": (3, 0)}  # (local, paid) calls a reply


def _fn(name: str, description: str, **props: Any) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": props, "required": list(props)}}}


ADD = _fn("add", "Add two integers.", a={"type": "integer"}, b={"type": "integer"})
MULTIPLY = _fn("multiply", "Multiply two integers.", a={"type": "integer"},
               b={"type": "integer"})
TOOLS = [ADD, MULTIPLY]
RUN = {"add": lambda a, b: a + b, "multiply": lambda a, b: a * b}
PERSON = {"type": "object", "properties": {"name": {"type": "string"},
                                           "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
PERSON_FORMAT = {"type": "json_schema",
                 "json_schema": {"name": "Person", "schema": PERSON, "strict": True}}
ARITH = "What is 3 + 4? Also, what is 5 * 6?"


class Fakes:
    """The two model servers; ``responders`` resets both to a fresh agent_responder (knobs
    for the local one, then for the paid one)."""

    def __init__(self, local: FakeOpenAIServer, paid: FakeOpenAIServer) -> None:
        self.local, self.paid = local, paid

    def reset(self, local: dict[str, Any] | None = None,
              paid: dict[str, Any] | None = None) -> None:
        self.local.responder = agent_responder(**(local or {}))
        self.paid.responder = agent_responder(**(paid or {}))
        self.local.requests.clear()
        self.paid.requests.clear()

    def of(self, name: str) -> FakeOpenAIServer:
        return self.local if name == "small" else self.paid

    def decisions(self, name: str) -> list[Any]:
        r = self.of(name).responder
        assert isinstance(r, AgentResponder)
        return r.decisions.snapshot()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fakes, str]]:
    with pytest.MonkeyPatch.context() as mp, FakeOpenAIServer() as local, \
            FakeOpenAIServer() as paid:
        mp.setenv(KEY_ENV, PAID_KEY)
        path = tmp_path_factory.mktemp("serve_tools") / "models.yaml"
        pool = ModelPool.from_yaml(write_pool(path, [
            local_entry("small", "small", local.base_url),
            paid_entry("big", "big", paid.base_url, key_env=KEY_ENV, price=(2.5, 10.0))]))
        app = create_app(pool, graphs=[*VARIANTS, "colm", "cope", "moa"], token=TOKEN,
                         progress_s=0.2)
        with serving(app) as url:
            yield Fakes(local, paid), url


@pytest.fixture
def fakes(stack: tuple[Fakes, str]) -> Fakes:
    stack[0].reset()
    return stack[0]


@pytest.fixture
def client(stack: tuple[Fakes, str]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=stack[1], api_key=TOKEN, max_retries=0, timeout=60) as c:
        yield c


def create(client: openai.OpenAI, **kwargs: Any) -> Any:
    """``chat.completions.create`` (a stream when ``stream=True``)."""
    return client.chat.completions.create(**kwargs)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def calls_of(message: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(c.function.name, json.loads(c.function.arguments))
            for c in message.tool_calls or ()]


def colm(reply: Any) -> dict[str, Any]:
    out = reply.model_extra["colm"]
    assert isinstance(out, dict)
    return out


def check_tier(reply: Any, variant: str, *, routed: bool = False) -> str:
    """The reply's ledger says which tier answered, with the calls that variant makes; with
    ``routed``, ``route`` may have sent it to either tier. Returns the answering model."""
    c = colm(reply)
    tier = ANSWERED_BY[variant]
    if routed and variant == "route":
        tier = c["answered_by"]
    local, paid = (1, 0) if variant == "route" and tier == "small" else \
        (0, 1) if variant == "route" else CALLS[variant]
    assert c["answered_by"] == tier
    assert (c["totals"]["local_calls"], c["totals"]["paid_calls"]) == (local, paid)
    assert (c["totals"]["paid_usd"] > 0) == (paid > 0)
    assert "invalid" not in c
    return tier


# -- tool calls -----------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_tool_call_through_each_variant(fakes: Fakes, client: openai.OpenAI,
                                        variant: str) -> None:
    reply = create(client, model=variant, messages=user("What is 3 + 4?"), tools=TOOLS)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert calls_of(choice.message) == [("add", {"a": 3, "b": 4})]
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and re.fullmatch(r"call_\d+", call.id)  # the model's own
    check_tier(reply, variant)
    answering = fakes.of(ANSWERED_BY[variant])
    sent = answering.chat_requests
    assert len(sent) == sum(CALLS[variant])
    for r in sent:
        assert [t["function"] for t in r["body"]["tools"]] == [t["function"] for t in TOOLS]
        assert r["body"]["messages"][-1] == {"role": "user", "content": "What is 3 + 4?"}
    # the key goes to the paid model only
    auth = {r["headers"].get("authorization") for r in fakes.paid.chat_requests}
    assert auth <= {f"Bearer {PAID_KEY}"}
    assert not any(PAID_KEY in json.dumps(r["headers"]) for r in fakes.local.chat_requests)


def test_parallel_calls_and_parallel_tool_calls_false(fakes: Fakes,
                                                      client: openai.OpenAI) -> None:
    both = create(client, model="single", messages=user(ARITH), tools=TOOLS)
    assert calls_of(both.choices[0].message) == [("add", {"a": 3, "b": 4}),
                                                 ("multiply", {"a": 5, "b": 6})]
    one = create(client, model="single",
                 messages=user(ARITH), tools=TOOLS, parallel_tool_calls=False)
    assert fakes.paid.chat_requests[-1]["body"]["parallel_tool_calls"] is False
    assert len(calls_of(one.choices[0].message)) == 1


@pytest.mark.parametrize("variant", VARIANTS)
def test_tool_choice_forces_the_named_tool(fakes: Fakes, client: openai.OpenAI,
                                           variant: str) -> None:
    forced = {"type": "function", "function": {"name": "multiply"}}
    reply = create(client, model=variant,
                   messages=user("Use the numbers 6 and 7."), tools=TOOLS, tool_choice=forced)
    assert calls_of(reply.choices[0].message) == [("multiply", {"a": 6, "b": 7})]
    assert reply.choices[0].finish_reason == "tool_calls"
    body = fakes.of(ANSWERED_BY[variant]).chat_requests[-1]["body"]
    assert body["tool_choice"] == forced
    check_tier(reply, variant)


def test_hermes_text_calls_of_a_local_model_come_back_as_tool_calls(
        fakes: Fakes, client: openai.OpenAI) -> None:
    fakes.reset(local={"text_tool_calls": 1})
    reply = create(client, model="route", messages=user(ARITH), tools=TOOLS)
    message = reply.choices[0].message
    assert "<tool_call>" in fakes.decisions("small")[-1].content  # what the model wrote
    assert calls_of(message) == [("add", {"a": 3, "b": 4}), ("multiply", {"a": 5, "b": 6})]
    assert message.content is None and reply.choices[0].finish_reason == "tool_calls"
    assert colm(reply)["answered_by"] == "small"


# -- structured output ----------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_response_format_json_schema(fakes: Fakes, client: openai.OpenAI,
                                     variant: str) -> None:
    reply = create(client, model=variant,
                   messages=user("Alice is 30 years old."), response_format=PERSON_FORMAT)
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    value = json.loads(choice.message.content or "")
    jsonschema.validate(value, PERSON)
    assert value == {"name": "Alice", "age": 30}
    assert fakes.of(ANSWERED_BY[variant]).chat_requests[-1]["body"]["response_format"] == \
        PERSON_FORMAT
    check_tier(reply, variant)


@pytest.mark.parametrize("knob", ["fenced_json", "think"])
def test_json_content_is_the_json_that_checked_out(fakes: Fakes, client: openai.OpenAI,
                                                   knob: str) -> None:
    fakes.reset(local={knob: 1})
    reply = create(client, model="route",
                   messages=user("Alice is 30 years old."), response_format=PERSON_FORMAT)
    assert fakes.decisions("small")[-1].misbehaviours == (knob,)
    assert "invalid" not in colm(reply) and colm(reply)["answered_by"] == "small"
    assert json.loads(reply.choices[0].message.content or "") == {"name": "Alice", "age": 30}


# -- streaming ------------------------------------------------------------------------------------
def _accumulate(stream: Any) -> tuple[dict[int, dict[str, str]], str | None, Any, Any, str]:
    """The tool calls of a stream by index, its finish reason, last choice chunk, usage and
    content."""
    merged: dict[int, dict[str, str]] = {}
    finish = last = usage = None
    content = ""
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if not chunk.choices:
            continue
        last = chunk
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for tc in delta.tool_calls or ():
            slot = merged.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += tc.id or ""
            slot["name"] += (tc.function.name or "") if tc.function else ""
            slot["arguments"] += (tc.function.arguments or "") if tc.function else ""
        finish = chunk.choices[0].finish_reason or finish
    return merged, finish, last, usage, content


@pytest.mark.parametrize("variant", VARIANTS)
def test_streamed_tool_calls(fakes: Fakes, client: openai.OpenAI, variant: str) -> None:
    whole = create(client, model=variant, messages=user(ARITH), tools=TOOLS)
    stream = create(client, model=variant, messages=user(ARITH), tools=TOOLS, stream=True,
                    stream_options={"include_usage": True})
    merged, finish, last, usage, content = _accumulate(stream)
    assert finish == "tool_calls" and content == ""
    assert sorted(merged) == [0, 1]
    assert [(c["name"], json.loads(c["arguments"])) for c in merged.values()] == \
        calls_of(whole.choices[0].message)
    assert all(c["id"].startswith("call_") for c in merged.values())
    assert len({c["id"] for c in merged.values()}) == 2
    assert last.model_extra["colm"]["answered_by"] == ANSWERED_BY[variant]
    assert usage is not None and usage.total_tokens > 0


@pytest.mark.parametrize(("variant", "knobs"), [("cascade", {}), ("route", {"fenced_json": 1})])
def test_streamed_json_reply(fakes: Fakes, client: openai.OpenAI, variant: str,
                             knobs: dict[str, Any]) -> None:
    fakes.reset(local=knobs)
    stream = create(client, model=variant, messages=user("Alice is 30 years old."),
                    response_format=PERSON_FORMAT, stream=True)
    merged, finish, last, _, content = _accumulate(stream)
    assert merged == {} and finish == "stop"
    assert json.loads(content) == {"name": "Alice", "age": 30}


# -- an agent loop --------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_agent_loop(fakes: Fakes, client: openai.OpenAI, variant: str) -> None:
    """Two user turns, three tool calls (two of them in parallel), each result sent back as
    a ``tool`` message, until the model answers in text. ``route`` scores the conversation as
    its question: the longer it gets, the likelier the paid model answers."""
    messages: list[dict[str, Any]] = []
    finals, ran, tiers = [], [], []
    for question in (ARITH, "Now multiply 7 by 30."):
        messages.append({"role": "user", "content": question})
        for _ in range(4):
            reply = create(client, model=variant, messages=messages, tools=TOOLS)
            tiers.append(check_tier(reply, variant, routed=True))
            message = reply.choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                assert reply.choices[0].finish_reason == "stop"
                finals.append(message.content or "")
                break
            assert reply.choices[0].finish_reason == "tool_calls"
            for call in message.tool_calls:
                args = json.loads(call.function.arguments)
                result = RUN[call.function.name](**args)
                ran.append((call.function.name, args, result))
                messages.append({"role": "tool", "tool_call_id": call.id,
                                 "content": str(result)})
        else:
            pytest.fail(f"no final answer to {question!r}")
    assert ran == [("add", {"a": 3, "b": 4}, 7), ("multiply", {"a": 5, "b": 6}, 30),
                   ("multiply", {"a": 7, "b": 30}, 210)]
    assert "7" in finals[0] and "30" in finals[0] and "210" in finals[1]
    assert len(tiers) == 4 and tiers[0] == ANSWERED_BY[variant]
    # the answering model saw the whole conversation, its earlier calls and results included
    last = fakes.of(tiers[-1]).chat_requests[-1]["body"]["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "tool", "tool", "assistant",
                                         "user", "assistant", "tool"]
    ids = [c["id"] for c in last[1]["tool_calls"]]
    assert [m["tool_call_id"] for m in last[2:4]] == ids


def test_legacy_function_call_conversation(fakes: Fakes, client: openai.OpenAI) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "What is 3 + 4?"},
        {"role": "assistant", "content": None,
         "function_call": {"name": "add", "arguments": '{"a": 3, "b": 4}'}},
        {"role": "function", "name": "add", "content": "7"}]
    reply = create(client, model="single", messages=messages, tools=[ADD])
    assert "7" in (reply.choices[0].message.content or "")
    sent = fakes.paid.chat_requests[-1]["body"]["messages"]
    assert sent[1]["tool_calls"][0]["function"] == messages[1]["function_call"]
    assert sent[2]["role"] == "tool" and sent[2]["tool_call_id"] == sent[1]["tool_calls"][0]["id"]


# -- escalation -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("knob", "extra"), [
    ("invalid_args", {}),
    ("wrong_types", {}),
    ("ignore_tools", {"tool_choice": "required"}),
])
def test_cascade_escalates_a_local_reply_that_does_not_check_out(
        fakes: Fakes, client: openai.OpenAI, knob: str, extra: dict[str, Any]) -> None:
    fakes.reset(local={knob: 1})
    reply = create(client, model="cascade", messages=user("What is 3 + 4?"), tools=TOOLS, **extra)
    assert calls_of(reply.choices[0].message) == [("add", {"a": 3, "b": 4})]
    assert reply.choices[0].finish_reason == "tool_calls"
    c = colm(reply)
    assert c["answered_by"] == "big" and "invalid" not in c
    assert (c["totals"]["local_calls"], c["totals"]["paid_calls"]) == (3, 1)
    assert [d.misbehaviours for d in fakes.decisions("small")] == [(knob,)] * 3
    (paid,) = fakes.paid.chat_requests
    assert paid["body"]["tools"] == TOOLS
    assert paid["body"]["messages"] == user("What is 3 + 4?")


def test_single_reports_a_reply_that_does_not_check_out(fakes: Fakes,
                                                        client: openai.OpenAI) -> None:
    fakes.reset(paid={"wrong_types": 1})
    reply = create(client, model="single", messages=user("What is 3 + 4?"), tools=TOOLS)
    assert "is not of type 'integer'" in colm(reply)["invalid"]
    assert colm(reply)["answered_by"] == "big"


# -- refusals and bad requests --------------------------------------------------------------------
@pytest.mark.parametrize(("variant", "field", "extra"), [
    ("colm", "tools", {"tools": TOOLS}),
    ("cope", "tools", {"tools": TOOLS, "tool_choice": "auto"}),
    ("moa", "tools", {"tools": TOOLS}),
    ("colm", "response_format", {"response_format": PERSON_FORMAT}),
])
def test_variants_without_tools_refuse(fakes: Fakes, client: openai.OpenAI, variant: str,
                                       field: str, extra: dict[str, Any]) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        create(client, model=variant, messages=user("What is 3 + 4?"), **extra)
    err = info.value
    assert err.status_code == 400 and err.param == field
    assert f"{field}: variant {variant!r} cannot call tools" in err.message
    assert "single, route, cascade" in err.message and "\n" not in err.message
    assert fakes.local.chat_requests == [] and fakes.paid.chat_requests == []


@pytest.mark.parametrize(("kwargs", "param", "words"), [
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "divide"}}},
     "tool_choice", "divide"),
    ({"tools": TOOLS, "tool_choice": "divide"}, "tool_choice", "divide"),
    ({"tool_choice": "required"}, "tool_choice", "needs tools"),
    ({"tools": [ADD, ADD]}, "tools", "twice"),
    ({"messages": [*user("What is 3 + 4?"),
                   {"role": "assistant", "content": None, "tool_calls": [
                       {"id": "call_a", "type": "function",
                        "function": {"name": "add", "arguments": "{'a': 3, 'b': 4}"}}]},
                   {"role": "tool", "tool_call_id": "call_a", "content": "7"}],
      "tools": TOOLS}, "messages[1].tool_calls[0].function.arguments", "not JSON"),
    ({"messages": [*user("What is 3 + 4?"),
                   {"role": "assistant", "content": None, "tool_calls": [
                       {"id": "call_a", "type": "function",
                        "function": {"name": "add", "arguments": "[3, 4]"}}]},
                   {"role": "tool", "content": "7"}],
      "tools": TOOLS}, "messages[1].tool_calls[0].function.arguments", "JSON object"),
    ({"messages": [*user("What is 3 + 4?"), {"role": "tool", "content": "7"}], "tools": TOOLS},
     "messages[1].tool_call_id", "tool_call_id"),
])
def test_bad_tool_requests(fakes: Fakes, client: openai.OpenAI, kwargs: dict[str, Any],
                           param: str, words: str) -> None:
    kwargs = {"messages": user("What is 3 + 4?"), **kwargs}
    with pytest.raises(openai.BadRequestError) as info:
        create(client, model="single", **kwargs)
    err = info.value
    assert err.status_code == 400 and err.param == param
    assert words in err.message and "\n" not in err.message
    assert fakes.paid.chat_requests == []


# -- idempotency ----------------------------------------------------------------------------------
def test_idempotency_key_repeat_returns_the_same_tool_calls(fakes: Fakes,
                                                            client: openai.OpenAI) -> None:
    key = f"tools-repeat-{uuid.uuid4().hex}"

    def ask() -> Any:
        return create(client, model="single", messages=user(ARITH), tools=TOOLS,
                      extra_headers={"Idempotency-Key": key})

    first, again = ask(), ask()
    assert len(fakes.paid.chat_requests) == 1
    assert again.id == first.id
    assert again.choices[0].message.tool_calls == first.choices[0].message.tool_calls
    assert len(first.choices[0].message.tool_calls or []) == 2
    assert again.choices[0].finish_reason == "tool_calls"
    fresh = create(client, model="single", messages=user(ARITH), tools=TOOLS)
    assert len(fakes.paid.chat_requests) == 2
    assert {c.id for c in fresh.choices[0].message.tool_calls or []}.isdisjoint(
        {c.id for c in first.choices[0].message.tool_calls or []})
