"""What a node is bound to at build time: the run's context (pool, role bindings,
parameters, prompts) and the node's own settings from the spec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from colm_graph.core.prompts import PromptSet
from colm_graph.pool import ModelPool

if TYPE_CHECKING:
    from colm_graph.routing.scorers import Scorer
    from colm_graph.routing.selectors import Selector

__all__ = ["NodeContext", "RunContext"]

@dataclass(eq=False)
class RunContext:
    """Shared by every node of one compiled graph."""

    pool: ModelPool
    roles: dict[str, list[str]]
    """Role -> pool names of the models that play it."""
    counts: dict[str, int]
    """Role -> number of participants (models cycled when more than models)."""
    params: dict[str, Any]
    prompts: PromptSet
    spec_name: str = "graph"
    selector: Selector | None = None
    scorer: Scorer | None = None

    def resolve(self, value: Any) -> Any:
        """``$name`` -> the parameter's value; anything else unchanged."""
        if isinstance(value, str) and value.startswith("$") and value[1:] in self.params:
            return self.params[value[1:]]
        return value

    def model(self, role: str) -> str:
        """The (first) model playing ``role``."""
        return self.roles[role][0]

    def participants(self, role: str) -> list[tuple[str, str]]:
        """``(participant id, model)`` for every participant of ``role``."""
        models = self.roles[role]
        n = self.counts.get(role, len(models))
        picked = [models[i % len(models)] for i in range(n)]
        if len(set(picked)) == len(picked):
            return [(m, m) for m in picked]
        return [(f"{m}#{i + 1}", m) for i, m in enumerate(picked)]

    def reachable(self, name: str) -> bool:
        """Whether model ``name`` answers (probed again after a back-off, see
        :mod:`colm_graph.pool.links`)."""
        return self.pool.links.reachable(name)


@dataclass(frozen=True, eq=False)
class NodeContext:
    """One node's settings (parameters already substituted)."""

    name: str
    kind: str
    run: RunContext
    role: str | None = None
    stage: int = 0
    samples: int = 1
    over: str = "role"
    prompt: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)
