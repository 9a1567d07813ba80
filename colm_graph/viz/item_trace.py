"""The trace page of one eval item, from the eval's logged samples (``colm-graph eval
--log-samples`` writes ``samples.jsonl``): the same page as :func:`~colm_graph.viz.trace.
write_trace` draws for a run, with every call's prompt and reply as the eval kept them, the
item's outcome from ``results.jsonl`` and the graph from ``run.json``. The path highlighted
is the nodes that made calls, in order (steps without a call, such as votes, are not
logged)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from colm_graph.errors import ColmGraphError
from colm_graph.viz.trace import _graph_svg
from colm_graph.viz.trace_html import Card, record_fields, render_page

__all__ = ["write_item_trace"]


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:  # a line cut off by a kill: skipped
                    continue


def _card(c: dict[str, Any]) -> Card:
    return Card(node=str(c["node"]), role=str(c.get("role", "?")), model=str(c["model"]),
                tier=str(c.get("tier", "?")), round=int(c.get("round") or 0),
                stage=c.get("stage"), input_tokens=int(c.get("input_tokens") or 0),
                output_tokens=int(c.get("output_tokens") or 0), usd=float(c.get("usd") or 0),
                latency_s=float(c.get("latency_s") or 0.0),
                started_at=float(c.get("started_at") or 0.0),
                tokens_estimated=bool(c.get("tokens_estimated")),
                simulated=bool(c.get("simulated")), prompt=c.get("prompt"),
                response=c.get("response"), error=None, sample=None, in_ledger=True,
                **record_fields(c))


def _constraints(row: dict[str, Any]) -> dict[str, Any]:
    """What the item's row says of its constraints (a private run, a deadline hit); the
    row keeps no time or upload left. Empty for rows without either."""
    if not (row.get("private") or row.get("deadline_hit")):
        return {}
    return {"private": bool(row.get("private")), "deadline_hit": bool(row.get("deadline_hit"))}


def write_item_trace(eval_dir: str | Path, item_id: str, path: str | Path | None = None, *,
                     graph: str | None = None) -> Path:
    """Write the trace page of item ``item_id`` (of ``graph``, needed when the eval ran
    several) to ``path`` (default ``EVAL_DIR/trace-GRAPH-ID.html``); returns the path."""
    from colm_graph.spec import load_spec

    root = Path(eval_dir)
    samples = root / "samples.jsonl"
    if not samples.is_file():
        raise ColmGraphError(f"{root}: no samples.jsonl (run the eval with --log-samples)")
    found = [s for s in _lines(samples) if str(s.get("id")) == item_id]
    graphs = list(dict.fromkeys(str(s["graph"]) for s in found))
    if not found:
        raise ColmGraphError(f"{samples}: no item {item_id!r}")
    if graph is None and len(graphs) > 1:
        raise ColmGraphError(f"item {item_id!r}: ran on {', '.join(graphs)}; expected"
                             f" --graph, one of them")
    label = graph or graphs[0]
    mine = [s for s in found if s["graph"] == label]
    if not mine:
        raise ColmGraphError(f"item {item_id!r}: no samples for graph {label!r} (it ran"
                             f" on {', '.join(graphs)})")
    sample = mine[-1]
    row: dict[str, Any] = next((r for r in reversed(list(_lines(root / "results.jsonl")))
                if str(r.get("id")) == item_id and r.get("graph") == label), {}) \
        if (root / "results.jsonl").is_file() else {}
    run = json.loads((root / "run.json").read_text("utf-8")) if (root / "run.json").is_file() \
        else {}
    entry: dict[str, Any] = next((g for g in run.get("graphs", []) if g.get("label") == label), {})
    spec = load_spec(entry.get("spec") or label)
    calls = list(sample.get("calls") or [])
    ledger = [{k: v for k, v in c.items() if k not in ("prompt", "response")} for c in calls]
    path_taken = [{"node": n} for n in dict.fromkeys(str(c["node"]) for c in calls)]
    result: dict[str, Any] = {"question": sample.get("question"), "answer": row.get("answer"),
              "degraded": bool(row.get("degraded")), "rounds": row.get("rounds"),
              "stage": row.get("stage"), "ledger": ledger,
              "path": path_taken, "constraints": _constraints(row)}
    svg, problem = _graph_svg(spec, None, [p["node"] for p in path_taken],
                              entry.get("params"))
    page = render_page(result=result, spec=spec, pool=None, cards=[_card(c) for c in calls],
                       svg=svg, svg_problem=problem, recorded=True, secrets=[])
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{label}-{item_id}")
    out = Path(path) if path is not None else root / f"trace-{safe}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
