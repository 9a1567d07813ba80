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
    "CollaborativeChatModel": "integrations.chat_model", "protocol_tool": "integrations.tools",
    "agreement": "core.answers", "extract_answer": "core.answers",
    "normalize_answer": "core.answers",
    "ColmGraphError": "errors", "ConfigError": "errors", "PoolError": "errors",
    "create_cascade_graph": "spec.factories", "create_colm_graph": "spec.factories",
    "create_colm_vlm_graph": "spec.factories", "create_cope_graph": "spec.factories",
    "create_debate_graph": "spec.factories", "create_moa_graph": "spec.factories",
    "create_route_graph": "spec.factories", "create_self_consistency_graph": "spec.factories",
    "create_single_graph": "spec.factories",
    "CallRecord": "core.ledger", "LedgerTotals": "core.ledger", "Usage": "core.ledger",
    "ledger_totals": "core.ledger",
    "with_constraints": "run.constraints", "find_private": "run.privacy",
    "ModelPool": "pool", "ModelSpec": "pool", "Price": "pool", "SimSettings": "pool",
    "RunResult": "core.result", "summarize": "core.result",
    "EmbeddingKNNScorer": "routing.scorers", "HeuristicScorer": "routing.scorers",
    "LLMDifficultyScorer": "routing.scorers", "calibrate_threshold": "routing.scorers",
    "load_labelled": "routing.scorers",
    "EmbeddingSelector": "routing.selectors", "LexicalSelector": "routing.selectors",
    "LLMSelector": "routing.selectors", "Selector": "routing.selectors",
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
    "RunResult",
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
    "with_constraints",
    "find_private",
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
    from colm_graph.core.answers import agreement, extract_answer, normalize_answer
    from colm_graph.core.ledger import CallRecord, LedgerTotals, Usage, ledger_totals
    from colm_graph.core.result import RunResult, summarize
    from colm_graph.errors import ColmGraphError, ConfigError, PoolError
    from colm_graph.integrations.chat_model import CollaborativeChatModel
    from colm_graph.integrations.tools import protocol_tool
    from colm_graph.pool import ModelPool, ModelSpec, Price, SimSettings
    from colm_graph.routing.scorers import (
        EmbeddingKNNScorer,
        HeuristicScorer,
        LLMDifficultyScorer,
        calibrate_threshold,
        load_labelled,
    )
    from colm_graph.routing.selectors import (
        EmbeddingSelector,
        LexicalSelector,
        LLMSelector,
        Selector,
    )
    from colm_graph.spec import (
        GraphSpec,
        RoleBinding,
        SpecError,
        bundled_graphs,
        load_graph,
        load_spec,
        parse_spec,
    )
    from colm_graph.spec.factories import (
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
