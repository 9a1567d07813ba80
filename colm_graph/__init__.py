"""colm_graph: collaborative inference between small local and large paid language models,
as LangGraph graphs (CoLM client-server rounds, cascades, routing, baselines)."""

from .answers import agreement, extract_answer, normalize_answer
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

__all__ = [
    "CallRecord",
    "EmbeddingKNNScorer",
    "GraphSpec",
    "HeuristicScorer",
    "LLMDifficultyScorer",
    "RoleBinding",
    "SpecError",
    "bundled_graphs",
    "calibrate_threshold",
    "create_cascade_graph",
    "create_colm_vlm_graph",
    "create_cope_graph",
    "create_debate_graph",
    "create_moa_graph",
    "create_route_graph",
    "create_self_consistency_graph",
    "create_single_graph",
    "load_graph",
    "load_labelled",
    "load_spec",
    "parse_spec",
    "ColmGraphError",
    "ConfigError",
    "EmbeddingSelector",
    "LLMSelector",
    "LedgerTotals",
    "LexicalSelector",
    "ModelPool",
    "ModelSpec",
    "PoolError",
    "Price",
    "Selector",
    "SimSettings",
    "Usage",
    "agreement",
    "create_colm_graph",
    "extract_answer",
    "ledger_totals",
    "normalize_answer",
    "summarize",
]

__version__ = "0.1.0"
