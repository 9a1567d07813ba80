"""Deployment entry point for LangGraph Server, ``langgraph dev`` and LangGraph Studio.

``langgraph.json`` at the repository root points every graph id at an attribute of this
module (``"colm": "colm_graph.integrations.deploy:colm"``, one per shipped variant in ``graphs/``).
Importing the module builds one compiled graph per variant, all on the same model pool:

* ``COLM_GRAPH_MODELS`` — path to a pool file (see ``ModelPool.from_yaml``); relative paths
  are taken from the server's working directory (the folder holding ``langgraph.json`` under
  ``langgraph dev``). Unset or empty: the built-in simulated pool (``ModelPool.default()``),
  which needs no network or keys.

This module is the only place that picks the deployed pool from the environment; the rest
of the package takes its pool and parameters as arguments. (The API-key variables a pool file names
must be set in the server's environment too: loading the pool checks them, so a missing key
stops the server at start-up with the pool file's line.) Parameters and
role bindings are the specs' defaults; serve a customised variant by pointing
``langgraph.json`` at a module of your own that calls ``load_graph``.

The graphs are built at import time, not lazily through a module ``__getattr__``: the
LangGraph API server looks a graph up with ``module.__dict__[name]``, which a module
``__getattr__`` does not serve. Building all variants is cheap (a fraction of a second) and
makes no model calls. The graphs carry no checkpointer or store; the server supplies its own
persistence.

Imports are absolute so the file also loads by path
(``./colm_graph/integrations/deploy.py:colm``), which the server executes as a standalone
module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from colm_graph.pool import ModelPool
from colm_graph.spec import bundled_graphs, load_graph

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

__all__ = ["MODELS_ENV", "build_graphs", "graphs", "pool_from_env"]

MODELS_ENV = "COLM_GRAPH_MODELS"
"""Environment variable naming the pool file the deployed graphs use."""


def pool_from_env(environ: Mapping[str, str] | None = None) -> ModelPool:
    """The pool named by ``COLM_GRAPH_MODELS`` in ``environ`` (default ``os.environ``), else
    the built-in simulated pool. Raises :class:`~colm_graph.errors.PoolError` for a bad file."""
    env = os.environ if environ is None else environ
    path = env.get(MODELS_ENV, "").strip()
    return ModelPool.from_yaml(path) if path else ModelPool.default()


def build_graphs(pool: ModelPool | None = None) -> dict[str, CompiledStateGraph]:
    """One compiled graph per shipped variant, keyed by variant name, all on ``pool``
    (default: :func:`pool_from_env`)."""
    pool = pool_from_env() if pool is None else pool
    return {name: load_graph(name, pool=pool) for name in bundled_graphs()}


def _export(built: Mapping[str, CompiledStateGraph], namespace: dict[str, Any]) -> list[str]:
    """Bind each graph as a module attribute under its variant name; return the names."""
    for name, graph in built.items():
        if name in namespace:
            raise RuntimeError(f"graph variant {name!r} clashes with a name in {__name__}")
        namespace[name] = graph
    return sorted(built)


graphs: dict[str, CompiledStateGraph] = build_graphs()
"""The deployed graphs, keyed by variant name; each is also a module attribute."""

__all__ += _export(graphs, globals())
