"""``colm-graph serve``: the graphs as an OpenAI-compatible HTTP API (model id = graph name)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, TextIO

from colm_graph.cli.argtypes import integer, number
from colm_graph.errors import ConfigError

__all__ = ["add_serve_parser", "run_serve"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def add_serve_parser(sub: Any) -> None:

    p = sub.add_parser("serve", help="serve the graphs as an OpenAI-compatible API")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=integer(0, 65535), default=8000, metavar="N",
                   help="port (default 8000; 0 picks a free one)")
    p.add_argument("--models", metavar="FILE",
                   help="pool file (YAML); default: the built-in simulated pool")
    p.add_argument("--graphs", metavar="A,B",
                   help="graphs to serve, shipped names or spec files (default: every shipped"
                        " graph)")
    p.add_argument("--operator", metavar="FILE",
                   help="operator file (YAML): API keys with budgets, rates and allowed graphs,"
                        " a server-wide paid budget, the shared spend store (SQLite or Redis)")
    p.add_argument("--hash-key", action="store_true",
                   help="read an API key from stdin, print its key_sha256 for the operator"
                        " file, and exit")
    p.add_argument("--token-env", metavar="NAME",
                   help="environment variable holding the bearer token every request must"
                        " send (the token itself never goes on the command line)")
    p.add_argument("--workers", type=integer(1, 64), default=1, metavar="N",
                   help="uvicorn worker processes (default 1); they share budgets, rates and"
                        " idempotency through the operator file's store")
    p.add_argument("--max-paid-tokens", type=integer(0), metavar="N",
                   help="paid tokens each request's run may use")
    p.add_argument("--max-paid-usd", type=number(0), metavar="USD",
                   help="per request: stop paid calls once this much is spent")
    p.add_argument("--allow-image-host", action="append", default=[], metavar="HOST",
                   help="also accept http(s) image URLs on HOST (exact host name or IP"
                        " address; repeatable). Without it only data: URLs are accepted")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _token(name: str | None) -> str | None:
    if name is None:
        return None
    if not _ENV_NAME.match(name):
        raise ConfigError(f"--token-env: expected the NAME of an environment variable, got"
                          f" {name!r} (the token itself never goes on the command line)")
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"--token-env {name}: environment variable {name} is not set (it"
                          " must hold the bearer token clients send)")
    return value


SETTINGS_ENV = "COLM_GRAPH_SERVE_SETTINGS"
"""Where ``--workers`` hands each worker the settings it builds its app from (JSON; names
of environment variables, never their values)."""


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).resolve())


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """What building the app needs, as JSON-ready values (paths made absolute)."""
    graphs = None
    if args.graphs is not None:
        graphs = [g.strip() for g in args.graphs.split(",") if g.strip()]
        if not graphs:
            raise ConfigError(f"--graphs: expected a comma-separated list, got {args.graphs!r}")
        graphs = [str(Path(g).resolve()) if Path(g).suffix in (".yaml", ".yml") else g
                  for g in graphs]
    params: dict[str, Any] = {}
    if args.max_paid_usd is not None:
        params["max_paid_usd"] = args.max_paid_usd
    if args.max_paid_tokens is not None:
        params["max_paid_tokens"] = args.max_paid_tokens
    return {"models": _absolute(args.models), "graphs": graphs, "params": params,
            "token_env": args.token_env, "operator": _absolute(args.operator),
            "allow_image_hosts": list(args.allow_image_host)}


def _build(settings: dict[str, Any]) -> Any:
    """The app of ``settings`` (see :func:`_settings`)."""
    from colm_graph.core.images import check_image_host
    from colm_graph.integrations.operator import Operator
    from colm_graph.integrations.serve import create_app
    from colm_graph.pool import ModelPool

    token = _token(settings["token_env"])
    if token is not None and settings["operator"] is not None:
        raise ConfigError("--token-env: give either --token-env or --operator (whose keys"
                          " replace the one token), not both")
    hosts = [check_image_host(h) for h in settings["allow_image_hosts"]]
    operator = Operator.from_yaml(settings["operator"]) if settings["operator"] else None
    pool = ModelPool.from_yaml(settings["models"]) if settings["models"] else ModelPool.default()
    app = create_app(pool, graphs=settings["graphs"], token=token, params=settings["params"],
                     allow_image_hosts=hosts, operator=operator)
    app.state.simulated, app.state.open = pool.simulated, token is None and operator is None
    return app


def app_from_env() -> Any:
    """The app a ``--workers`` worker serves (uvicorn calls it in each worker process)."""
    return _build(json.loads(os.environ[SETTINGS_ENV]))


def run_serve(args: argparse.Namespace, out: TextIO, err: TextIO = sys.stderr) -> int:
    try:
        from colm_graph.integrations.serve import run_server, run_workers
    except ImportError as exc:
        raise ConfigError(f"serve: needs the 'serve' extra (pip install 'colm-graph[serve]'):"
                          f" {exc.name or exc} is not installed") from None
    from colm_graph.integrations.operator import hash_key

    if args.hash_key:
        key = sys.stdin.readline().strip()
        if not key:
            raise ConfigError("--hash-key: expected the API key on stdin, got nothing")
        out.write(hash_key(key) + "\n")
        return 0
    settings = _settings(args)
    app = _build(settings)  # in this process too: a mistake is reported before any worker
    if not _loopback(args.host) and app.state.open:
        err.write(f"colm-graph: warning: listening on {args.host} without --token-env or"
                  " --operator: anyone who reaches it can spend the pool's paid budget\n")
    if app.state.simulated:
        err.write("colm-graph: note: the built-in simulated pool answers (not language models);"
                  " give --models FILE for real ones\n")
    models = ", ".join(app.state.models)
    workers = f" ({args.workers} workers)" if args.workers > 1 else ""

    def ready(url: str) -> None:
        out.write(f"colm-graph: serving {models} at {url}{workers}\n")
        out.flush()

    try:
        if args.workers > 1:
            os.environ[SETTINGS_ENV] = json.dumps(settings)
            run_workers("colm_graph.cli.serve:app_from_env", workers=args.workers,
                        host=args.host, port=args.port, ready=ready)
        else:
            run_server(app, host=args.host, port=args.port, ready=ready)
    except OSError as exc:
        raise ConfigError(f"--host/--port: cannot listen on {args.host}:{args.port}:"
                          f" {exc.strerror or exc}") from None
    return 0
