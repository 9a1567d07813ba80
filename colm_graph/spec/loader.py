"""Find, read and validate graph specs; ``load_graph`` builds one into a compiled graph."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from colm_graph.core.resources import bundled_dir
from colm_graph.core.validation import describe_error
from colm_graph.core.yamlfile import YamlDoc, load_yaml, parse_yaml
from colm_graph.errors import ColmGraphError
from colm_graph.spec.compile import compile_spec
from colm_graph.spec.schema import GraphSpec
from colm_graph.spec.validate import SpecError, check_spec

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

__all__ = ["bundled_graphs", "load_graph", "load_spec", "parse_spec"]

_BARE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def bundled_graphs() -> list[str]:
    """Names of the variants shipped in ``graphs/``."""
    return sorted(p.stem for p in bundled_dir("graphs").glob("*.yaml"))


def _exists(path: str) -> bool:
    try:
        return Path(path).exists()
    except OSError:  # e.g. a name too long for the file system
        return False


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if _BARE_NAME.match(text) and not _exists(text):
        path = bundled_dir("graphs") / f"{text}.yaml"
        if not _exists(str(path)):
            raise SpecError(f"graph {text!r}: no such variant (shipped: "
                            f"{', '.join(bundled_graphs())}; or give a path to a .yaml file)")
        return path
    return Path(text)


def _from_doc(doc: YamlDoc) -> GraphSpec:
    if not isinstance(doc.data, dict):
        got = "an empty file" if doc.data is None else type(doc.data).__name__
        raise SpecError(f"{doc.source}:{doc.line([]) or 1}: expected a mapping with name,"
                        f" nodes and edges, got {got}")
    try:
        spec = GraphSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise SpecError(describe_error(exc, doc.where, model=GraphSpec)) from None
    check_spec(spec, doc.where)
    return spec


def load_spec(name_or_path: str | Path) -> GraphSpec:
    """Read and validate a spec: a shipped variant's name (``colm``) or a YAML path."""
    path = _resolve(name_or_path)
    try:
        doc = load_yaml(path, what="graph spec")
    except SpecError:
        raise
    except ColmGraphError as exc:
        raise SpecError(str(exc)) from None
    return _from_doc(doc)


def parse_spec(text: str, *, source: str = "<spec>") -> GraphSpec:
    """Validate a spec given as YAML text."""
    try:
        doc = parse_yaml(text, source=source)
    except ColmGraphError as exc:
        raise SpecError(str(exc)) from None
    return _from_doc(doc)


def load_graph(spec: str | Path | GraphSpec, **kwargs: Any) -> CompiledStateGraph:
    """Build a graph variant into a compiled LangGraph graph.

    Args:
        spec: a shipped variant's name (``"cope"``), a path to a spec file, or a GraphSpec.
        **kwargs: ``pool``, ``params`` (parameter overrides), ``roles`` (role -> model name,
            list of names or RoleBinding), ``prompts``, ``selector``, ``embeddings``,
            ``scorer``, ``checkpointer``, ``store``, ``name`` — see :func:`compile_spec`.
    """
    parsed = spec if isinstance(spec, GraphSpec) else load_spec(spec)
    return compile_spec(parsed, **kwargs)
