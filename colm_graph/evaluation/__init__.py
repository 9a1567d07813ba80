"""Evals: datasets, scorers, the concurrent runner and the report."""

from colm_graph.evaluation.datasets import Item, load_dataset, sample_items
from colm_graph.evaluation.report import summarize_results, write_report
from colm_graph.evaluation.runner import GraphEntry, arun_eval, resolve_graphs, run_eval
from colm_graph.evaluation.scoring import Score, score_answer

__all__ = ["GraphEntry", "Item", "Score", "arun_eval", "load_dataset", "resolve_graphs",
           "run_eval", "sample_items", "score_answer", "summarize_results", "write_report"]
