"""Declarative graph variants: the spec format, its predicates, validation and compiler."""

from .compile import compile_spec
from .loader import bundled_graphs, load_graph, load_spec, parse_spec
from .predicates import PREDICATES
from .schema import GraphSpec, RoleBinding
from .validate import SpecError

__all__ = ["PREDICATES", "GraphSpec", "RoleBinding", "SpecError", "bundled_graphs",
           "compile_spec", "load_graph", "load_spec", "parse_spec"]
