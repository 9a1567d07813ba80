"""Locate the bundled folders (graphs/, prompts/, evals/datasets/).

In a wheel they live in ``colm_graph/_bundled``; in a source checkout (editable install)
they are at the repository root next to the package.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["bundled_dir"]

_PACKAGE = Path(__file__).resolve().parents[1]
_BUNDLED = {"graphs": "graphs", "prompts": "prompts", "datasets": "datasets"}
_SOURCE = {"graphs": "graphs", "prompts": "prompts", "datasets": "evals/datasets"}


def bundled_dir(kind: str) -> Path:
    """Return the directory holding the bundled ``kind`` ('graphs', 'prompts', 'datasets')."""
    inside = _PACKAGE / "_bundled" / _BUNDLED[kind]
    if inside.is_dir():
        return inside
    source = _PACKAGE.parent / _SOURCE[kind]
    if source.is_dir():
        return source
    raise FileNotFoundError(f"bundled folder {kind!r} not found (looked in {inside} and {source})")
