"""``with_structured_output`` for
:class:`~colm_graph.integrations.chat_model.CollaborativeChatModel`, with the three
methods of ``ChatOpenAI``:

* ``function_calling``: the schema as a tool the reply must call (``tool_choice`` naming it);
* ``json_schema``: ``response_format: {"type": "json_schema", ...}`` with the schema;
* ``json_mode``: ``response_format: {"type": "json_object"}`` (the prompt says which fields).

The run checks each reply against the schema before it accepts it (see
:mod:`colm_graph.core.agent`), so a cascade escalates a local reply that does not validate.
The parsed value is the schema's pydantic model (v2 or v1), or a dict for a TypedDict or a
JSON schema; text replies are read after any ``<think>`` block, in or out of a Markdown
fence, as real models write them.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.runnables import Runnable, RunnableLambda, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

from colm_graph.core.agent import json_of_reply
from colm_graph.errors import ColmGraphError

__all__ = ["METHODS", "structured_runnable"]

METHODS = ("function_calling", "json_schema", "json_mode")
"""The ``method`` values of ``with_structured_output``."""


def _parse_content(schema: Any) -> RunnableLambda[AIMessage, Any]:
    """A parser of a reply's JSON content into ``schema``; raises ``ValueError`` when the
    content holds no JSON object or it does not validate."""
    pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)

    def parse(message: AIMessage) -> Any:
        value = json_of_reply(message.text)
        if not isinstance(value, dict):
            raise ValueError(f"the reply is not a JSON object: {message.text[:200]!r}")
        if not pydantic:
            return value
        if hasattr(schema, "model_validate"):
            return schema.model_validate(value)
        return schema.parse_obj(value)  # a pydantic.v1 model

    return RunnableLambda(parse, name="parse_structured")


def _format(schema: Any, method: str, strict: bool | None) -> dict[str, Any]:
    if method == "json_mode":
        return {"type": "json_object"}
    json_schema = convert_to_json_schema(schema)
    spec: dict[str, Any] = {"name": str(json_schema.get("title") or "output"),
                            "schema": json_schema}
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def structured_runnable(chat: Any, schema: Any, *, method: str, include_raw: bool,
                        strict: bool | None) -> Runnable[Any, Any]:
    """``chat`` bound for ``schema`` by ``method``, piped into the parser of its replies."""
    if method not in METHODS:
        raise ColmGraphError(f"with_structured_output: method {method!r}, expected one of"
                             f" {', '.join(METHODS)}")
    if schema is None and method != "json_mode":
        raise ColmGraphError(f"with_structured_output: method {method!r} needs a schema")
    ls = {"kwargs": {"method": method}, "schema": schema}
    pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    parser: Runnable[Any, Any]
    if method == "function_calling":
        name = convert_to_openai_tool(schema)["function"]["name"]
        llm = chat.bind_tools([schema], tool_choice=name, ls_structured_output_format=ls)
        parser = PydanticToolsParser(tools=[schema], first_tool_only=True) if pydantic \
            else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
    else:
        llm = chat.bind(response_format=_format(schema, method, strict),
                        ls_structured_output_format=ls)
        parser = _parse_content(schema)
    if not include_raw:
        return llm | parser
    parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser,
                                        parsing_error=lambda _: None)
    failed = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=llm) | parsed.with_fallbacks([failed],
                                                        exception_key="parsing_error")
