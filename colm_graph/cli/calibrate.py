"""``colm-graph calibrate``: the route threshold that sends a target share of a labelled set
to the paid tier."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from colm_graph.cli.argtypes import number
from colm_graph.errors import ConfigError

__all__ = ["add_calibrate_parser", "run_calibrate"]


def add_calibrate_parser(sub: Any) -> None:
    p = sub.add_parser("calibrate", help="route threshold for a target share of paid calls")
    p.add_argument("labelled", metavar="FILE",
                   help='JSONL: {"question": ..., "label": 0|1} per line')
    p.add_argument("--target-share", type=number(0, 1), required=True, metavar="P",
                   help="share of queries to send to the paid tier (0..1)")
    p.add_argument("--scorer", choices=["heuristic", "llm"], default="heuristic")
    p.add_argument("--models", metavar="FILE",
                   help="pool file (the llm scorer asks its first local model)")
    p.add_argument("--json", action="store_true")


def run_calibrate(args: argparse.Namespace, out: TextIO) -> int:
    from colm_graph.core.prompts import load_prompts
    from colm_graph.pool import ModelPool
    from colm_graph.routing.scorers import calibrate_scorer, load_labelled, make_scorer
    from colm_graph.run.calls import call_model, message_text

    rows = load_labelled(args.labelled)
    scorer = make_scorer(args.scorer)
    ask = None
    if args.scorer == "llm":
        pool = ModelPool.from_yaml(args.models) if args.models else ModelPool.default()
        local = pool.names("local")
        if not local:
            raise ConfigError("--scorer llm: the pool has no local model to rate difficulty")
        prompts = load_prompts()

        def ask(prompt: str, values: dict[str, object]) -> str:
            reply, _ = call_model(pool, local[0], prompts.messages(prompt, **values),
                                  node="calibrate", role="router", round_=0)
            return message_text(reply)

    cal = calibrate_scorer(scorer, [r.question for r in rows], args.target_share, ask)
    result = {"threshold": cal.threshold, "target_share": cal.target_share,
              "achieved_share": cal.achieved_share, "n": cal.n, "scorer": args.scorer}
    if args.json:
        out.write(json.dumps(result) + "\n")
    else:
        out.write(f"threshold {cal.threshold!r}: {cal.achieved_share:.1%} of {cal.n} queries"
                  f" go to the paid tier (target {cal.target_share:.1%});"
                  f" use --param threshold={cal.threshold!r} with --graph route\n")
    return 0
