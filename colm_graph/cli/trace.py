"""``colm-graph trace EVAL_DIR ITEM_ID``: the trace page of one eval item."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

__all__ = ["add_trace_parser", "run_trace"]


def add_trace_parser(sub: Any) -> None:
    p = sub.add_parser("trace", help="the trace page of one eval item (from --log-samples)")
    p.add_argument("eval_dir", metavar="EVAL_DIR", help="an eval's output directory")
    p.add_argument("item_id", metavar="ITEM_ID", help="the item's id")
    p.add_argument("--graph", metavar="LABEL", help="which graph's run (when it ran several)")
    p.add_argument("--out", metavar="FILE", help="the page (default EVAL_DIR/trace-G-ID.html)")


def run_trace(args: argparse.Namespace, out: TextIO) -> int:
    from colm_graph.viz.item_trace import write_item_trace

    page = write_item_trace(args.eval_dir, args.item_id, args.out, graph=args.graph)
    out.write(f"wrote {page}\n")
    return 0
