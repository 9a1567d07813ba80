"""Evals: datasets, scorers, the concurrent runner and the report."""

from .datasets import Item, load_dataset
from .report import summarize_results, write_report
from .runner import GraphEntry, arun_eval, resolve_graphs, run_eval
from .scoring import Score, score_answer

__all__ = ["GraphEntry", "Item", "Score", "arun_eval", "load_dataset", "resolve_graphs",
           "run_eval", "score_answer", "summarize_results", "write_report"]
