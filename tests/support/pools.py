"""Model-pool YAML files for tests against a local OpenAI-compatible server.

``write_pool`` writes ``{"models": [...], "server": ...}`` from plain entry dicts, which
``local_entry`` (a ``tier: local`` entry) and ``paid_entry`` (a ``tier: paid`` entry with
its key variable and price) build; any further field is passed as a keyword.
``small_big_pool`` is the common pair: a local ``small`` and a paid ``big`` (key from
``COLM_TEST_KEY``) at the same ``base_url``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["local_entry", "paid_entry", "small_big_pool", "write_pool"]


def local_entry(name: str, model: str, base_url: str, **fields: Any) -> dict[str, Any]:
    """A ``tier: local`` entry of ``provider: openai``; ``fields`` add or override keys."""
    return {"name": name, "provider": "openai", "model": model, "base_url": base_url,
            "tier": "local", **fields}


def paid_entry(name: str, model: str, base_url: str, *, key_env: str,
               price: tuple[float, float], **fields: Any) -> dict[str, Any]:
    """A ``tier: paid`` entry of ``provider: openai`` whose key is read from ``key_env``;
    ``price`` is (input, output) USD per million tokens; ``fields`` add or override keys."""
    return {"name": name, "provider": "openai", "model": model, "base_url": base_url,
            "api_key_env": key_env, "tier": "paid",
            "price": {"input": price[0], "output": price[1]}, **fields}


def write_pool(path: Path, entries: list[dict[str, Any]], *,
               server: str | None = None) -> Path:
    """Write a pool of ``entries`` (and ``server:`` when given) to ``path``; return it."""
    doc: dict[str, Any] = {"models": entries}
    if server is not None:
        doc["server"] = server
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def small_big_pool(path: Path, base_url: str, *, price: tuple[float, float] = (2.5, 10.0),
                   small: dict[str, Any] | None = None,
                   big: dict[str, Any] | None = None) -> Path:
    """Write the pool to ``path``; ``small`` / ``big`` add fields to either entry
    (``{"domains": ["tide tables"]}``)."""
    return write_pool(path, [
        local_entry("small", "small", base_url, **(small or {})),
        paid_entry("big", "big", base_url, key_env="COLM_TEST_KEY", price=price,
                   **(big or {})),
    ])
