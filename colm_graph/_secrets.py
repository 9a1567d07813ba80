"""API-key values from the environment, and scrubbing them (whole, or in the partly masked
form providers echo, such as ``sk-abcd1234****wxyz``) out of any text we show or write."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["pool_secrets", "scrub"]

MASK = "***"
_PREFIX = 8
"""A token starting with this many characters of a key is treated as (part of) the key."""


def pool_secrets(pool: Any, extra: Iterable[str | None] = ()) -> list[str]:
    """Values of the API-key variables a pool names (plus ``extra``), longest first."""
    values = []
    for entry in pool:
        env = entry.spec.key_env() if entry.spec is not None else None
        if env:
            values.append(os.environ.get(env, ""))
    if any(getattr(e.spec, "provider", None) == "openai" for e in pool):
        values.append(os.environ.get("OPENAI_API_KEY", ""))  # scrubbed even where unsent
    values.extend(v or "" for v in extra)
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str], mask: str = MASK) -> str:
    """``text`` with every secret, and every token that starts like one, replaced."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, mask)
        if len(secret) >= 2 * _PREFIX:
            text = re.sub(re.escape(secret[:_PREFIX]) + r"[^\s\"'<>,;]*", mask, text)
    return text
