"""Turn a pydantic ValidationError into one line naming the place and what was expected."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from ._yaml import format_loc

__all__ = ["describe_error"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_fields(model: type[BaseModel] | None, loc: Sequence[str | int]) -> list[str]:
    """Field names of the model that owns the (unknown) key at ``loc``."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
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
    err = exc.errors(include_url=False)[0]
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
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
