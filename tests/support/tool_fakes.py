"""A responder for :class:`~tests.support.openai_server.FakeOpenAIServer` that behaves like a
small instruction-tuned model with tools: it reads what the request offers (``tools``,
``tool_choice``, ``parallel_tool_calls``, ``response_format``, the conversation) and answers
the way such a model does -- a function call with arguments that fit the tool's JSON schema and
come from the user's words, a JSON object for a schema, a final answer from tool results, or
prose -- and, when told, misbehaves the way real models do::

    responder = agent_responder()
    with FakeOpenAIServer(responder=responder) as srv:
        llm = ChatOpenAI(base_url=srv.base_url, api_key="sk-test", model="fake", max_retries=0)
        msg = llm.bind_tools([get_weather]).invoke("What is the weather in Paris?")
        msg.tool_calls               # [{"name": "get_weather", "args": {"location": "Paris"}, ...}]
        responder.decisions[-1].kind  # "tool_calls"

Decision rules, first match wins (the user text is the latest ``user`` message's):

1. ``tool_choice`` forces a call (``"required"``, or ``{"type": "function", "function":
   {"name": ...}}``): call the named tool, or the best-matching ones (else the first tool).
2. The conversation ends with tool results: a final answer that quotes them ("The result is
   7." ...), or a JSON object built from them when ``response_format`` asks for one.
3. Tools are offered and ``tool_choice`` is not ``"none"``: call every tool the user text
   mentions by name (``get_weather``, ``get weather``, ``getWeather`` ...) or clearly matches
   (a content word of its name, two of its description, or an arithmetic operator for an
   adding/multiplying... tool); one call only when ``parallel_tool_calls`` is false.
4. ``response_format`` ``json_schema``: a JSON object valid for the schema; ``json_object``: a
   JSON object whose keys are the fields the prompt names (quoted identifiers or a JSON example),
   else ``{"answer": ...}``.
5. Prose: a sentence or two, sometimes markdown, with an ``Answer: ...`` line when there is
   something to compute.

Arguments and JSON objects come from :func:`fill_schema`: numbers of the text in order for
integer/number fields (``a=3`` style names first), quoted strings, proper names and topic words
for strings, enum values the text mentions, nested objects and arrays, ``anyOf``/nullable
(``null`` unless the text gives a value), ``$ref``/``$defs`` and ``allOf``; optional fields only
when the text speaks of them; every value within its schema's bounds.

Misbehaviour knobs (:data:`KNOBS`; each a probability or a bool, all off by default; the draw
is a function of ``seed``, the knob and the request body without its transport keys, so
``invoke`` and ``stream`` of one conversation behave alike and reruns repeat):

* ``preamble`` -- text such as "Let me check that." beside the tool calls;
* ``think`` -- a ``<think>...</think>`` block before the content (a reasoning model served
  without a reasoning parser);
* ``invalid_args`` -- the first call's arguments are not JSON (a Python dict with single quotes,
  or a doubled closing brace; never a mere prefix, which LangChain's stream merge would repair);
* ``wrong_types`` -- a number or boolean field sent as a string (``"3"``), else a required field
  left out; also applies to JSON content;
* ``text_tool_calls`` -- the calls written into the content as Hermes/Qwen
  ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks, no ``tool_calls`` field
  (a vLLM server without a tool parser);
* ``fenced_json`` -- JSON content wrapped in a sentence and a ```` ```json ```` fence;
* ``ignore_tools`` -- prose instead of any tool call, even a forced one.

Every answer is recorded as a :class:`Decision` in :attr:`AgentResponder.decisions`;
:meth:`AgentResponder.decide` computes one without recording it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import operator
import random
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KNOBS",
    "AgentResponder",
    "Decision",
    "DecisionLog",
    "ToolResult",
    "agent_responder",
    "asked_response_format",
    "asked_tool_choice",
    "asked_tools",
    "fill_schema",
    "latest_user_text",
    "parse_text_tool_calls",
    "tool_results",
]

#: The misbehaviour knobs of :func:`agent_responder`, in the order they are applied.
KNOBS = ("ignore_tools", "wrong_types", "invalid_args", "text_tool_calls", "preamble",
         "fenced_json", "think")

_TRANSPORT_KEYS = frozenset({"stream", "stream_options", "n"})

# Words that never make a tool match, a proper name or a topic.
_COMMON = frozenset("""
a an the this that these those it its is are was were be been being am do does did done
i me my we our you your he she they them their his her what which who whom whose when where
why how whether if then than so and or but not no nor yes to of in on at by for with from
into onto about as up down out over under again once here there all any both each few more
most other some such only own same too very can could will would shall should may might must
just also please thanks thank hello hi hey okay ok sure now today let lets let's
tell give show write create make get set find use using used call calls calling calculate
compute return returns generate need want know like list help check look search take takes
run do via tool tools function functions value values result results json answer question
keys key field fields object format output reply respond response nothing include including
included something anything everything one
""".split())
_GENERIC_NAME_WORDS = frozenset({"get", "set", "list", "fetch", "make", "create", "run", "do",
                                 "call", "tool", "func", "function", "fn", "my", "the", "a",
                                 "of", "to", "by", "for", "and", "or", "new", "info", "data"})
_OPERATORS = {
    "+": ("add", "addition", "adder", "sum", "plus", "total"),
    "-": ("subtract", "subtraction", "minus", "difference"),
    "*": ("multiply", "multiplication", "product", "times"),
    "/": ("divide", "division", "quotient"),
}
_NEGATIONS = ("no", "not", "without", "don't", "dont", "do not", "never", "skip", "exclude",
              "omit", "leave out")
_LOCATION_WORDS = frozenset({"location", "city", "place", "address", "country", "region",
                             "where", "destination", "origin", "town", "state", "area"})
_NAME_WORDS = frozenset({"name", "title", "person", "customer", "user", "username", "company",
                         "author", "label"})
_QUERY_WORDS = frozenset({"query", "q", "question", "search", "prompt", "input", "request",
                          "task", "instruction", "instructions", "keywords", "term", "terms"})
_EXPR_WORDS = frozenset({"expression", "expr", "formula", "equation", "math"})
_PROSE_WORDS = frozenset({"setup", "punchline", "description", "summary", "answer", "reason",
                          "reasoning", "explanation", "text", "content", "message", "body",
                          "comment", "note", "notes", "story", "joke", "greeting", "response",
                          "details", "detail"})


# -- reading the request ------------------------------------------------------------------------
def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content
                       if isinstance(b, str) or (isinstance(b, Mapping)
                                                 and b.get("type") in ("text", "input_text")))
    return ""


def _messages(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [m for m in body.get("messages") or () if isinstance(m, Mapping)]


@dataclass(frozen=True)
class _Tool:
    name: str
    description: str
    parameters: Mapping[str, Any]


def _tools(body: Mapping[str, Any]) -> list[_Tool]:
    out: list[_Tool] = []
    for t in body.get("tools") or ():
        if not isinstance(t, Mapping):
            continue
        fn = t.get("function") if t.get("type", "function") == "function" else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            continue
        params = fn.get("parameters")
        out.append(_Tool(fn["name"], str(fn.get("description") or ""),
                         params if isinstance(params, Mapping) else {}))
    return out


def asked_tools(body: Mapping[str, Any]) -> list[str]:
    """The names of the function tools a request offers, in order."""
    return [t.name for t in _tools(body)]


def asked_tool_choice(body: Mapping[str, Any]) -> tuple[str, str | None]:
    """``(mode, name)``: mode ``"auto"``, ``"none"``, ``"required"`` or ``"named"`` (then
    ``name`` is the forced tool). Without a ``tool_choice``: ``"auto"`` when tools are offered,
    else ``"none"``; ``"any"`` and ``True`` read as ``"required"``."""
    choice = body.get("tool_choice")
    if choice is None:
        return ("auto" if _tools(body) else "none"), None
    if choice is True or choice in ("required", "any"):
        return "required", None
    if choice in ("auto", "none"):
        return str(choice), None
    if isinstance(choice, Mapping):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else choice.get("name")
        if isinstance(name, str):
            return "named", name
    if isinstance(choice, str):  # a bare tool name, as some clients send it
        return "named", choice
    raise ValueError(f"tool_choice: cannot read {choice!r}")


def asked_response_format(body: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any] | None]:
    """``(kind, schema)``: ``("json_schema", schema)``, ``("json_object", None)`` or
    ``(None, None)``."""
    rf = body.get("response_format")
    if not isinstance(rf, Mapping):
        return None, None
    if rf.get("type") == "json_schema":
        js = rf.get("json_schema")
        schema = js.get("schema") if isinstance(js, Mapping) else None
        return "json_schema", schema if isinstance(schema, Mapping) else {"type": "object"}
    if rf.get("type") == "json_object":
        return "json_object", None
    return None, None


def latest_user_text(body: Mapping[str, Any]) -> str:
    """The text of the last ``user`` message ("" if there is none)."""
    for m in reversed(_messages(body)):
        if m.get("role") == "user":
            return _text(m.get("content"))
    return ""


def _system_text(body: Mapping[str, Any]) -> str:
    return "\n".join(_text(m.get("content")) for m in _messages(body)
                     if m.get("role") in ("system", "developer"))


@dataclass(frozen=True)
class ToolResult:
    """A tool message at the end of the conversation: the tool's ``name`` (from the assistant
    call it answers, else the message's ``name``), its ``content`` text and ``tool_call_id``."""

    name: str
    content: str
    tool_call_id: str | None


def tool_results(body: Mapping[str, Any]) -> list[ToolResult]:
    """The tool messages that end the conversation (after the last assistant or user message),
    oldest first; empty when the conversation does not end with tool results."""
    messages = _messages(body)
    names: dict[str, str] = {}
    for m in messages:
        for call in m.get("tool_calls") or ():
            if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
                names[str(call.get("id"))] = str(call["function"].get("name", ""))
    out: list[ToolResult] = []
    for m in reversed(messages):
        if m.get("role") not in ("tool", "function"):
            break
        cid = m.get("tool_call_id")
        name = names.get(str(cid)) or str(m.get("name") or "tool")
        out.append(ToolResult(name, _text(m.get("content")), None if cid is None else str(cid)))
    return out[::-1]


_TEXT_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)


def parse_text_tool_calls(content: str) -> list[dict[str, Any]]:
    """The Hermes/Qwen ``<tool_call>{...}</tool_call>`` blocks of a content, each as
    ``{"name", "arguments"}`` (``arguments`` a dict, or the raw text of a block that is not
    JSON under ``"raw"``)."""
    out: list[dict[str, Any]] = []
    for block in _TEXT_CALL_RE.findall(content or ""):
        try:
            data = json.loads(block)
        except json.JSONDecodeError:
            out.append({"name": None, "arguments": None, "raw": block})
            continue
        if isinstance(data, Mapping):
            out.append({"name": data.get("name"), "arguments": data.get("arguments")})
    return out


# -- reading the user's words ------------------------------------------------------------------
_QUOTE_RES = (
    re.compile(r"(?:^|(?<=[\s(\[{:=,]))'([^'\n]+?)'(?=$|[\s)\]},.;:!?])"),
    re.compile(r'(?:^|(?<=[\s(\[{:=,]))"([^"\n]+?)"(?=$|[\s)\]},.;:!?])'),
    re.compile(r"“([^”\n]+)”"),
    re.compile(r"`([^`\n]+)`"),
)
_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
_PROPER_RE = re.compile(r"(?<![\w'])[A-Z][\w'-]*(?:\s+(?:[A-Z][\w'-]*|of|de|del|la|van|von))*"
                        r"(?:,\s*[A-Z]{2}\b)?")
_TOPIC_RE = re.compile(r"\b(?:about|regarding|on|for|of|style of|named|called)\s+"
                       r"((?:[^\W\d][\w'-]*\s*){1,4})", re.I)
_EXPR_RE = re.compile(r"\(?-?\d+(?:\.\d+)?\)?(?:\s*[-+*/x×^]\s*\(?-?\d+(?:\.\d+)?\)?)+")
_WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_STOP_TOPIC = frozenset({"and", "or", "but", "with", "that", "which", "please", "using", "use",
                         "then", "so", "if", "because", "include", "including", "no", "not"})


def _words(name: str) -> list[str]:
    """``get_weatherNow-2`` -> ``["get", "weather", "now", "2"]``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w.lower() for w in re.split(r"[\s_\-.:/]+", spaced) if w]


def _stem(word: str) -> str:
    w = word.lower()
    for suffix, keep in (("ies", "y"), ("ing", ""), ("es", ""), ("ed", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: len(w) - len(suffix)] + keep
    return w


def _name_pattern(name: str) -> re.Pattern[str]:
    """Matches ``name`` and its spelling variants (``get_weather``, ``get weather``,
    ``get-weather``, ``getWeather``, ``getweather``) as a whole word."""
    words = _words(name)
    alternatives = {re.escape(name)}
    if words:
        alternatives.add(r"[\s_-]*".join(re.escape(w) for w in words))
    body = "|".join(sorted(alternatives, key=len, reverse=True))
    return re.compile(rf"(?<![\w])(?:{body})(?![\w])", re.I)


_JSON_EXAMPLE = re.compile(r"\{[^{}]*[\"']\w+[\"']\s*:[^{}]*\}")


class _Source:
    """What the user's words offer for filling values, with what has been used up."""

    def __init__(self, text: str, *, avoid: Sequence[str] = ()) -> None:
        self.text = text
        masked = text
        for name in avoid:  # tool names are not values
            masked = _name_pattern(name).sub(lambda m: " " * len(m.group(0)), masked)
        # a JSON example in the prompt shows the format, not the values
        masked = _JSON_EXAMPLE.sub(lambda m: " " * len(m.group(0)), masked)
        self.masked = masked
        spans: list[tuple[int, int]] = []
        quoted: list[tuple[int, str]] = []
        for rx in _QUOTE_RES:
            for m in rx.finditer(masked):
                if not any(a <= m.start() < b for a, b in spans):
                    spans.append((m.start(), m.end()))
                    quoted.append((m.start(), m.group(1).strip()))
        self.quoted = [q for _, q in sorted(quoted) if q]
        self.numbers: list[tuple[int, float | int]] = []
        for m in _NUMBER_RE.finditer(masked):
            if any(a <= m.start() < b for a, b in spans):
                continue
            raw = m.group(0)
            self.numbers.append((m.start(), float(raw) if "." in raw else int(raw)))
        self.used_numbers: set[int] = set()
        self.used_quotes: set[str] = set()
        self.used_phrases: set[str] = set()
        self.reserved: set[str] = set()  # quoted words that are field names, not values
        self.avoid_words = {w for n in avoid for w in _words(n)} | {n.lower() for n in avoid}

    # -- pools
    def proper_phrases(self) -> list[str]:
        out: list[str] = []
        for m in _PROPER_RE.finditer(self.masked):
            words = m.group(0).split()
            while words and (words[0].lower().strip(",") in _COMMON
                             or words[0].lower() in self.avoid_words or words[0] == "JSON"):
                words = words[1:]
            while words and words[-1].lower() in ("of", "de", "del", "la", "van", "von"):
                words = words[:-1]
            phrase = " ".join(words).strip(" ,")
            if phrase and phrase.lower() not in self.reserved and phrase not in out:
                out.append(phrase)
        return out

    def topics(self) -> list[str]:
        out: list[str] = []
        for m in _TOPIC_RE.finditer(self.masked):
            words: list[str] = []
            for w in m.group(1).split():
                if w.lower() in _STOP_TOPIC:
                    break
                if not words and w.lower() in ("a", "an", "the", "my", "your", "some"):
                    continue
                words.append(w)
            while words and words[-1].lower() in _COMMON:
                words.pop()
            phrase = " ".join(words)
            if phrase and phrase.lower() not in self.avoid_words and phrase not in out:
                out.append(phrase)
        return out

    def content_words(self) -> list[str]:
        seen: list[str] = []
        for w in _WORD_RE.findall(self.masked):
            lw = w.lower()
            if lw in _COMMON or lw in self.avoid_words or lw in self.reserved or w.isdigit():
                continue
            if w not in seen:
                seen.append(w)
        return seen

    def salient(self) -> str:
        for pool in (self.proper_phrases(), self.topics()):
            if pool:
                return pool[0]
        words = self.content_words()
        return max(words, key=len) if words else "example"

    # -- mentions of a field
    def mention(self, key: str) -> re.Match[str] | None:
        if not key:
            return None
        return _name_pattern(key).search(self.masked)

    def declined(self, key: str) -> bool:
        m = self.mention(key)
        if m is None:
            return False
        before = self.masked[max(0, m.start() - 24): m.start()].lower()
        tail = " ".join(before.replace(",", " ").split()[-3:])
        return any(re.search(rf"(?<![\w']){re.escape(n)}(?![\w'])", tail) for n in _NEGATIONS)

    def named(self, key: str, pattern: str) -> re.Match[str] | None:
        """``key`` followed by a value matching ``pattern`` (``a=3``, ``location: "Paris"``)."""
        if not key:
            return None
        name = _name_pattern(key).pattern
        # a quoted key ("name": "Bob") closes its quote and needs a separator: `"name" and
        # "age"` lists keys, it gives no value
        return re.search(rf"{name}(?:[\"'`]\s*(?:=|:)|(?![\"'`])\s*(?:=|:|is|of|to|equals|as|at)?)"
                         rf"\s*{pattern}", self.masked, re.I)

    # -- taking values
    def take_number(self, key: str, integer: bool) -> float | int | None:
        m = self.named(key, r"(-?\d+(?:\.\d+)?)(?![\w])")
        if m is not None:
            start = m.start(m.lastindex or 0)
            for i, (pos, value) in enumerate(self.numbers):
                if pos == start and i not in self.used_numbers:
                    self.used_numbers.add(i)
                    return value
        free = [i for i in range(len(self.numbers)) if i not in self.used_numbers]
        if integer:
            free = ([i for i in free if float(self.numbers[i][1]).is_integer()]
                    or free)
        if not free:
            return None
        self.used_numbers.add(free[0])
        return self.numbers[free[0]][1]

    def has_number(self) -> bool:
        return len(self.used_numbers) < len(self.numbers)

    def take_quote(self) -> str | None:
        for q in self.quoted:
            if q not in self.used_quotes and q.lower() not in self.reserved:
                self.used_quotes.add(q)
                return q
        return None

    def free_quotes(self) -> list[str]:
        return [q for q in self.quoted
                if q not in self.used_quotes and q.lower() not in self.reserved]

    def take_phrase(self, pool: list[str]) -> str | None:
        for p in pool:
            if p not in self.used_phrases:
                self.used_phrases.add(p)
                return p
        return None


# -- filling a JSON schema ------------------------------------------------------------------------
_MISSING: Any = object()


class _Filler:
    def __init__(self, source: _Source, root: Mapping[str, Any]) -> None:
        self.src, self.root = source, root

    def resolve(self, schema: Any, depth: int = 0) -> dict[str, Any]:
        if not isinstance(schema, Mapping):
            return {} if schema is True or schema is None else {"not": {}}
        s = dict(schema)
        while "$ref" in s and depth < 32:
            ref = str(s.pop("$ref"))
            target: Any = self.root
            if ref.startswith("#"):
                for part in [p for p in ref[1:].split("/") if p]:
                    part = part.replace("~1", "/").replace("~0", "~")
                    target = target.get(part, {}) if isinstance(target, Mapping) else {}
            else:
                target = {}
            s = {**(target if isinstance(target, Mapping) else {}), **s}
            depth += 1
        if "allOf" in s:
            merged: dict[str, Any] = {k: v for k, v in s.items() if k != "allOf"}
            for part in s["allOf"] or ():
                sub = self.resolve(part, depth + 1)
                props = {**merged.get("properties", {}), **sub.get("properties", {})}
                required = list(dict.fromkeys([*merged.get("required", []),
                                               *sub.get("required", [])]))
                merged = {**sub, **merged}
                if props:
                    merged["properties"] = props
                if required:
                    merged["required"] = required
            s = merged
        return s

    @staticmethod
    def types(s: Mapping[str, Any]) -> list[str]:
        t = s.get("type")
        if isinstance(t, str):
            return [t]
        if isinstance(t, list):
            return [str(x) for x in t]
        if "properties" in s or "additionalProperties" in s:
            return ["object"]
        if "items" in s or "prefixItems" in s:
            return ["array"]
        for v in (s.get("const"), *(s.get("enum") or [None])):
            if isinstance(v, bool):
                return ["boolean"]
            if isinstance(v, int):
                return ["integer"]
            if isinstance(v, float):
                return ["number"]
            if isinstance(v, str):
                return ["string"]
        return []

    def specific(self, s: Mapping[str, Any], key: str) -> bool:
        """Whether the text gives a value for this field (so an optional or nullable field is
        filled instead of left out / ``null``)."""
        if self.src.declined(key):
            return False
        if key and self.src.mention(key) is not None:
            return True
        t = (self.types(s) or ["string"])[0]
        if "enum" in s:
            return self._mentioned_enum(s["enum"]) is not _MISSING
        if t in ("integer", "number"):
            return self.src.named(key, r"-?\d") is not None
        if t == "string":
            return self.src.named(key, r"[\"'`]") is not None
        return False

    def fill(self, schema: Any, key: str = "") -> Any:
        s = self.resolve(schema)
        if "const" in s:
            return s["const"]
        for comb in ("anyOf", "oneOf"):
            if isinstance(s.get(comb), list) and s[comb]:
                options = [self.resolve(o) for o in s[comb]]
                real = [o for o in options if self.types(o) != ["null"]]
                rest = {k: v for k, v in s.items() if k not in (comb, "default")}
                if len(real) < len(options) and (not real or not self.specific(real[0], key)):
                    return None
                return self.fill({**rest, **real[0]}, key)
        types = self.types(s)
        if "null" in types and len(types) > 1:
            real_types = [t for t in types if t != "null"]
            if not self.specific({**s, "type": real_types[0]}, key):
                return None
            types = real_types
        if "enum" in s and s["enum"]:
            return self._enum(s, key)
        kind = types[0] if types else ("string" if not s else "object")
        if kind == "object":
            return self._object(s)
        if kind == "array":
            return self._array(s, key)
        if kind in ("integer", "number"):
            return self._number(s, key, kind == "integer")
        if kind == "boolean":
            return self._boolean(s, key)
        if kind == "null":
            return None
        return self._string(s, key)

    # -- objects
    def _object(self, s: Mapping[str, Any]) -> dict[str, Any]:
        props = s.get("properties") or {}
        if not isinstance(props, Mapping):
            return {}
        required = [k for k in s.get("required") or () if k in props]
        self.src.reserved |= {k.lower() for k in props}
        values: dict[str, Any] = {}
        for k in required:
            values[k] = self.fill(props[k], k)
        for k, sub in props.items():
            if k not in values and self.specific(self.resolve(sub), k):
                values[k] = self.fill(sub, k)
        return {k: values[k] for k in props if k in values}

    # -- arrays
    def _array(self, s: Mapping[str, Any], key: str) -> list[Any]:
        items = self.resolve(s.get("items") or {})
        lo = int(s.get("minItems") or 0)
        hi = s.get("maxItems")
        kind = (self.types(items) or ["string"])[0]
        out: list[Any] = []
        if "enum" in items:
            out = [v for v in items["enum"] if self._mentions_value(v)]
        elif kind in ("integer", "number"):
            while self.src.has_number() and (hi is None or len(out) < int(hi)):
                n = self._number(items, "", kind == "integer")
                out.append(n)
        elif kind == "string":
            quotes = self.src.free_quotes()
            for q in quotes:
                self.src.used_quotes.add(q)
            out = [self._fit_string(items, q) for q in quotes]
        while len(out) < max(1, lo) and (hi is None or len(out) < int(hi)):
            before = len(out)
            out.append(self.fill(items, key if len(out) == 0 else ""))
            if len(out) == before:
                break
        if s.get("uniqueItems"):
            unique: list[Any] = []
            for v in out:
                if v not in unique:
                    unique.append(v)
            out = unique
        return out[: int(hi)] if hi is not None else out

    # -- scalars
    def _mentions_value(self, value: Any) -> bool:
        return self._find_value(value) is not None

    def _find_value(self, value: Any) -> int | None:
        text = str(value).lower() if not isinstance(value, bool) else str(value).lower()
        if not text:
            return None
        m = re.search(rf"(?<![\w]){re.escape(text)}(?![\w])", self.src.masked.lower())
        return None if m is None else m.start()

    def _mentioned_enum(self, values: Sequence[Any]) -> Any:
        found = [(pos, i) for i, v in enumerate(values)
                 if v is not None and (pos := self._find_value(v)) is not None]
        return values[min(found)[1]] if found else _MISSING

    def _enum(self, s: Mapping[str, Any], key: str) -> Any:
        values = list(s["enum"])
        hit = self._mentioned_enum(values)
        if hit is not _MISSING:
            return hit
        if s.get("default") in values:
            return s["default"]
        return values[0]

    def _number(self, s: Mapping[str, Any], key: str, integer: bool) -> float | int:
        value = self.src.take_number(key, integer)
        if value is None:
            d = s.get("default")
            value = d if isinstance(d, int | float) and not isinstance(d, bool) else 1
        lo, hi = s.get("minimum"), s.get("maximum")
        xlo, xhi = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
        step = 1 if integer else 0.5
        if xlo is True and lo is not None:  # draft 4
            xlo, lo = lo, None
        if xhi is True and hi is not None:
            xhi, hi = hi, None
        if isinstance(lo, int | float) and value < lo:
            value = lo
        if isinstance(xlo, int | float) and not isinstance(xlo, bool) and value <= xlo:
            value = xlo + step
        if isinstance(hi, int | float) and value > hi:
            value = hi
        if isinstance(xhi, int | float) and not isinstance(xhi, bool) and value >= xhi:
            value = xhi - step
        mult = s.get("multipleOf")
        if isinstance(mult, int | float) and mult > 0:
            value = round(value / mult) * mult
        if integer:
            return int(round(value))
        return value

    def _boolean(self, s: Mapping[str, Any], key: str) -> bool:
        if key and self.src.mention(key) is not None:
            return not self.src.declined(key)
        d = s.get("default")
        return d if isinstance(d, bool) else False

    def _fit_string(self, s: Mapping[str, Any], value: str) -> str:
        lo, hi = s.get("minLength"), s.get("maxLength")
        if isinstance(hi, int) and len(value) > hi:
            value = value[:hi].rstrip() or value[:hi]
        if isinstance(lo, int) and len(value) < lo:
            value = value + "x" * (lo - len(value))
        return value

    def _string(self, s: Mapping[str, Any], key: str) -> str:
        return self._fit_string(s, self._string_value(s, key))

    def _string_value(self, s: Mapping[str, Any], key: str) -> str:
        src = self.src
        m = src.named(key, r"(?:\"([^\"]+)\"|'([^']+)'|`([^`]+)`)")
        if m is not None:
            value = next(g for g in m.groups()[-3:] if g)
            src.used_quotes.add(value)
            return value
        m = re.search(_name_pattern(key).pattern + r"\s*[:=]\s*([^\s,;]+)", src.masked, re.I) \
            if key else None
        if m is not None:
            return m.group(m.lastindex or 0)
        fmt = s.get("format")
        if isinstance(fmt, str):
            return self._formatted(fmt)
        words = set(_words(key))
        if words & _EXPR_WORDS:
            e = _EXPR_RE.search(src.masked)
            if e:
                return e.group(0).strip()
        if words & _NAME_WORDS:
            quote = src.take_quote()
            if quote:
                return quote
            after = re.search(r"\b(?:named|called)\s+([\w'-]+(?:\s+[A-Z][\w'-]*)*)", src.masked)
            if after:
                return after.group(1)
        if words & _LOCATION_WORDS:
            place = src.take_phrase(src.proper_phrases()) or src.take_phrase(src.topics())
            if place:
                return place
        if words & _QUERY_WORDS:
            quote = src.take_quote()
            if quote:
                return quote
            topic = src.take_phrase(src.topics())
            if topic:
                return topic
            text = " ".join(src.masked.split())
            return text or src.salient()
        quote = src.take_quote()
        if quote:
            return quote
        if not (words & _PROSE_WORDS):
            phrase = src.take_phrase(src.proper_phrases())
            if phrase:
                return phrase
        topic = src.take_phrase(src.topics()) if not (words & _PROSE_WORDS) else None
        if topic:
            return topic
        about = src.salient()
        label = " ".join(_words(key)) or "answer"
        if words & _PROSE_WORDS:
            return f"A short {label} about {about}."
        return about if about not in src.used_phrases else f"{label} for {about}"

    def _formatted(self, fmt: str) -> str:
        text = self.src.masked
        patterns = {
            "email": (r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", "user@example.com"),
            "uri": (r"https?://[^\s)\"']+", "https://example.com/"),
            "url": (r"https?://[^\s)\"']+", "https://example.com/"),
            "date": (r"\b\d{4}-\d{2}-\d{2}\b", "2024-01-01"),
            "date-time": (r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:\d{2})?",
                          "2024-01-01T12:00:00Z"),
            "time": (r"\b\d{2}:\d{2}(?::\d{2})?\b", "12:00:00"),
            "uuid": (r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
                     "00000000-0000-4000-8000-000000000000"),
        }
        if fmt not in patterns:
            return self.src.take_quote() or self.src.salient()
        rx, default = patterns[fmt]
        m = re.search(rx, text)
        value = m.group(0) if m else default
        if fmt == "date-time" and m and len(value) == 16:
            value += ":00Z"
        return value


def fill_schema(schema: Mapping[str, Any], text: str, *, avoid: Sequence[str] = ()) -> Any:
    """A value valid for the JSON ``schema``, filled from ``text`` (see the module doc);
    ``avoid``: words (tool names) that are never taken as values."""
    return _Filler(_Source(text, avoid=avoid), schema).fill(schema)


# -- choosing tools -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Match:
    tool: _Tool
    score: int
    position: int
    by_name: bool


def _match(tool: _Tool, text: str) -> _Match | None:
    named = _name_pattern(tool.name).search(text)
    if named:
        return _Match(tool, 100 + len(tool.name), named.start(), True)
    score, position = 0, len(text)
    text_words = [(m.start(), _stem(m.group(0))) for m in _WORD_RE.finditer(text)]
    stems = {w for _, w in text_words}

    def first(stem: str) -> int:
        return next((p for p, w in text_words if w == stem), len(text))

    for w in _words(tool.name):
        if w in _GENERIC_NAME_WORDS or w.isdigit() or len(w) < 3:
            continue
        if _stem(w) in stems:
            score, position = score + 10, min(position, first(_stem(w)))
    desc = {_stem(w) for w in _WORD_RE.findall(tool.description.lower())
            if len(w) >= 4 and w not in _COMMON}
    hits = desc & (stems - {_stem(w) for w in _COMMON})
    if len(hits) >= 2:
        score += 3 * len(hits)
        position = min(position, min(first(h) for h in hits))
    concept = {_stem(w) for w in _words(tool.name)} | desc
    for expr in _EXPR_RE.finditer(text):
        for op, names in _OPERATORS.items():
            ops = (op, "x", "×") if op == "*" else (op,)
            if any(o in expr.group(0) for o in ops) and concept & {_stem(n) for n in names}:
                score, position = score + 10, min(position, expr.start())
    return _Match(tool, score, position, False) if score >= 6 else None


def _choose(tools: list[_Tool], text: str, *, parallel: bool) -> list[_Match]:
    """The tools the text asks for, in the order it names them (one when not parallel)."""
    matches = [m for t in tools if (m := _match(t, text)) is not None]
    if any(m.by_name for m in matches):
        named = [m for m in matches if m.by_name]
        # a name inside a longer mentioned name (magic_function in magic_function_no_args)
        matches = [m for m in named if not any(
            o is not m and len(o.tool.name) > len(m.tool.name)
            and m.tool.name.lower() in o.tool.name.lower() for o in named)]
    if not parallel and matches:
        best = max(matches, key=lambda m: (m.score, -m.position))
        return [best]
    return sorted(matches, key=lambda m: m.position)


# -- arithmetic for prose answers -----------------------------------------------------------------
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow}


def _evaluate(expr: str) -> float | int | None:
    expr = expr.replace("×", "*").replace("^", "**").replace("x", "*")

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 10:
                raise ValueError("too big")
            return _BINOPS[type(node.op)](left, right)
        raise ValueError("not arithmetic")

    try:
        value = ev(ast.parse(expr, mode="eval"))
    except (ValueError, SyntaxError, ZeroDivisionError, TypeError):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return round(value, 6) if isinstance(value, float) else value


# -- decisions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """What :class:`AgentResponder` made of one request.

    ``kind``: ``"tool_calls"`` (the ``tool_calls`` field), ``"text_tool_calls"`` (written into
    the content), ``"final"`` (an answer from tool results), ``"json"`` or ``"text"``.
    ``reason``: ``"named"`` / ``"required"`` (tool_choice forced it), ``"mentioned"`` (a tool
    named in the text), ``"matched"`` (its name words, description or an operator),
    ``"tool_result"``, ``"json_schema"``, ``"json_object"``, ``"ignore_tools"``,
    ``"tool_choice_none"``, ``"no_match"`` or ``"no_tools"``.
    ``tool_calls``: the calls meant, ``{"name", "args"}`` with arguments valid for the tool's
    schema (before any misbehaviour); ``misbehaviours``: the knobs that fired; ``reply``: the
    dict handed to the server; ``content``: its content."""

    kind: str
    reason: str
    tool_calls: tuple[dict[str, Any], ...]
    content: str
    misbehaviours: tuple[str, ...]
    reply: dict[str, Any]
    model: str | None

    @property
    def names(self) -> list[str]:
        """The names of the tools called (meant), in order."""
        return [c["name"] for c in self.tool_calls]


class DecisionLog(list[Decision]):
    """A list of :class:`Decision` that server threads append to under a lock;
    :meth:`snapshot` returns a consistent copy."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def append(self, item: Decision) -> None:
        with self._lock:
            super().append(item)

    def clear(self) -> None:
        with self._lock:
            super().clear()

    def snapshot(self) -> list[Decision]:
        with self._lock:
            return list.copy(self)


def _probability(name: str, value: float | bool) -> float:
    p = float(value)
    if not 0 <= p <= 1:
        raise ValueError(f"{name}: expected a probability or a bool, got {value!r}")
    return p


class AgentResponder:
    """The responder :func:`agent_responder` returns: ``responder(body) -> dict``; records a
    :class:`Decision` per call in :attr:`decisions`."""

    def __init__(self, *, seed: int = 0, **knobs: float | bool) -> None:
        unknown = set(knobs) - set(KNOBS)
        if unknown:
            raise TypeError(f"unknown knobs: {', '.join(sorted(unknown))} (known: "
                            f"{', '.join(KNOBS)})")
        self.seed = seed
        self.knobs = {k: _probability(k, knobs.get(k, 0.0)) for k in KNOBS}
        self.decisions = DecisionLog()

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        decision = self.decide(body)
        self.decisions.append(decision)
        return dict(decision.reply)

    def __repr__(self) -> str:
        on = {k: v for k, v in self.knobs.items() if v}
        return f"<AgentResponder seed={self.seed} knobs={on} decisions={len(self.decisions)}>"

    # -- randomness
    def _digest(self, body: Mapping[str, Any]) -> str:
        core = {k: v for k, v in body.items() if k not in _TRANSPORT_KEYS}
        raw = json.dumps(core, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()

    def _rng(self, digest: str, what: str) -> random.Random:
        return random.Random(f"{self.seed}:{what}:{digest}")

    def _fires(self, digest: str, knob: str) -> bool:
        p = self.knobs[knob]
        return p > 0 and self._rng(digest, knob).random() < p

    # -- the decision
    def decide(self, body: Mapping[str, Any]) -> Decision:
        """The answer to ``body`` (deterministic), without recording it."""
        digest = self._digest(body)
        style = self._rng(digest, "style")
        tools = _tools(body)
        mode, forced = asked_tool_choice(body)
        parallel = body.get("parallel_tool_calls") is not False
        fmt, schema = asked_response_format(body)
        user = latest_user_text(body)
        results = tool_results(body)
        names = [t.name for t in tools]

        calls: list[dict[str, Any]] = []
        reason = ""
        if tools and mode == "named":
            tool = next((t for t in tools if t.name == forced), None)
            if tool is None:
                raise ValueError(f"tool_choice names {forced!r}, which is not among the tools"
                                 f" ({', '.join(names)})")
            calls = [self._call(tool, user, names)]
            reason = "named"
        elif tools and mode == "required":
            chosen = _choose(tools, user, parallel=parallel)
            calls = [self._call(m.tool, seg, names) for m, seg in _segments(chosen, user)] \
                or [self._call(tools[0], user, names)]
            reason = "required"
        elif not results and tools and mode == "auto":
            chosen = _choose(tools, user, parallel=parallel)
            if chosen:
                calls = [self._call(m.tool, seg, names) for m, seg in _segments(chosen, user)]
                reason = "mentioned" if any(m.by_name for m in chosen) else "matched"

        fired: list[str] = []
        if calls and self._fires(digest, "ignore_tools"):
            fired.append("ignore_tools")
            calls, reason = [], "ignore_tools"
            content = _prose(user, style, tools_ignored=True)
            kind = "text"
        elif calls:
            kind, content, reply_calls = self._tool_reply(calls, digest, style, tools, fired)
            return self._done(body, kind, reason, calls, content, fired, digest, reply_calls)
        elif results and fmt is None:
            kind, reason, content = "final", "tool_result", _final_answer(results, user, style)
        elif fmt is not None:
            kind, reason = "json", fmt
            content = self._json(body, fmt, schema, user, results, digest, style, fired)
        else:
            kind = "text"
            reason = reason or ("tool_choice_none" if tools and mode == "none" else
                                "no_match" if tools else "no_tools")
            content = _prose(user, style)
        return self._done(body, kind, reason, calls, content, fired, digest, None)

    def _done(self, body: Mapping[str, Any], kind: str, reason: str,
              calls: list[dict[str, Any]], content: str, fired: list[str], digest: str,
              reply_calls: list[dict[str, Any]] | None) -> Decision:
        if self._fires(digest, "think"):
            fired.append("think")
            content = _think(latest_user_text(body), calls) + content
        reply: dict[str, Any] = {"content": content}
        if reply_calls:
            reply["tool_calls"] = reply_calls
        model = body.get("model")
        return Decision(kind, reason, tuple(calls), content, tuple(fired), reply,
                        model if isinstance(model, str) else None)

    def _call(self, tool: _Tool, text: str, avoid: Sequence[str]) -> dict[str, Any]:
        params = tool.parameters or {"type": "object", "properties": {}}
        args = _Filler(_Source(text, avoid=avoid), params).fill(params)
        return {"name": tool.name, "args": args if isinstance(args, dict) else {}}

    def _tool_reply(self, calls: list[dict[str, Any]], digest: str, style: random.Random,
                    tools: list[_Tool], fired: list[str]
                    ) -> tuple[str, str, list[dict[str, Any]] | None]:
        by_name = {t.name: t for t in tools}
        args_list: list[Any] = [dict(c["args"]) for c in calls]
        if self._fires(digest, "wrong_types"):
            schema = by_name[calls[0]["name"]].parameters
            if _break_types(args_list[0], schema, self._rng(digest, "wrong_types.how")):
                fired.append("wrong_types")
        if self._fires(digest, "invalid_args"):
            fired.append("invalid_args")
            args_list[0] = _not_json(args_list[0], self._rng(digest, "invalid_args.how"))
        preamble = ""
        if self._fires(digest, "preamble"):
            fired.append("preamble")
            preamble = style.choice([
                "Let me check that.",
                f"I'll use the `{calls[0]['name']}` tool to look that up.",
                "Sure, let me call the tool for that.",
                "To answer this, I need to call a tool first.",
            ])
        if self._fires(digest, "text_tool_calls"):
            fired.append("text_tool_calls")
            blocks = []
            for c, args in zip(calls, args_list, strict=True):
                inner = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
                blocks.append(f'<tool_call>\n{{"name": {json.dumps(c["name"])}, '
                              f'"arguments": {inner}}}\n</tool_call>')
            content = (preamble + "\n\n" if preamble else "") + "\n".join(blocks)
            return "text_tool_calls", content, None
        return "tool_calls", preamble, [{"name": c["name"], "arguments": a}
                                        for c, a in zip(calls, args_list, strict=True)]

    def _json(self, body: Mapping[str, Any], fmt: str, schema: Mapping[str, Any] | None,
              user: str, results: list[ToolResult], digest: str, style: random.Random,
              fired: list[str]) -> str:
        text = "\n".join([*(r.content for r in results), user])
        if fmt == "json_schema" and schema is not None:
            value = _Filler(_Source(text), schema).fill(schema)
        else:
            value = _json_object(text, _system_text(body), results, style)
            schema = None
        if self._fires(digest, "wrong_types") and isinstance(value, dict):
            if _break_types(value, schema or {}, self._rng(digest, "wrong_types.how")):
                fired.append("wrong_types")
        raw = json.dumps(value, ensure_ascii=False, indent=2 if style.random() < 0.5 else None)
        if self._fires(digest, "fenced_json"):
            fired.append("fenced_json")
            lead = style.choice(["Here is the JSON you asked for:",
                                 "Sure! Here's the result in JSON format:",
                                 "Certainly. The requested object is below."])
            raw = f"{lead}\n\n```json\n{raw}\n```"
        return raw


def _segments(matches: list[_Match], text: str) -> list[tuple[_Match, str]]:
    """Each chosen tool with the part of the text that speaks of it: from its mention to the
    next tool's (the first from the start)."""
    if len(matches) <= 1:
        return [(m, text) for m in matches]
    out = []
    for i, m in enumerate(matches):
        start = 0 if i == 0 else m.position
        end = matches[i + 1].position if i + 1 < len(matches) else len(text)
        if end <= start:
            start, end = 0, len(text)
        out.append((m, text[start:end]))
    return out


def _break_types(args: dict[str, Any], schema: Mapping[str, Any], rng: random.Random) -> bool:
    """Turn a number or boolean into a string, else drop a required field; False if there was
    nothing to break."""
    filler = _Filler(_Source(""), schema)
    props = filler.resolve(schema).get("properties") or {}
    typed = [k for k, v in args.items() if isinstance(v, int | float) and k in props or
             isinstance(v, bool)]
    if typed:
        k = typed[0]
        v = args[k]
        args[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
        return True
    required = [k for k in filler.resolve(schema).get("required") or () if k in args]
    if not required and not schema and args:
        required = [next(iter(args))]
    if required:
        del args[rng.choice(required)]
        return True
    return False


def _not_json(args: Any, rng: random.Random) -> str:
    """Arguments no JSON parser (nor LangChain's partial-JSON repair) reads."""
    if rng.random() < 0.5 and args:
        raw = repr(args)  # {'location': 'Paris'}: a Python dict, as small models write
        try:
            json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return json.dumps(args, ensure_ascii=False) + "}"  # a doubled closing brace


def _think(user: str, calls: list[dict[str, Any]]) -> str:
    asked = " ".join(user.split())[:120] or "something"
    plan = (f"I should call {', '.join(c['name'] for c in calls)} to find out."
            if calls else "Let me work out a clear answer.")
    return f"<think>\nThe user asks: {asked}\n{plan}\n</think>\n\n"


def _scalar_of(content: str) -> tuple[str, Any] | None:
    """``("result", 3)`` for ``{"result": 3}``, ``("result", 7)`` for ``7``; else None."""
    try:
        data = json.loads(content)
    except (json.JSONDecodeError, TypeError):
        stripped = content.strip()
        return ("result", stripped) if re.fullmatch(r"-?\d+(?:\.\d+)?", stripped) else None
    if isinstance(data, Mapping) and len(data) == 1:
        (k, v), = data.items()
        if isinstance(v, str | int | float | bool) or v is None:
            return str(k), v
    if isinstance(data, int | float | str) and not isinstance(data, bool):
        return "result", data
    return None


def _final_answer(results: list[ToolResult], user: str, style: random.Random) -> str:
    if len(results) > 1:
        lines = "\n".join(f"- **{r.name}**: {r.content.strip()}" for r in results)
        return (f"Here is what I found:\n\n{lines}\n\n"
                "Let me know if you would like more detail on any of these.")
    r = results[0]
    content = r.content.strip()
    if re.match(r"(?i)\s*(error|exception|traceback)\b", content):
        return (f"The `{r.name}` tool returned an error: {content}\n\n"
                "It looks like the call was missing something; I can try again with corrected"
                " arguments if you like.")
    scalar = _scalar_of(content)
    if scalar is not None:
        key, value = scalar
        label = " ".join(_words(key)) or "result"
        return style.choice([
            f"The {label} is {value}.\n\nI used the `{r.name}` tool, which returned"
            f" `{content}`.",
            f"The {label} is **{value}**.\n\nAnswer: {value}",
            f"The {label} is {value}. Let me know if you need anything else!",
        ])
    return style.choice([
        f"According to the `{r.name}` tool: {content}\n\nLet me know if you need anything"
        " else.",
        f"Here's what I found:\n\n> {content}\n\nThis comes from the `{r.name}` tool.",
        f"Based on the tool result, {content[:1].lower()}{content[1:]}",
    ])


def _prose(user: str, style: random.Random, *, tools_ignored: bool = False) -> str:
    text = " ".join(user.split())
    lead = "I can answer this directly without using a tool. " if tools_ignored else ""
    if not text or re.match(r"(?i)^(hello|hi|hey|good (morning|afternoon|evening))\b", text) \
            and len(text) < 40:
        return lead + style.choice(["Hello! How can I help you today?",
                                    "Hi there! What can I do for you today?",
                                    "Hello! I'm doing well, thanks for asking. How can I help?"])
    expr = _EXPR_RE.search(text)
    value = _evaluate(expr.group(0)) if expr else None
    if expr is not None and value is not None:
        shown = expr.group(0).strip()
        return lead + style.choice([
            f"Let's work it out: {shown} = {value}.\n\nAnswer: {value}",
            f"To compute **{shown}**, we evaluate it step by step and get {value}.\n\n"
            f"Answer: {value}",
        ])
    topic = _Source(text).salient()
    return lead + style.choice([
        f"Sure! Here is a short answer about {topic}.\n\n{topic[:1].upper()}{topic[1:]} is a"
        " broad subject; the key points are summarised below.\n\n- It depends on context.\n"
        "- I'm happy to go into more detail.",
        f"Good question. In short, it comes down to **{topic}**.\n\nAnswer: {topic}",
        f"Here's my take on {topic}: it is worth looking at from a couple of angles, and I can"
        " expand on any of them if you like.",
    ])


_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _json_example(text: str) -> dict[str, Any] | None:
    """The first JSON object written in ``text`` (a format example), if any."""
    start = text.find("{")
    while start != -1:
        depth = 0
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    try:
                        data = json.loads(text[start: i + 1])
                    except json.JSONDecodeError:
                        break
                    if isinstance(data, dict) and data:
                        return data
                    break
        start = text.find("{", start + 1)
    return None


def _json_object(user: str, system: str, results: list[ToolResult],
                 style: random.Random) -> dict[str, Any]:
    """json_object mode: the keys the prompt names (a JSON example, quoted identifiers, or
    "keys a and b"), else ``{"answer": ...}``."""
    both = f"{system}\n{user}"
    example = _json_example(both)
    props: dict[str, Any] = {}
    if example is not None:
        for k, v in example.items():
            t = ("boolean" if isinstance(v, bool) else "integer" if isinstance(v, int)
                 else "number" if isinstance(v, float) else "array" if isinstance(v, list)
                 else "object" if isinstance(v, dict) else "string")
            props[str(k)] = {"type": t}
    else:
        src = _Source(both)
        names = [q for q in src.quoted if _IDENT_RE.match(q)]
        if not names:
            m = re.search(r"\b(?:keys|fields|properties)\s*:?\s*([\w ,]+?(?:\s+and\s+\w+)?)"
                          r"(?:[.;\n]|$)", both, re.I)
            if m:
                names = [w for w in re.split(r"\s*,\s*|\s+and\s+", m.group(1).strip())
                         if _IDENT_RE.match(w)]
        props = {n: {"type": "string"} for n in dict.fromkeys(names)}
    if not props:
        expr = _EXPR_RE.search(user)
        value = _evaluate(expr.group(0)) if expr else None
        answer: Any = value if value is not None else (
            results[-1].content if results else _Source(user).salient())
        return {"answer": answer}
    schema = {"type": "object", "properties": props, "required": list(props)}
    text = "\n".join([*(r.content for r in results), user])
    value = _Filler(_Source(text), schema).fill(schema)
    return value if isinstance(value, dict) else {}


def agent_responder(*, seed: int = 0, preamble: float | bool = 0.0, think: float | bool = 0.0,
                    invalid_args: float | bool = 0.0, wrong_types: float | bool = 0.0,
                    text_tool_calls: float | bool = 0.0, fenced_json: float | bool = 0.0,
                    ignore_tools: float | bool = 0.0) -> AgentResponder:
    """A responder that acts like a small tool-calling model (see the module doc). Each knob is
    the probability (or a bool: 0/1) of that misbehaviour per request, drawn from ``seed`` and
    the request body."""
    return AgentResponder(seed=seed, preamble=preamble, think=think, invalid_args=invalid_args,
                          wrong_types=wrong_types, text_tool_calls=text_tool_calls,
                          fenced_json=fenced_json, ignore_tools=ignore_tools)
