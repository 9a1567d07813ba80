"""Declarative graph variants: the spec format, its predicates, validation and compiler."""

from colm_graph.spec.compile import compile_spec
from colm_graph.spec.loader import bundled_graphs, load_graph, load_spec, parse_spec
from colm_graph.spec.predicates import PREDICATES
from colm_graph.spec.schema import GraphSpec, RoleBinding
from colm_graph.spec.validate import SpecError

__all__ = ["PREDICATES", "GraphSpec", "RoleBinding", "SpecError", "bundled_graphs",
           "compile_spec", "load_graph", "load_spec", "parse_spec"]
