"""Providers turn a :class:`~colm_graph.pool.ModelSpec` into a LangChain chat model.

One module per provider; each is imported only when a pool entry needs it, so that
``import colm_graph`` pulls in neither torch nor an SDK client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from ..pool import ModelSpec

__all__ = ["PROVIDERS", "build_chat_model"]

PROVIDERS: dict[str, str] = {
    "openai": "colm_graph.providers.openai",
    "huggingface": "colm_graph.providers.huggingface",
    "sim": "colm_graph.providers.sim",
}
"""Provider name -> module exposing ``build(spec) -> BaseChatModel``."""


def build_chat_model(spec: ModelSpec) -> BaseChatModel:
    module = importlib.import_module(PROVIDERS[spec.provider])
    return module.build(spec)
