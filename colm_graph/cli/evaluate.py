"""``colm-graph eval``: accuracy against paid cost for several graphs on a dataset."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from colm_graph.cli.argtypes import add_constraint_flags, constraint_settings, integer, number

__all__ = ["add_eval_parser", "run_eval_command"]

DEFAULT_GRAPHS = "colm,cope,route,cascade,large_only,small_only"


def add_eval_parser(sub: Any) -> None:
    p = sub.add_parser("eval", help="evaluate graphs on a dataset: accuracy vs paid cost")
    p.add_argument("--graphs", default=DEFAULT_GRAPHS, metavar="A,B",
                   help="variants, spec files, or the baselines large_only and small_only"
                        f" (default {DEFAULT_GRAPHS})")
    p.add_argument("--sweep", action="append", default=[], metavar="SPEC.PARAM=V1,V2",
                   help="also run SPEC once per value of PARAM (e.g. route.threshold=0.3,0.6)")
    p.add_argument("--dataset", default="colm_tasks", metavar="NAME|FILE",
                   help="bundled dataset name or a JSONL file (default colm_tasks)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results")
    p.add_argument("--models", metavar="FILE", help="pool file; default the simulated pool")
    p.add_argument("--concurrency", type=integer(1), default=16, metavar="N")
    p.add_argument("--workers", type=integer(1), metavar="N",
                   help="processes (this one and N-1 workers) sharing the items and"
                        " --concurrency (1: all in this one; default one per core, fewer for"
                        " a small eval)")
    p.add_argument("--limit", type=integer(1), metavar="N", help="first N items only")
    p.add_argument("--sample", type=integer(1), metavar="N",
                   help="N items drawn with --seed, stratified by domain when items have one")
    p.add_argument("--resume", action="store_true", help="continue a stopped run in DIR")
    p.add_argument("--cache", metavar="FILE", default="default",
                   help="call cache (SQLite): replies of calls made before are reused at no"
                        " cost (default DIR/calls.sqlite; a path shares one between evals)")
    p.add_argument("--no-cache", dest="cache", action="store_const", const=None,
                   help="make every call, cache nothing")
    p.add_argument("--log-samples", action="store_true",
                   help="keep every call's prompt and reply per item in DIR/samples.jsonl")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for --sample, GPQA option order and the simulated models")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--max-paid-usd", type=number(0), metavar="USD",
                   help="paid USD the whole eval may spend, failed items included (items"
                        " then run local-only); --resume keeps the run's cap unless given")
    p.add_argument("--max-paid-tokens", type=integer(0), metavar="N",
                   help="paid tokens the whole eval may use (--resume: as --max-paid-usd)")
    add_constraint_flags(p, "each item's run")  # an item's deadline_s / private win


def run_eval_command(args: argparse.Namespace, out: TextIO, err: TextIO = sys.stderr) -> int:
    from colm_graph.evaluation import load_dataset, resolve_graphs, run_eval
    from colm_graph.evaluation.report import write_report
    from colm_graph.evaluation.runner import EvalIncomplete
    from colm_graph.pool import ModelPool

    pool = ModelPool.from_yaml(args.models) if args.models else ModelPool.default()
    pool = pool.with_seed(args.seed)
    names = [n.strip() for n in args.graphs.split(",") if n.strip()]
    entries = resolve_graphs(names, pool, args.sweep)
    items = load_dataset(args.dataset, limit=args.limit, sample=args.sample, seed=args.seed)
    try:
        results = run_eval(entries, items, pool, args.out, concurrency=args.concurrency,
                           resume=args.resume, dataset=args.dataset, models=args.models,
                           seed=args.seed, limit=args.limit, sample=args.sample,
                           progress=None if args.quiet else err,
                           max_paid_usd=args.max_paid_usd,
                           max_paid_tokens=args.max_paid_tokens, notes=err, cache=args.cache,
                           log_samples=args.log_samples, workers=args.workers,
                           **constraint_settings(args))
    except EvalIncomplete as exc:  # a worker died: the rest is on disk, no report yet
        err.write(f"colm-graph: failed: {exc}\n")
        return 1
    summary = write_report(results.parent)
    figures = "pareto.png, pareto.svg" + (", routing.png, routing.svg"
                                          if summary["routing"] else "")
    logged = ", samples.jsonl" if args.log_samples else ""
    out.write(_table(summary) + f"\nwrote {results.parent}/report.md, summary.json,"
              f" {figures}, results.jsonl{logged}\n")
    return 0


def _table(summary: dict[str, Any]) -> str:
    graphs = summary.get("graphs", summary)
    lines = ["simulated models (not language models):"] if summary.get("simulated") else []
    lines.append(f"{'graph':<24} {'acc':>6} {'paid $':>10} {'total $':>10} {'paid%':>6}")
    for label, s in graphs.items():
        if not isinstance(s, dict) or "accuracy" not in s:
            continue
        lines.append(f"{label[:24]:<24} {s['accuracy']:>6.3f} {s['paid_usd']:>10.4f}"
                     f" {s['usd']:>10.4f} {s['paid_share']:>6.1%}")
    return "\n".join(lines)
