"""Command line: ``colm-graph run QUESTION ...``. Parses arguments and prints results; the
protocol itself lives in the graphs. Exit codes: 0 done, 2 user error, 1 failure."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from .errors import ColmGraphError, ConfigError
from .settings import MAX_ROUNDS, MAX_TOP_K

__all__ = ["main"]

MAX_QUESTION_CHARS = 20_000


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


def _int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high`` (argparse names the flag)."""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high},"
                                             f" got {n}")
        return n

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="colm-graph", description="Collaborative inference between small"
                     " local and large paid language models (CoLM and friends).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = sub.add_parser("run", help="answer one question with the CoLM protocol")
    run.add_argument("question", help="the question")
    run.add_argument("--models", metavar="FILE",
                     help="pool file (YAML); default: the built-in simulated pool")
    run.add_argument("--clients", type=_names, metavar="A,B",
                     help="these clients answer (no selection)")
    run.add_argument("--server", metavar="NAME", help="server model (default: the pool's)")
    run.add_argument("--top-k", type=_int_in(1, MAX_TOP_K), default=2, metavar="K",
                     help="clients to select (default 2)")
    run.add_argument("--rounds", type=_int_in(0, MAX_ROUNDS), default=2, metavar="R",
                     help="guidance rounds at most (default 2; 0 = drafts only)")
    run.add_argument("--home", metavar="NAME",
                     help="the client that asks: always selected, its answer is the output")
    run.add_argument("--selector", choices=["lexical", "llm"], default="lexical",
                     help="how clients are selected (default lexical)")
    run.add_argument("--output", choices=["auto", "home", "majority"], default="auto",
                     help="output policy (default: home if --home, else majority)")
    run.add_argument("--no-skip-guidance", action="store_true",
                     help="ask the server even when every draft already agrees")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _secrets(pool: Any) -> list[str]:
    """Values of the API-key variables a pool names, to scrub them from any message."""
    values = []
    for entry in pool:
        spec = entry.spec
        env = spec.key_env() if spec is not None else None
        if env and len(os.environ.get(env, "")) >= 4:
            values.append(os.environ[env])
    return values


def _redact(text: str, secrets: Sequence[str]) -> str:
    for s in secrets:
        text = text.replace(s, "***")
    return text


def _run(args: argparse.Namespace, out: TextIO) -> int:
    from .factories import create_colm_graph
    from .pool import ModelPool
    from .result import summarize

    question = args.question.strip()
    if not question:
        raise ConfigError("QUESTION: expected a non-empty question")
    if len(question) > MAX_QUESTION_CHARS:
        raise ConfigError(f"QUESTION: {len(question)} characters, expected at most"
                          f" {MAX_QUESTION_CHARS}")
    pool = ModelPool.from_yaml(args.models) if args.models else ModelPool.default()
    secrets = _secrets(pool)
    for flag, name in (("--server", args.server), ("--home", args.home)):
        if name is not None and name not in pool:
            raise ConfigError(f"{flag}: unknown model {name!r} (pool has:"
                              f" {', '.join(pool.names())})")
    for name in args.clients or []:
        if name not in pool:
            raise ConfigError(f"--clients: unknown model {name!r} (pool has:"
                              f" {', '.join(pool.names())})")
    if args.output == "home" and not args.home:
        raise ConfigError("--output home: needs --home NAME")
    graph = create_colm_graph(pool=pool, server=args.server, top_k=args.top_k,
                              rounds=args.rounds, selector=args.selector, output=args.output,
                              skip_guidance_when_agreed=not args.no_skip_guidance)
    inputs: dict[str, Any] = {"question": question}
    if args.home:
        inputs["home"] = args.home
    if args.clients:
        inputs["clients"] = args.clients
    state: dict[str, Any] = {"question": question}
    try:
        for state in graph.stream(inputs, stream_mode="values"):  # noqa: B007 (keep the last)
            pass
    except ColmGraphError:
        raise
    except Exception as exc:  # a provider or model failure: report, keep what we have
        message = _redact(f"{type(exc).__name__}: {exc}", secrets).splitlines()[0]
        summary = summarize(state)
        summary["error"] = message
        _emit(summary, args.json, out, secrets)
        sys.stderr.write(f"colm-graph: failed: {message}\n")
        return 1
    _emit(summarize(state), args.json, out, secrets)
    return 0


def _emit(summary: dict[str, Any], as_json: bool, out: TextIO, secrets: Sequence[str]) -> None:
    from .report import format_text

    text = json.dumps(summary, indent=2) if as_json else format_text(summary)
    out.write(_redact(text, secrets) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``colm-graph`` command."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stdout)
            return 2
        return _run(args, sys.stdout)
    except ColmGraphError as exc:
        sys.stderr.write(f"colm-graph: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("colm-graph: interrupted\n")
        return 130
    except Exception as exc:  # unexpected: one line unless debugging
        if os.environ.get("COLM_GRAPH_DEBUG"):
            raise
        sys.stderr.write(f"colm-graph: failed: {type(exc).__name__}: {exc}\n".splitlines()[0]
                         + "\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
