"""Agent turns: a conversation whose reply may call tools or must follow a JSON format.

A chat model inside an agent gets the whole conversation (the user's request, its own
earlier tool calls, the tools' results) with the tools it may call, and answers with one
``AIMessage``: tool calls, or a final text. :class:`AgentTurn` carries that request through
a graph run (``configurable["colm_turn"]``): the variant's answer nodes send its messages
with the tools bound, and :meth:`AgentTurn.read` checks each reply against what was asked
before the run may accept it:

* every tool call names one of the tools, with arguments that are valid JSON and valid for
  the tool's JSON schema (``jsonschema``);
* ``tool_choice`` holds: ``required`` (or a named tool) needs a call (of that tool),
  ``none`` forbids one; ``parallel_tool_calls: false`` allows at most one call;
* a ``response_format`` reply is a JSON object (after any ``<think>`` block, in or out of a
  Markdown fence) valid for its schema.

Small open models served without a tool parser write the call into the content as
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (Hermes and Qwen chat
templates); such calls are read back as tool calls (``recovered``) when they name a tool.

A valid reply's *answer* is a canonical string (the calls' names and sorted arguments, the
structured reply's sorted JSON, each with a digest of itself, or a text reply's stated
answer), so that votes and agreement compare replies by what they do; an invalid reply
has no answer, and says why in ``invalid``: a cascade escalates it.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from colm_graph.errors import ConfigError

__all__ = ["TURN_KEY", "AgentTurn", "Reading", "TurnReply", "agent_turn", "json_of_reply",
           "tool_choice_of", "turn_reply"]

TURN_KEY = "colm_turn"
"""The ``configurable`` key an :class:`AgentTurn` travels under through a graph run."""

_CHOICES = ("auto", "none", "required")
_TEXT_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.S)
_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n(.*?)\n\s*```\s*$", re.S)


def _names(tools: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(t["function"]["name"]) for t in tools]


def tool_choice_of(choice: Any, tools: Sequence[Mapping[str, Any]],
                   where: str = "tool_choice") -> str | dict[str, Any] | None:
    """``choice`` as the OpenAI API takes it: ``auto``/``none``/``required`` (LangChain's
    ``any`` and ``True`` with one tool mean a call is required), or ``{"type": "function",
    "function": {"name": ...}}`` for a tool given by name. A :class:`ConfigError` names a
    choice that is none of these or a tool that is not there."""
    names = _names(tools)
    if choice is None:
        return None
    if choice is True:
        if len(names) != 1:
            raise ConfigError(f"{where}: true needs exactly one tool, got {len(names)}")
        choice = names[0]
    if choice == "any":
        return "required"
    if isinstance(choice, str):
        if choice in _CHOICES:
            return choice
        if choice in names:
            return {"type": "function", "function": {"name": choice}}
        raise ConfigError(f"{where}: {choice!r} is not 'auto', 'none', 'required' or one of"
                          f" the tools ({', '.join(names) or 'none given'})")
    if isinstance(choice, Mapping):
        name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" \
            else None
        if choice.get("type") in _CHOICES and "function" not in choice:
            return str(choice["type"])
        if isinstance(name, str) and name in names:
            return {"type": "function", "function": {"name": name}}
        raise ConfigError(f"{where}: expected {{'type': 'function', 'function': {{'name':"
                          f" <one of {', '.join(names) or 'no tools'}>}}}}, got {dict(choice)!r}")
    raise ConfigError(f"{where}: expected a string or an object, got {type(choice).__name__}")


def _openai_tool(tool: Any, where: str) -> dict[str, Any]:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    try:
        out = convert_to_openai_tool(tool)
    except Exception as exc:  # a tool LangChain cannot describe
        raise ConfigError(f"{where}: not a tool LangChain can describe"
                          f" ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc
    if out.get("type") != "function" or not isinstance(out.get("function"), Mapping) \
            or not out["function"].get("name"):
        raise ConfigError(f"{where}: expected a function tool with a name, got"
                          f" {str(out)[:200]}")
    if out["function"].get("parameters") is not None:
        _check_schema(out["function"]["parameters"], f"{where}.function.parameters")
    return out


def _check_schema(schema: Any, where: str) -> None:
    """A tool's parameters or a format's schema is a JSON Schema (checked by ``jsonschema``
    against its metaschema), so a reply can be checked against it."""
    import jsonschema

    if not isinstance(schema, Mapping):
        raise ConfigError(f"{where}: expected a JSON Schema object, got {str(schema)[:200]}")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        at = "/".join(str(p) for p in exc.absolute_path)
        raise ConfigError(f"{where}: not a valid JSON Schema"
                          f"{f' at {at}' if at else ''}: {exc.message[:200]}") from None


def _check_format(fmt: Any, where: str) -> dict[str, Any] | None:
    if fmt is None:
        return None
    if not isinstance(fmt, Mapping) or fmt.get("type") not in ("text", "json_object",
                                                              "json_schema"):
        raise ConfigError(f"{where}: expected {{'type': 'text' | 'json_object' |"
                          f" 'json_schema', ...}}, got {str(fmt)[:200]}")
    if fmt["type"] == "text":
        return None
    if fmt["type"] == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("schema", {}), Mapping):
            raise ConfigError(f"{where}.json_schema: expected {{'name': ..., 'schema':"
                              f" {{...}}}}, got {str(spec)[:200]}")
        _check_schema(spec.get("schema", {}), f"{where}.json_schema.schema")
    return dict(fmt)


@dataclass(frozen=True)
class Reading:
    """What a reply does, as :meth:`AgentTurn.read` reads it."""

    answer: str | None
    """Canonical answer (``None``: the reply is not valid for the request)."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """``{"name", "args", "id"}`` of each call (recovered ones included)."""
    invalid: str | None = None
    """Why the reply does not do what was asked."""
    content: str | None = None
    """The content without recovered ``<tool_call>`` blocks (``None``: unchanged)."""
    structured: Any = None
    """The parsed JSON of a ``response_format`` reply."""


def _visible(text: str) -> str:
    from colm_graph.core.answers.extract import strip_reasoning

    return strip_reasoning(text).strip()


def json_of_reply(text: str) -> Any:
    """The JSON value of a reply's visible text (bare or in one Markdown fence)."""
    visible = _visible(text)
    fenced = _FENCE.match(visible)
    body = fenced.group(1) if fenced else visible
    try:
        return json.loads(body)
    except ValueError:
        start, end = body.find("{"), body.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(body[start:end + 1])
            except ValueError:
                return None
    return None


def _schema_error(value: Any, schema: Mapping[str, Any]) -> str | None:
    import jsonschema

    try:
        validator = jsonschema.validators.validator_for(schema)
        error = jsonschema.exceptions.best_match(validator(schema).iter_errors(value))
    except jsonschema.exceptions.SchemaError as exc:
        return f"its schema is not valid JSON Schema ({exc.message[:120]})"
    if error is None:
        return None
    at = "/".join(str(p) for p in error.absolute_path)
    return f"{at or 'the value'}: {error.message[:160]}"


@dataclass(frozen=True)
class AgentTurn:
    """One chat request with tools or a response format, as a graph run answers it."""

    messages: tuple[BaseMessage, ...]
    tools: tuple[dict[str, Any], ...] = ()
    """OpenAI function tools (``{"type": "function", "function": {...}}``)."""
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    """OpenAI ``response_format`` (``json_object`` or ``json_schema``)."""

    @classmethod
    def of(cls, messages: Sequence[BaseMessage], *, tools: Sequence[Any] | None = None,
           tool_choice: Any = None, parallel_tool_calls: Any = None,
           response_format: Any = None, where: str = "") -> AgentTurn | None:
        """The turn for a request (``None``: a plain question: no tools, no format, no tool
        messages); tools are converted to OpenAI's format and every setting is checked,
        a mistake raising a :class:`ConfigError` naming ``where`` + the field."""
        pre = f"{where}." if where else ""
        formatted = tuple(_openai_tool(t, f"{pre}tools[{i}]")
                          for i, t in enumerate(tools or ()))
        names = _names(formatted)
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"{pre}tools: the tool name {twice[0]!r} is given twice")
        choice = tool_choice_of(tool_choice, formatted, f"{pre}tool_choice")
        if choice is not None and not formatted and choice != "none":
            raise ConfigError(f"{pre}tool_choice: {tool_choice!r} needs tools; none are given")
        if parallel_tool_calls is not None and not isinstance(parallel_tool_calls, bool):
            raise ConfigError(f"{pre}parallel_tool_calls: expected true or false, got"
                              f" {parallel_tool_calls!r}")
        fmt = _check_format(response_format, f"{pre}response_format")
        talks_tools = any(m.type == "tool" or getattr(m, "tool_calls", None)
                          for m in messages)
        if not formatted and fmt is None and not talks_tools:
            return None
        return cls(tuple(messages), formatted, choice, parallel_tool_calls, fmt)

    # -- the request --------------------------------------------------------------------------
    def call_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the model call: ``tools``, ``tool_choice``,
        ``parallel_tool_calls``, ``response_format`` (what is set)."""
        out: dict[str, Any] = {}
        if self.tools:
            out["tools"] = [dict(t) for t in self.tools]
            if self.tool_choice is not None:
                out["tool_choice"] = self.tool_choice
            if self.parallel_tool_calls is not None:
                out["parallel_tool_calls"] = self.parallel_tool_calls
        if self.response_format is not None:
            out["response_format"] = dict(self.response_format)
        return out

    def schema(self, name: str) -> Mapping[str, Any] | None:
        """The JSON schema of tool ``name``'s arguments (``None``: no such tool)."""
        for t in self.tools:
            if t["function"]["name"] == name:
                return t["function"].get("parameters") or {"type": "object"}
        return None

    def forced(self) -> str | None:
        """The tool a call is required of (``"*"``: any tool), or ``None``."""
        if self.tool_choice == "required":
            return "*"
        if isinstance(self.tool_choice, Mapping):
            return str(self.tool_choice["function"]["name"])
        return None

    # -- the reply ----------------------------------------------------------------------------
    def _recover(self, text: str) -> tuple[list[dict[str, Any]], str]:
        """Tool calls written into the content (``<tool_call>`` blocks) that name a tool,
        and the content without them."""
        calls, names = [], set(_names(self.tools))
        for m in _TEXT_CALL.finditer(text):
            try:
                data = json.loads(m.group(1))
            except ValueError:
                continue
            if not isinstance(data, Mapping) or data.get("name") not in names:
                continue
            args = data.get("arguments", data.get("parameters", {}))
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except ValueError:
                    continue
            if isinstance(args, Mapping):
                calls.append({"name": data["name"], "args": dict(args),
                              "id": f"call_{uuid.uuid4().hex[:24]}"})
        rest = _TEXT_CALL.sub("", text).strip() if calls else text
        return calls, rest

    def _check_calls(self, calls: Sequence[Mapping[str, Any]]) -> str | None:
        forced = self.forced()
        if not calls:
            if forced == "*":
                return "tool_choice 'required': the reply calls no tool"
            if forced is not None:
                return f"tool_choice {forced!r}: the reply calls no tool"
            return None
        if self.tool_choice == "none":
            return f"tool_choice 'none': the reply calls {calls[0]['name']!r}"
        if self.parallel_tool_calls is False and len(calls) > 1:
            return f"parallel_tool_calls false: the reply makes {len(calls)} calls"
        for call in calls:
            schema = self.schema(str(call["name"]))
            if schema is None:
                return (f"the reply calls {call['name']!r}, which is not one of the tools"
                        f" ({', '.join(_names(self.tools))})")
            if forced not in (None, "*") and call["name"] != forced:
                return f"tool_choice {forced!r}: the reply calls {call['name']!r}"
            problem = _schema_error(call.get("args"), schema)
            if problem is not None:
                return f"tool {call['name']!r} arguments: {problem}"
        return None

    def read(self, reply: AIMessage) -> Reading:
        """Whether ``reply`` does what was asked, and its canonical answer."""
        text = reply.text if isinstance(reply.content, list) else str(reply.content or "")
        bad = list(getattr(reply, "invalid_tool_calls", None) or [])
        calls = [{"name": c["name"], "args": dict(c.get("args") or {}),
                  "id": c.get("id") or f"call_{uuid.uuid4().hex[:24]}"}
                 for c in reply.tool_calls]
        content = None
        if not calls and not bad and self.tools:
            calls, rest = self._recover(text)
            content = rest if calls else None
        if bad:
            name = bad[0].get("name") or "?"
            return Reading(None, calls, f"tool {name!r}: arguments are not valid JSON")
        problem = self._check_calls(calls)
        if problem is not None:
            return Reading(None, calls, problem, content)
        if calls:
            answer = _canonical("; ".join(f"{c['name']} {json.dumps(c['args'], sort_keys=True)}"
                                          for c in calls))
            return Reading(answer, calls, None, content)
        if self.response_format is not None:
            return self._read_format(text)
        return Reading(_text_answer(text))

    def _read_format(self, text: str) -> Reading:
        value = json_of_reply(text)
        if not isinstance(value, dict):
            return Reading(None, invalid="response_format: the reply is not a JSON object")
        fmt = self.response_format or {}
        if fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema") or {}
            problem = _schema_error(value, schema)
            if problem is not None:
                return Reading(None, invalid=f"response_format: {problem}", structured=value)
        return Reading(_canonical(json.dumps(value, sort_keys=True)), structured=value)


def _canonical(text: str) -> str:
    """``text`` with a short digest of it: answers are compared as normalised text (lower
    case, no punctuation or articles), which alone would make ``{"a": 3}`` and ``{"the":
    3}`` equal; the digest keeps every difference."""
    return f"{text} #{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def _text_answer(text: str) -> str | None:
    """A final text reply's answer: its stated answer, else its visible text."""
    from colm_graph.core.answers import extract_answer

    stated = extract_answer(text, kind="text")
    if stated:
        return stated
    visible = " ".join(_visible(text).split())
    return visible[:500] or None


@dataclass(frozen=True)
class TurnReply:
    """What a finished agent turn replies: the answering model's own message."""

    text: str
    tool_calls: list[dict[str, Any]]
    answered_by: str | None
    invalid: str | None
    """Why the reply does not do what was asked (``None``: it does)."""

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"

    def outcome(self, outcome: Mapping[str, Any]) -> dict[str, Any]:
        """A run's reported outcome (``RunResult.outcome``) for this reply: its answer the
        call's canonical form (not text-normalised), who answered, and why it is invalid."""
        out = {**outcome, "answer": outcome.get("answer_raw"), "answered_by": self.answered_by}
        if self.invalid:
            out["invalid"] = self.invalid
        return out


def turn_reply(state: Mapping[str, Any]) -> TurnReply:
    """The reply of a finished agent turn's run: the response that carries its answer, else
    its last response (what the model wrote, even when it did not check out)."""
    from colm_graph.core.messages import reply_response

    r = reply_response(state, latest=True) or {}
    return TurnReply(str(r.get("text") or ""), list(r.get("tool_calls") or []),
                     r.get("answered_by") or r.get("model"), r.get("invalid"))


def agent_turn(config: Mapping[str, Any] | None) -> AgentTurn | None:
    """The turn a run's config carries (``None``: a plain question)."""
    turn = ((config or {}).get("configurable") or {}).get(TURN_KEY)
    return turn if isinstance(turn, AgentTurn) else None
