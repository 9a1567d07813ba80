"""The spec format of a graph variant (``graphs/*.yaml``), validated with pydantic.

A spec names parameters with defaults, binds roles to pool models or tiers, declares nodes
from the registry of node kinds, and wires them with edges; a conditional edge lists
branches ``{when: CONDITION, to: NODE}`` tried in order, then a ``default``. Conditions are
named predicates from a registry (``agreed``, ``{agreement_below: 0.6}``, ``paid_reachable``,
...) combined with ``not`` / ``all`` / ``any``. A string ``$name`` anywhere in a node's
settings or a predicate argument refers to a parameter. Nothing in a spec is executed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Branch", "EdgeSpec", "GraphSpec", "NodeSpec", "RoleBinding", "PARAM_REF"]

PARAM_REF = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
ParamValue = bool | int | float | str | list[str] | None


def _identifier(key: str) -> str:
    if not _IDENT.match(key):
        raise ValueError(f"{key!r} is not a valid name (letters, digits, '_')")
    if key in ("START", "END") or key.startswith("_"):
        raise ValueError(f"{key!r} is reserved (START, END and names starting with '_')")
    return key


Name = Annotated[str, AfterValidator(_identifier)]
"""A node, role or parameter name (checked as a key, so errors point at its line)."""


class RoleBinding(BaseModel):
    """Which pool models play a role: a tier, one model, or a list of models."""

    model_config = ConfigDict(extra="forbid")
    tier: Literal["local", "paid", "any"] | None = None
    model: str | None = None
    models: list[str] | None = None
    count: int | str | None = None
    """Participants playing the role (models are cycled); default: one per model."""

    @model_validator(mode="after")
    def _one_source(self) -> RoleBinding:
        given = [k for k in ("tier", "model", "models") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a role binding needs exactly one of 'tier', 'model' or 'models'"
                             f"{' (got ' + ', '.join(given) + ')' if given else ''}")
        if self.models is not None and not self.models:
            raise ValueError("'models' must name at least one model")
        return self


class NodeSpec(BaseModel):
    """One node: a kind from the registry plus its settings."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    role: str | None = None
    """The role whose models the node calls."""
    stage: int | str = 0
    samples: int | str = 1
    """Answers per participant (fan-out kinds)."""
    over: Literal["role", "selected"] | None = None
    """Fan-out over the role's models (default) or over the clients chosen by ``select``."""
    prompt: str | None = None
    """Prompt file to use instead of the kind's default."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Kind-specific settings, each checked against the values its kind declares
    (``colm_graph.nodes.KINDS``); a ``$name`` value makes the parameter take them."""


class Branch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    when: str | dict[str, Any]
    to: str


class EdgeSpec(BaseModel):
    """A plain edge ``{from, to}`` or a conditional one ``{from, branches, default}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source: str = Field(alias="from")
    to: str | None = None
    branches: list[Branch] | None = None
    default: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> EdgeSpec:
        if self.to is not None and (self.branches is not None or self.default is not None):
            raise ValueError("an edge has either 'to' or 'branches' with 'default', not both")
        if self.to is None:
            if not self.branches:
                raise ValueError("an edge needs 'to', or 'branches' and 'default'")
            if self.default is None:
                raise ValueError("a conditional edge needs a 'default' target")
        return self

    def targets(self) -> list[str]:
        if self.to is not None:
            return [self.to]
        return [b.to for b in self.branches or []] + [self.default or ""]


class GraphSpec(BaseModel):
    """A whole graph variant."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    parameters: dict[Name, ParamValue] = Field(default_factory=dict)
    roles: dict[Name, RoleBinding] = Field(default_factory=dict)
    nodes: dict[Name, NodeSpec] = Field(min_length=1)
    edges: list[EdgeSpec] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", v):
            raise ValueError(f"name must be letters, digits, '.', '_' or '-', got {v!r}")
        return v
