"""Pool files for tests against a local OpenAI-compatible server: a local ``small`` and a
paid ``big`` (key from ``COLM_TEST_KEY``) at the same ``base_url``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["small_big_pool"]


def _entry(fields: dict[str, object]) -> str:
    first, *rest = fields.items()
    return "".join([f"  - {first[0]}: {first[1]}\n", *(f"    {k}: {v}\n" for k, v in rest)])


def small_big_pool(path: Path, base_url: str, *, price: tuple[float, float] = (2.5, 10.0),
                   small: dict[str, object] | None = None,
                   big: dict[str, object] | None = None) -> Path:
    """Write the pool to ``path``; ``small`` / ``big`` add YAML fields to either entry
    (values written as they are: ``{"domains": "[tide tables]"}``)."""
    local = {"name": "small", "provider": "openai", "model": "small", "base_url": base_url,
             "tier": "local", **(small or {})}
    paid = {"name": "big", "provider": "openai", "model": "big", "base_url": base_url,
            "api_key_env": "COLM_TEST_KEY", "tier": "paid",
            "price": f"{{input: {price[0]}, output: {price[1]}}}", **(big or {})}
    path.write_text("models:\n" + _entry(local) + _entry(paid))
    return path
