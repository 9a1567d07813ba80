"""Python factories for the shipped variants: keyword-only, validate their inputs, and build
``graphs/<name>.yaml`` through the same compiler as :func:`colm_graph.load_graph`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colm_graph.core.prompts import PromptSet
from colm_graph.core.settings import OutputPolicy
from colm_graph.errors import ConfigError

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph
    from langgraph.store.base import BaseStore

    from colm_graph.pool import ModelPool
    from colm_graph.routing.scorers import Scorer
    from colm_graph.routing.selectors import Selector

__all__ = [
    "create_cascade_graph", "create_colm_graph", "create_colm_vlm_graph", "create_cope_graph",
    "create_debate_graph", "create_moa_graph", "create_route_graph",
    "create_self_consistency_graph", "create_single_graph",
]


def _build(variant: str, *, params: dict[str, Any], roles: dict[str, Any], pool: Any,
           names: dict[str, str] | None = None, **compile_kwargs: Any) -> CompiledStateGraph:
    """Check ``params`` (errors name the Python argument: ``names`` maps a parameter to its
    argument where they differ) and build the shipped spec ``variant``."""
    from colm_graph.spec import load_graph, load_spec
    from colm_graph.spec.validate import bind_params

    spec = load_spec(variant)
    bind_params(spec, params, names={k: (names or {}).get(k, k) for k in params})
    given = {k: v for k, v in params.items() if v is not None}
    bound = {k: v for k, v in roles.items() if v is not None}
    for role, value in bound.items():
        if isinstance(value, str):
            continue
        if not value or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{role}: expected a non-empty list of model names, got {value!r}")
    return load_graph(spec, pool=pool, params=given, roles=bound, **compile_kwargs)


def create_colm_graph(
    *,
    pool: ModelPool | None = None,
    clients: Sequence[str] | None = None,
    server: str | None = None,
    top_k: int = 2,
    rounds: int = 2,
    selector: str | Selector = "lexical",
    embeddings: Embeddings | None = None,
    skip_guidance_when_agreed: bool = True,
    output: OutputPolicy = "auto",
    home: str | None = None,
    max_paid_usd: float | None = None,
    prompts: str | Path | PromptSet | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    store: BaseStore | None = None,
    name: str | None = "colm",
) -> CompiledStateGraph:
    """Build the CoLM client-server graph (``graphs/colm.yaml``).

    Args:
        pool: models the run may call (default: the built-in simulated pool).
        clients: clients the selector may choose from (default: the pool's local models).
        server: the server model (default: the pool's ``server``, else its first paid model).
        top_k: clients per question (the home client counts as one).
        rounds: guidance rounds at most; 0 runs drafts only.
        selector: ``lexical``, ``embedding`` (needs ``embeddings``), ``llm``, or a Selector.
        embeddings: any LangChain ``Embeddings``, for the embedding selector.
        skip_guidance_when_agreed: make no server call when all drafts already agree.
        output: ``auto`` (home client if named, else majority), ``home`` or ``majority``.
        home: default home client when the input names none.
        max_paid_usd: stop paid calls once this much has been spent (run marked degraded).
        prompts: a directory of prompt files overriding the bundled ``prompts/``.
        checkpointer: passed to ``compile`` (e.g. a SQLite saver).
        store: passed to ``compile``.
        name: graph name, passed to ``compile``.

    Returns:
        A compiled LangGraph graph: input ``{"question": ..., "home"?: ..., "clients"?: [...]}``,
        output with ``answer``, ``answers``, ``responses``, ``guidance``, ``rounds``,
        ``stop_reason``, ``degraded`` and ``ledger``.
    """
    if isinstance(clients, str) or (clients is not None and not clients):
        raise ConfigError(f"clients: expected a non-empty list of model names, got {clients!r}")
    params = {"top_k": top_k, "rounds": rounds,
              "skip_guidance_when_agreed": bool(skip_guidance_when_agreed),
              "output": output, "home": home, "max_paid_usd": max_paid_usd}
    if home is not None and pool is not None:
        pool.entry(home)
    return _build("colm", params=params, roles={"client": clients, "server": server},
                  pool=pool, selector=selector, embeddings=embeddings,
                  prompts=None if prompts is None else prompts if isinstance(prompts, PromptSet)
                  else str(prompts), checkpointer=checkpointer, store=store, name=name)


def create_colm_vlm_graph(*, pool: ModelPool | None = None, clients: Sequence[str] | None = None,
                          top_k: int = 2, rounds: int = 1, selector: str | Selector = "lexical",
                          embeddings: Embeddings | None = None, output: OutputPolicy = "auto",
                          max_paid_usd: float | None = None, **compile_kwargs: Any
                          ) -> CompiledStateGraph:
    """CoLM for vision-language clients (``graphs/colm_vlm.yaml``): pass ``images`` in the
    input; client outputs are concatenated and each client refines with them."""
    params = {"top_k": top_k, "rounds": rounds, "output": output,
              "max_paid_usd": max_paid_usd}
    return _build("colm_vlm", params=params, roles={"client": clients}, pool=pool,
                  selector=selector, embeddings=embeddings, **compile_kwargs)


def create_cope_graph(*, pool: ModelPool | None = None, small: str | None = None,
                      large: str | None = None, samples: int = 3, threshold: float = 0.67,
                      max_paid_usd: float | None = None, **compile_kwargs: Any
                      ) -> CompiledStateGraph:
    """COPE planner/executor cascade (``graphs/cope.yaml``); ``small``/``large`` bind the
    planner and executor roles of each tier."""
    params = {"samples": samples, "threshold": threshold, "max_paid_usd": max_paid_usd}
    roles = {"small_planner": small, "small_executor": small, "large_planner": large,
             "large_executor": large}
    return _build("cope", params=params, roles=roles, pool=pool, **compile_kwargs)


def create_route_graph(*, pool: ModelPool | None = None, strong: str | None = None,
                       weak: str | None = None, router: str | None = None,
                       threshold: float = 0.5, scorer: str | Scorer = "heuristic",
                       embeddings: Embeddings | None = None,
                       max_paid_usd: float | None = None, **compile_kwargs: Any
                       ) -> CompiledStateGraph:
    """Router score vs threshold (``graphs/route.yaml``); ``scorer`` is ``heuristic``,
    ``llm`` or a Scorer object (e.g. ``EmbeddingKNNScorer``)."""
    params = {"threshold": threshold, "max_paid_usd": max_paid_usd}
    return _build("route", params=params, roles={"strong": strong, "weak": weak,
                                                  "router": router},
                  pool=pool, scorer=scorer, embeddings=embeddings, **compile_kwargs)


def create_cascade_graph(*, pool: ModelPool | None = None, local: str | None = None,
                         paid: str | None = None, verifier: str = "agreement",
                         threshold: float = 0.67, samples: int = 3,
                         max_paid_usd: float | None = None, **compile_kwargs: Any
                         ) -> CompiledStateGraph:
    """Local answer, verifier, escalate (``graphs/cascade.yaml``); ``verifier`` is
    ``agreement`` (of the samples) or ``self_check``."""
    params = {"threshold": threshold, "verifier": verifier, "samples": samples,
              "max_paid_usd": max_paid_usd}
    return _build("cascade", params=params,
                  roles={"local": local, "verifier": local, "paid": paid}, pool=pool,
                  **compile_kwargs)


def create_moa_graph(*, pool: ModelPool | None = None, proposers: Sequence[str] | None = None,
                     aggregator: str | None = None, refine_layers: int = 1,
                     max_paid_usd: float | None = None, **compile_kwargs: Any
                     ) -> CompiledStateGraph:
    """Mixture-of-Agents (``graphs/moa.yaml``)."""
    params = {"refine_layers": refine_layers, "max_paid_usd": max_paid_usd}
    return _build("moa", params=params, roles={"proposer": proposers, "aggregator": aggregator},
                  pool=pool, **compile_kwargs)


def create_debate_graph(*, pool: ModelPool | None = None, agents: Sequence[str] | None = None,
                        n_agents: int = 3, rounds: int = 2, max_paid_usd: float | None = None,
                        **compile_kwargs: Any) -> CompiledStateGraph:
    """Multi-agent debate (``graphs/debate.yaml``)."""
    params = {"agents": n_agents, "rounds": rounds, "max_paid_usd": max_paid_usd}
    return _build("debate", params=params, roles={"agent": agents}, pool=pool,
                  names={"agents": "n_agents"}, **compile_kwargs)


def create_self_consistency_graph(*, pool: ModelPool | None = None, solver: str | None = None,
                                  samples: int = 5, max_paid_usd: float | None = None,
                                  **compile_kwargs: Any) -> CompiledStateGraph:
    """n samples from one model, majority vote (``graphs/self_consistency.yaml``)."""
    params = {"samples": samples, "max_paid_usd": max_paid_usd}
    return _build("self_consistency", params=params, roles={"solver": solver}, pool=pool,
                  **compile_kwargs)


def create_single_graph(*, pool: ModelPool | None = None, solver: str | None = None,
                        max_paid_usd: float | None = None, **compile_kwargs: Any
                        ) -> CompiledStateGraph:
    """One model answers (``graphs/single.yaml``; default the paid model)."""
    return _build("single", params={"max_paid_usd": max_paid_usd},
                  roles={"solver": solver}, pool=pool, **compile_kwargs)
