"""colm_graph: collaborative inference between small local and large paid language models,
as LangGraph graphs (CoLM client-server rounds, cascades, routing, baselines).

The public names below are imported on first use, so ``import colm_graph`` stays cheap and
pulls in neither LangGraph nor a provider SDK until a graph is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "CollaborativeChatModel": "chat_model", "protocol_tool": "tools",
    "agreement": "answers", "extract_answer": "answers", "normalize_answer": "answers",
    "ColmGraphError": "errors", "ConfigError": "errors", "PoolError": "errors",
    "create_cascade_graph": "factories", "create_colm_graph": "factories",
    "create_colm_vlm_graph": "factories", "create_cope_graph": "factories",
    "create_debate_graph": "factories", "create_moa_graph": "factories",
    "create_route_graph": "factories", "create_self_consistency_graph": "factories",
    "create_single_graph": "factories",
    "CallRecord": "ledger", "LedgerTotals": "ledger", "Usage": "ledger",
    "ledger_totals": "ledger",
    "ModelPool": "pool", "ModelSpec": "pool", "Price": "pool", "SimSettings": "pool",
    "summarize": "result",
    "EmbeddingKNNScorer": "routing_scorers", "HeuristicScorer": "routing_scorers",
    "LLMDifficultyScorer": "routing_scorers", "calibrate_threshold": "routing_scorers",
    "load_labelled": "routing_scorers",
    "EmbeddingSelector": "selection", "LexicalSelector": "selection",
    "LLMSelector": "selection", "Selector": "selection",
    "GraphSpec": "spec", "RoleBinding": "spec", "SpecError": "spec",
    "bundled_graphs": "spec", "load_graph": "spec", "load_spec": "spec", "parse_spec": "spec",
}

__all__ = [
    "CollaborativeChatModel",
    "CallRecord",
    "ColmGraphError",
    "ConfigError",
    "EmbeddingKNNScorer",
    "EmbeddingSelector",
    "GraphSpec",
    "HeuristicScorer",
    "LLMDifficultyScorer",
    "LLMSelector",
    "LedgerTotals",
    "LexicalSelector",
    "ModelPool",
    "ModelSpec",
    "PoolError",
    "Price",
    "RoleBinding",
    "Selector",
    "SimSettings",
    "SpecError",
    "Usage",
    "agreement",
    "bundled_graphs",
    "calibrate_threshold",
    "create_cascade_graph",
    "create_colm_graph",
    "create_colm_vlm_graph",
    "create_cope_graph",
    "create_debate_graph",
    "create_moa_graph",
    "create_route_graph",
    "create_self_consistency_graph",
    "create_single_graph",
    "extract_answer",
    "ledger_totals",
    "load_graph",
    "load_labelled",
    "load_spec",
    "normalize_answer",
    "parse_spec",
    "protocol_tool",
    "summarize",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'colm_graph' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from .answers import agreement, extract_answer, normalize_answer
    from .chat_model import CollaborativeChatModel
    from .errors import ColmGraphError, ConfigError, PoolError
    from .factories import (
        create_cascade_graph,
        create_colm_graph,
        create_colm_vlm_graph,
        create_cope_graph,
        create_debate_graph,
        create_moa_graph,
        create_route_graph,
        create_self_consistency_graph,
        create_single_graph,
    )
    from .ledger import CallRecord, LedgerTotals, Usage, ledger_totals
    from .pool import ModelPool, ModelSpec, Price, SimSettings
    from .result import summarize
    from .routing_scorers import (
        EmbeddingKNNScorer,
        HeuristicScorer,
        LLMDifficultyScorer,
        calibrate_threshold,
        load_labelled,
    )
    from .selection import EmbeddingSelector, LexicalSelector, LLMSelector, Selector
    from .spec import (
        GraphSpec,
        RoleBinding,
        SpecError,
        bundled_graphs,
        load_graph,
        load_spec,
        parse_spec,
    )
    from .tools import protocol_tool
