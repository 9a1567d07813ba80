"""``colm-graph run``: build the chosen variant over the pool and run one question."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any, TextIO

import yaml
from langchain_core.runnables import RunnableConfig

from colm_graph.cli.argtypes import constraint_settings
from colm_graph.core.images import image_data_url
from colm_graph.core.messages import check_question
from colm_graph.core.result import RunResult
from colm_graph.core.secrets import pool_secrets, scrub
from colm_graph.errors import ColmGraphError, ConfigError, RunLimitError
from colm_graph.run.constraints import with_constraints

__all__ = ["constraints_line", "image_data_url", "run_command"]

_FLAG_PARAMS = (("top_k", "--top-k"), ("rounds", "--rounds"), ("selector", "--selector"),
                ("output", "--output"))


def _params(args: argparse.Namespace, spec: Any) -> dict[str, Any]:
    from colm_graph.spec.validate import bind_params

    params: dict[str, Any] = {}

    def put(key: str, value: Any, flag: str) -> None:
        bind_params(spec, {key: value}, names={key: flag})  # errors name the flag
        params[key] = value

    for key, flag in _FLAG_PARAMS:
        value = getattr(args, key)
        if value is not None:
            put(key, value, flag)
    if args.no_skip_guidance:
        put("skip_guidance_when_agreed", False, "--no-skip-guidance")
    if args.max_paid_usd is not None:
        put("max_paid_usd", args.max_paid_usd, "--max-paid-usd")
    if args.max_paid_tokens is not None:
        put("max_paid_tokens", args.max_paid_tokens, "--max-paid-tokens")
    for key, raw in args.param:
        try:
            value = yaml.safe_load(raw)
        except (yaml.YAMLError, ValueError, RecursionError):  # not a YAML value: the text
            value = raw
        put(key, value, f"--param {key}")
    return params


def _roles(args: argparse.Namespace, spec: Any, pool: Any) -> dict[str, Any]:
    roles: dict[str, Any] = {}
    pairs = list(args.role) + ([("server", args.server)] if args.server else [])
    for role, models in pairs:
        flag = "--server" if (role, models) == ("server", args.server) else f"--role {role}"
        if role not in spec.roles:
            raise ConfigError(f"{flag}: graph {spec.name!r} has no role {role!r}"
                              f" (roles: {', '.join(spec.roles)})")
        names = [m.strip() for m in models.split(",") if m.strip()]
        for name in names:
            if name not in pool:
                raise ConfigError(f"{flag}: unknown model {name!r} (pool has:"
                                  f" {', '.join(pool.names())})")
        roles[role] = names[0] if len(names) == 1 else names
    return roles


def _inputs(args: argparse.Namespace, spec: Any, pool: Any) -> dict[str, Any]:
    question = check_question(args.question, "QUESTION")
    inputs: dict[str, Any] = {"question": question}
    selects = any(n.kind == "select" for n in spec.nodes.values())
    for flag, value in (("--home", args.home), ("--clients", args.clients)):
        if value is not None and not selects:
            raise ConfigError(f"{flag}: graph {spec.name!r} does not select clients")
    if args.home is not None:
        if args.home not in pool:
            raise ConfigError(f"--home: unknown model {args.home!r} (pool has:"
                              f" {', '.join(pool.names())})")
        inputs["home"] = args.home
    if args.output == "home" and not args.home:
        raise ConfigError("--output home: needs --home NAME")
    if args.clients:
        for name in args.clients:
            if name not in pool:
                raise ConfigError(f"--clients: unknown model {name!r} (pool has:"
                                  f" {', '.join(pool.names())})")
        inputs["clients"] = args.clients
    if args.image:
        inputs["images"] = [image_data_url(p) for p in args.image]
    return inputs


def run_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from colm_graph.pool import ModelPool
    from colm_graph.spec import load_graph, load_spec

    pool = ModelPool.from_yaml(args.models) if args.models else ModelPool.default()
    spec = load_spec(args.graph)
    inputs = _inputs(args, spec, pool)
    params = _params(args, spec)
    roles = _roles(args, spec, pool)
    if args.thread is not None and args.checkpoint is None:
        raise ConfigError("--thread: needs --checkpoint FILE")
    saver = None
    if args.checkpoint is not None:
        from colm_graph.integrations.durable import connect_checkpointer

        saver = connect_checkpointer(args.checkpoint, secrets=pool_secrets(pool))
    try:
        graph = load_graph(spec, pool=pool, params=params, roles=roles, checkpointer=saver)
    except BaseException:
        if saver is not None:
            saver.conn.close()
        raise
    secrets = pool_secrets(pool)
    recorder = None
    config: RunnableConfig = {}
    if args.trace:
        from colm_graph.viz.trace import TraceRecorder

        recorder = TraceRecorder()
        config["callbacks"] = [recorder]
    state: dict[str, Any] = {"question": inputs["question"]}
    failure = None
    start: dict[str, Any] | None = inputs
    durable: dict[str, Any] = {}
    try:
        if saver is not None:
            from colm_graph.integrations.durable import (
                DURABILITY,
                default_thread_id,
                resume_or_start,
                thread_config,
            )

            config = thread_config(config, args.thread or default_thread_id(
                spec.name, inputs, params, roles))
            plan = resume_or_start(graph, inputs, config)
            if plan.note:
                err.write(scrub(plan.note, secrets) + "\n")
                err.flush()
            start, durable = plan.input, {"durability": DURABILITY}
        settings = constraint_settings(args)
        if settings:
            if "deadline_s" in settings:  # a first client build must not eat the deadline
                pool.warm_clients()
            config = with_constraints(config, **settings)  # the deadline counts from here
        for mode, chunk in graph.stream(start, config, stream_mode=["updates", "values"],
                                        **durable):
            if not isinstance(chunk, dict):
                continue
            if mode == "values":
                state = chunk
            elif args.stream:
                stream_to = err if args.json else out
                for line in _event_lines(chunk):
                    stream_to.write(scrub(line, secrets) + "\n")
                    stream_to.flush()
    except RunLimitError as exc:  # a runaway run, stopped: keep what it did, say what it cost
        failure = scrub(str(exc), secrets).splitlines()[0]
    except ColmGraphError:
        raise
    except Exception as exc:  # a provider or model failure: report, keep what we have
        failure = scrub(f"{type(exc).__name__}: {exc}", secrets).splitlines()[0]
    finally:
        if saver is not None:
            saver.conn.close()
    result = RunResult.from_state(state, graph=spec.name, error=failure or None)
    if args.trace:
        from colm_graph.viz.trace import write_trace

        write_trace(args.trace, result=state, spec=spec, pool=pool, recorder=recorder,
                    secrets=secrets, params=params)
    _emit(result, args.json, out, secrets)
    if failure:
        err.write(f"colm-graph: failed: {failure}\n")
        return 1
    return 0


def constraints_line(constraints: Mapping[str, Any]) -> str:
    """One line on a constrained run (``constraints`` of its result), e.g. ``constraints:
    private; deadline hit, 0.012 s left; upload left 1200 bytes``."""
    parts = ["private"] if constraints.get("private") else []
    left = constraints.get("time_left_s")
    if left is not None:
        hit = "deadline hit" if constraints.get("deadline_hit") else "deadline met"
        parts.append(f"{hit}, {max(float(left), 0.0):.3f} s left")
    upload = constraints.get("upload_left_bytes")
    if upload is not None:
        parts.append(f"upload left {int(upload)} bytes")
    return "constraints: " + ("; ".join(parts) or "none")


def _event_lines(update: dict[str, Any]) -> list[str]:
    """One short line per node that finished (fan-out tasks report one by one)."""
    from colm_graph.spec.fused import node_updates

    lines = []
    for node, delta in ((n, d) for step, whole in update.items()
                        for n, d in node_updates(step, whole)):
        if not isinstance(delta, dict) or node.startswith("_"):  # the hidden reset step
            continue
        parts = []
        for r in delta.get("responses", []):
            parts.append(f"{r['client']}: {r['answer'] or '(no answer)'}")
        for g in delta.get("guidance", []):
            parts.append(f"guidance from {g['model']} (supports {g['answer'] or 'nothing'})")
        for p in delta.get("plans", []):
            parts.append(f"plan by {p['model']}")
        if "selected" in delta:
            parts.append("selected " + ", ".join(delta["selected"]))
        if "agreement" in delta:
            parts.append(f"agreement {delta['agreement']:.2f}")
        if "score" in delta:
            parts.append(f"score {delta['score']:.3f}")
        if delta.get("degraded_reasons"):
            parts.append("degraded: " + "; ".join(delta["degraded_reasons"]))
        if "answer" in delta:
            parts.append(f"answer {delta['answer'] or '(no answer)'}")
        cost = sum(c["usd"] for c in delta.get("ledger", []))
        if cost:
            parts.append(f"${cost:.6f}")
        lines.append(f"[{node}] " + ("; ".join(parts) or "done"))
    return lines


def _emit(result: RunResult, as_json: bool, out: TextIO, secrets: list[str]) -> None:
    from colm_graph.cli.text import format_text

    if as_json:
        text = json.dumps(result.to_dict(), indent=2)
    else:
        text = format_text(result, secrets)
        if result.constraints:
            text += "\n" + constraints_line(result.constraints)
    out.write(scrub(text, secrets) + "\n")
