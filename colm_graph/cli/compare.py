"""``colm-graph compare``: the graphs of several eval directories, paired on their items."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

__all__ = ["add_compare_parser", "run_compare"]


def add_compare_parser(sub: Any) -> None:
    p = sub.add_parser("compare", help="paired significance across eval directories")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="eval output directories")
    p.add_argument("--out", metavar="DIR", default="compare",
                   help="folder for compare.md, compare.json and the chart (default compare)")
    p.add_argument("--seed", type=int, default=0, help="seed of the paired bootstrap")


def run_compare(args: argparse.Namespace, out: TextIO) -> int:
    from colm_graph.evaluation.across import write_comparison

    result = write_comparison(args.dirs, args.out, seed=args.seed)
    out.write(f"{'A':<28} {'B':<28} {'n':>5} {'acc A-B':>9} {'95% CI':>17} {'McNemar p':>10}\n")
    for c in result["comparisons"]:
        lo, hi = c["accuracy"]["ci"] or (float("nan"), float("nan"))
        out.write(f"{c['a'][:28]:<28} {c['b'][:28]:<28} {c['n']:>5}"
                  f" {c['accuracy']['diff'] * 100:>+8.1f}  [{lo * 100:+.1f}, {hi * 100:+.1f}]"
                  f" {c['mcnemar']['p_value']:>10.3f}\n")
    out.write(f"wrote {args.out}/compare.md, compare.json, pareto.png, pareto.svg\n")
    return 0
