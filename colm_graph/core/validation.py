"""Turn a pydantic ValidationError into one line naming the place and what was expected."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, get_origin

from pydantic import BaseModel, ValidationError

from colm_graph.core.yamlfile import format_loc

__all__ = ["describe_error"]

_UNION_TAG = re.compile(r"^(str|int|float|bool|none|list\[.*\]|dict\[.*\])$")
_TYPE_WORDS = {"str": "a string", "int": "an integer", "float": "a number",
               "bool": "true or false", "none": "null", "list[str]": "a list of strings"}


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4300 digits has no repr
        text = f"<{type(value).__name__} too long to show>"
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_fields(model: type[BaseModel] | None, loc: Sequence[str | int]) -> list[str]:
    """Field names of the model that owns the (unknown) key at ``loc``."""
    current: Any = model
    in_dict = False
    for part in loc[:-1]:
        if isinstance(part, int) or current is None or in_dict:
            in_dict = False  # a list index or a dict key: the same item model
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        in_dict = get_origin(ann) is dict
        current = None
        for candidate in (ann, *getattr(ann, "__args__", ())):
            for inner in (candidate, *getattr(candidate, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    current = inner
    return sorted(getattr(current, "model_fields", {}))


def describe_error(
    exc: ValidationError,
    where: Callable[[Sequence[str | int]], str],
    *,
    model: type[BaseModel] | None = None,
) -> str:
    """One line for the first error of ``exc``; ``where(loc)`` renders the place."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = [p for p in err["loc"]
           if not (isinstance(p, str) and (p.startswith("function-") or p == "[key]"))]
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    # A value no member of a union accepts fails once per member, each under the member's
    # type as the last part of its loc: name the field, and every type it could have been.
    tags = [e["loc"][-1] for e in errors if e["loc"][:-1] == err["loc"][:-1]]
    if len(tags) > 1 and all(isinstance(t, str) and _UNION_TAG.match(t) for t in tags):
        words = [_TYPE_WORDS.get(t, "a mapping" if t.startswith("dict") else "a list")
                 for t in map(str, tags)]
        return f"{where(loc[:-1])}: expected {' or '.join(words)}, got {_short(value)}"
    if kind == "extra_forbidden":
        allowed = _allowed_fields(model, loc)
        hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        return f"{where(loc)}: unknown field {str(loc[-1])!r}{hint}"
    if kind == "missing":
        return f"{where(loc[:-1])}: missing required field {str(loc[-1])!r}"
    if kind == "literal_error":
        return f"{where(loc)}: expected {ctx.get('expected')}, got {_short(value)}"
    if kind == "value_error":
        msg = str(ctx.get("error", err["msg"]))
        return f"{where(loc)}: {msg}"
    return f"{where(loc)}: {err['msg'][0].lower()}{err['msg'][1:]}, got {_short(value)}"


def plain_where(source: str) -> Callable[[Sequence[str | int]], str]:
    """A ``where`` for objects built in Python (no file)."""
    return lambda loc: f"{source}: {format_loc(loc)}" if loc else source
