"""Command line: ``colm-graph run|draw ...``. Parses arguments and prints results; the
protocols live in the graphs. Exit codes: 0 done, 2 user error, 1 failure."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from colm_graph.cli.argtypes import add_constraint_flags, integer, number
from colm_graph.core.settings import MAX_ROUNDS, MAX_TOP_K
from colm_graph.errors import ColmGraphError, ConfigError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message}")


def _names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of model names,"
                                         f" got {value!r}")
    return names


def _pair(what: str) -> Callable[[str], tuple[str, str]]:
    def parse(value: str) -> tuple[str, str]:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip() or not rest.strip():
            raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}")
        return key.strip(), rest.strip()

    return parse


def _thread_id(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 200:
        raise argparse.ArgumentTypeError(f"expected a thread id of 1 to 200 characters,"
                                         f" got {value!r}")
    return value


def _add_run(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="answer one question with a protocol (default: CoLM)")
    run.add_argument("question", help="the question")
    run.add_argument("--graph", default="colm", metavar="NAME|FILE",
                     help="a shipped variant (colm, colm_vlm, cope, route, cascade, moa, debate,"
                          " self_consistency, single) or a spec file; default colm")
    run.add_argument("--models", metavar="FILE",
                     help="pool file (YAML); default: the built-in simulated pool")
    run.add_argument("--image", action="append", metavar="FILE", default=[],
                     help="an image for vision-language clients (repeatable)")
    run.add_argument("--param", action="append", type=_pair("KEY=VALUE"), default=[],
                     metavar="KEY=VALUE", help="set a graph parameter (repeatable)")
    run.add_argument("--role", action="append", type=_pair("ROLE=MODEL[,MODEL]"), default=[],
                     metavar="ROLE=MODEL", help="bind a role to pool model(s) (repeatable)")
    run.add_argument("--clients", type=_names, metavar="A,B",
                     help="these clients answer (no selection; CoLM variants)")
    run.add_argument("--server", metavar="NAME", help="server model (CoLM; default: the pool's)")
    run.add_argument("--top-k", type=integer(1, MAX_TOP_K), metavar="K",
                     help="clients to select (CoLM; default 2)")
    run.add_argument("--rounds", type=integer(0, MAX_ROUNDS), metavar="R",
                     help="rounds at most (CoLM, debate; 0 = drafts only)")
    run.add_argument("--home", metavar="NAME",
                     help="the client that asks: always selected, its answer is the output")
    run.add_argument("--selector", choices=["lexical", "llm"],
                     help="how clients are selected (CoLM; default lexical)")
    run.add_argument("--output", choices=["auto", "home", "majority"],
                     help="output policy (CoLM; default: home if --home, else majority)")
    run.add_argument("--no-skip-guidance", action="store_true",
                     help="ask the server even when every draft already agrees (CoLM)")
    run.add_argument("--max-paid-tokens", type=integer(0), metavar="N",
                     help="paid tokens (in + out) the run may use; checked before each call")
    run.add_argument("--max-paid-usd", type=number(0), metavar="USD",
                     help="stop paid calls once this much is spent (run marked degraded)")
    add_constraint_flags(run, "the run")
    run.add_argument("--stream", action="store_true",
                     help="show each node as it finishes (on stderr with --json)")
    run.add_argument("--trace", metavar="FILE", help="write an HTML trace of the run")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument("--checkpoint", metavar="FILE",
                     help="save each finished step to this SQLite file (created if missing);"
                          " the same command run again resumes an unfinished run")
    run.add_argument("--thread", type=_thread_id, metavar="ID",
                     help="checkpoint thread (with --checkpoint; default: a hash of the graph,"
                          " question and parameters)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="colm-graph", description="Collaborative inference between small"
                     " local and large paid language models (CoLM and friends).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_run(sub)
    from colm_graph.cli.calibrate import add_calibrate_parser
    from colm_graph.cli.compare import add_compare_parser
    from colm_graph.cli.evaluate import add_eval_parser
    from colm_graph.cli.serve import add_serve_parser
    from colm_graph.cli.trace import add_trace_parser

    add_eval_parser(sub)
    add_compare_parser(sub)
    add_trace_parser(sub)
    add_serve_parser(sub)
    add_calibrate_parser(sub)
    try:
        from colm_graph.cli.draw import add_draw_parser
    except ImportError:  # pictures not installed in this build
        pass
    else:
        add_draw_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``colm-graph`` command."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stdout)
            return 2
        if args.command == "eval":
            from colm_graph.cli.evaluate import run_eval_command

            return run_eval_command(args, sys.stdout, sys.stderr)
        if args.command == "trace":
            from colm_graph.cli.trace import run_trace

            return run_trace(args, sys.stdout)
        if args.command == "compare":
            from colm_graph.cli.compare import run_compare

            return run_compare(args, sys.stdout)
        if args.command == "serve":
            from colm_graph.cli.serve import run_serve

            return run_serve(args, sys.stdout, sys.stderr)
        if args.command == "calibrate":
            from colm_graph.cli.calibrate import run_calibrate

            return run_calibrate(args, sys.stdout)
        if args.command == "draw":
            from colm_graph.cli.draw import run_draw

            return run_draw(args, sys.stdout)
        from colm_graph.cli.run import run_command

        return run_command(args, sys.stdout, sys.stderr)
    except ColmGraphError as exc:
        sys.stderr.write(f"colm-graph: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("colm-graph: interrupted\n")
        return 130
    except Exception as exc:  # unexpected: one line unless debugging
        if os.environ.get("COLM_GRAPH_DEBUG"):
            raise
        first = f"{type(exc).__name__}: {exc}".splitlines()[0]
        sys.stderr.write(f"colm-graph: failed: {first}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
