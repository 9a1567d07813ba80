"""How the simulator acts as a tool-calling model: it calls a tool the request forces or the
user names, with arguments filled from the user's words by the tool's JSON schema, and
answers from the tools' results once they are there. Like a small real model, it
sometimes gets the call wrong (``tool_slip``: a required argument left out), and writes a
structured reply as JSON (sometimes in a Markdown fence, with a sentence before it)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

__all__ = ["agent_reply", "fill"]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_QUOTED = re.compile(r"[\"“']([^\"”']{1,80})[\"”']")
_WORD = re.compile(r"[A-Z][\w-]+|\w{4,}")
# capitalised words not at the start of a sentence: the names in a request
_PROPER = re.compile(r"(?<![.!?:]\s)(?<!^)(?<=\s)[A-Z][a-z][\w-]*(?:\s[A-Z][a-z][\w-]*)*")


class _Words:
    """The values a user's text offers: the value it gives a field by name ("age is 31",
    "name: Anna"), else the next number or string in order."""

    def __init__(self, text: str) -> None:
        self.numbers = [float(n) for n in _NUMBER.findall(text)]
        self.strings = (_QUOTED.findall(text) or _PROPER.findall(text)
                        or [w for w in _WORD.findall(text) if not w[0].isdigit()][-3:]
                        or ["value"])
        self.raw = text
        self.text = text.lower()

    def _given(self, key: str | None) -> str | None:
        if not key:
            return None
        spaced = re.escape(key.replace("_", " "))
        found = re.search(rf"\b(?:{re.escape(key)}|{spaced})\s*(?:is|=|:|of)\s*"
                          r"[\"“']?([^,.;:\"”'\n]+?(?:\.\d+)?)[\"”']?\s*(?:[,.;\n]|and\b|$)",
                          self.raw, re.I)
        return found.group(1).strip() if found else None

    def number(self, integer: bool, key: str | None = None) -> int | float:
        given = _NUMBER.search(self._given(key) or "")
        if given is not None:
            value = float(given.group())
            if value in self.numbers:
                self.numbers.remove(value)
        else:
            value = self.numbers.pop(0) if self.numbers else 1.0
        return int(value) if integer else value

    def string(self, key: str | None = None) -> str:
        given = self._given(key)
        if given:
            return given
        return self.strings.pop(0) if len(self.strings) > 1 else self.strings[0]


def fill(schema: Mapping[str, Any], words: _Words, rng: random.Random, defs: Mapping[str, Any]
         | None = None, key: str | None = None) -> Any:
    """A value for ``schema`` (of field ``key``) from the user's words."""
    defs = defs if defs is not None else schema.get("$defs") or {}
    if "$ref" in schema:
        return fill(defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {}), words, rng, defs,
                    key)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        real = [o for o in options if o.get("type") != "null"] or list(options)
        return fill(real[0], words, rng, defs, key)
    if "enum" in schema:
        named = [v for v in schema["enum"] if str(v).lower() in words.text]
        return named[0] if named else schema["enum"][0]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: fill(v, words, rng, defs, k) for k, v in props.items()}
    if kind == "array":
        return [fill(schema.get("items") or {}, words, rng, defs, key)]
    if kind in ("integer", "number"):
        return words.number(kind == "integer", key)
    if kind == "boolean":
        return False
    return words.string(key)


def _named(tool: Mapping[str, Any], text: str) -> bool:
    name = str(tool["function"]["name"]).lower()
    low = text.lower()
    return name in low or name.replace("_", " ") in low


def _forced(tools: Sequence[Mapping[str, Any]], choice: Any) -> list[Mapping[str, Any]]:
    if isinstance(choice, Mapping):
        name = (choice.get("function") or {}).get("name")
        return [t for t in tools if t["function"]["name"] == name][:1]
    if choice in ("required", "any") or choice is True:
        return list(tools[:1])
    if isinstance(choice, str) and choice not in ("auto", "none"):
        return [t for t in tools if t["function"]["name"] == choice][:1]
    return []


def agent_reply(messages: Sequence[BaseMessage], tools: Sequence[Mapping[str, Any]],
                tool_choice: Any, response_format: Mapping[str, Any] | None, slip: float,
                rng: random.Random) -> tuple[str, list[dict[str, Any]]] | None:
    """``(content, tool calls)`` of an agent turn, or ``None``: answer the question as
    usual (no tool to call, no format to follow)."""
    user = next((m.text for m in reversed(messages) if m.type == "human"), "")
    last = messages[-1] if messages else None
    forced = _forced(tools, tool_choice)
    if last is not None and last.type == "tool" and not forced:
        result = last.text.strip() or "nothing"
        return f"The tool returned {result}.\n\nAnswer: {result}", []
    picked = forced or ([t for t in tools if _named(t, user)] if tool_choice != "none" else [])
    if picked:
        calls = []
        for i, tool in enumerate(picked):
            params = tool["function"].get("parameters") or {}
            args = fill(params, _Words(user), rng) if params.get("properties") else {}
            required = list(params.get("required") or [])
            if required and rng.random() < slip:  # a small model's slip
                args.pop(rng.choice(required), None)
            calls.append({"name": tool["function"]["name"], "args": args,
                          "id": f"call_sim_{rng.getrandbits(40):010x}{i}",
                          "type": "tool_call"})
        lead = "Let me call the tool." if rng.random() < 0.5 else ""
        return lead, calls
    if response_format is not None:
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
        value = fill(schema, _Words(user), rng)
        value = value if isinstance(value, dict) else {"value": value}
        required = list(schema.get("required") or [])
        if required and rng.random() < slip:
            value.pop(rng.choice(required), None)
        body = json.dumps(value)
        if rng.random() < 0.3:  # chat models like to wrap JSON in a sentence and a fence
            return f"Here is the JSON:\n\n```json\n{body}\n```", []
        return body, []
    return None
