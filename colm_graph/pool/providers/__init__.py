"""Providers turn a :class:`~colm_graph.pool.ModelSpec` into a LangChain chat model.

One module per provider; each is imported only when a pool entry needs it, so that
``import colm_graph`` pulls in neither torch nor an SDK client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from colm_graph.pool.spec import ModelSpec

__all__ = ["PROVIDERS", "build_chat_model"]

PROVIDERS: dict[str, str] = {
    "openai": "colm_graph.pool.providers.openai",
    "huggingface": "colm_graph.pool.providers.huggingface",
    "sim": "colm_graph.pool.providers.sim.model",
}
"""Provider name -> module exposing ``build(spec) -> BaseChatModel``."""


def build_chat_model(spec: ModelSpec) -> BaseChatModel:
    module = importlib.import_module(PROVIDERS[spec.provider])
    return module.build(spec)
