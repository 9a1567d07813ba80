"""colm_graph: collaborative inference between small local and large paid language models,
as LangGraph graphs (CoLM client-server rounds, cascades, routing, baselines)."""

from .answers import agreement, extract_answer, normalize_answer
from .errors import ColmGraphError, ConfigError, PoolError
from .factories import create_colm_graph
from .ledger import CallRecord, LedgerTotals, Usage, ledger_totals
from .pool import ModelPool, ModelSpec, Price, SimSettings
from .result import summarize
from .selection import EmbeddingSelector, LexicalSelector, LLMSelector, Selector

__all__ = [
    "CallRecord",
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
