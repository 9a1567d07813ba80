"""Summaries and a readable report of an evaluation run.

The runner writes ``DIR/results.jsonl`` (one object per graph and item) and ``DIR/run.json``;
:func:`write_report` reads both and writes ``DIR/summary.json``, ``DIR/report.md`` and
``DIR/pareto.png`` with ``DIR/pareto.svg``. Rows are streamed: only each graph's latencies
are kept, for the percentiles, which interpolate linearly between ranks (numpy's default
method; :func:`statistics.quantiles` with ``method="inclusive"``).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Collection, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from colm_graph.evaluation.compare import Outcomes
from colm_graph.evaluation.plots import ParetoPoint, pareto_frontier, save_pareto
from colm_graph.evaluation.routing_plot import save_domains, save_routing
from colm_graph.evaluation.stats import Z95, wilson

__all__ = ["Z95", "load_results", "percentile", "significance_lines", "summarize_results",
           "table", "wilson", "write_report"]

_SUMS = ("usd", "paid_usd", "local_usd", "cached_usd", "cached_paid_usd")
_COUNTS = ("calls", "paid_calls", "local_calls", "input_tokens", "output_tokens",
           "cached_calls")
_BYTES = ("paid_request_bytes", "paid_response_bytes", "local_request_bytes",
          "local_response_bytes")
_FLAGS = {"private": "private_runs", "deadline_hit": "deadline_hits",
          "link_changed_path": "rerouted_runs"}
"""Row flag -> the summary's count of rows with it set."""


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1, in steps of 0.01) of ``values``, interpolating linearly
    between ranks (rank ``q * (n - 1)`` of the sorted values); ``None`` for no values."""
    if not values:
        return None
    if len(values) == 1 or q <= 0:
        return min(values)
    if q >= 1:
        return max(values)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(q * 100) - 1]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class _Collab:
    """Counts of first-round answers a graph's final round fixed or broke."""

    def __init__(self) -> None:
        self.wrong = self.fixed = self.right = self.broken = 0

    def add(self, first: bool, final: bool) -> None:
        if first:
            self.right += 1
            self.broken += not final
        else:
            self.wrong += 1
            self.fixed += final

    def result(self) -> dict[str, Any]:
        return {"pairs": self.wrong + self.right, "client_wrong": self.wrong,
                "fixed": self.fixed, "fixed_share": _share(self.fixed, self.wrong),
                "client_right": self.right, "broken": self.broken,
                "broken_share": _share(self.broken, self.right)}


class _Graph:
    """Running totals of one graph's rows."""

    def __init__(self) -> None:
        self.n = self.correct = self.no_answer = self.errors = self.degraded = 0
        self.sums = dict.fromkeys(_SUMS, 0.0)
        self.counts = dict.fromkeys(_COUNTS, 0)
        self.latencies: list[float] = []
        self.simulated: bool | None = None  # None until a row that made calls
        # rows written before bytes and constraints were recorded lack these keys
        self.wire = dict.fromkeys(_BYTES, 0)
        self.wire_rows = 0
        self.flags = dict.fromkeys(_FLAGS, 0)
        self.flag_rows = dict.fromkeys(_FLAGS, 0)
        self.total = _Collab()
        self.clients: dict[str, _Collab] = {}

    def add(self, row: dict[str, Any]) -> None:
        self.n += 1
        self.correct += bool(row["correct"])
        self.no_answer += bool(row["no_answer"])
        self.errors += row["error"] is not None
        self.degraded += bool(row["degraded"])
        if int(row["calls"]):
            self.simulated = (self.simulated is not False) and bool(row["simulated"])
        for key in _SUMS:
            self.sums[key] += float(row.get(key, 0.0))  # rows before the cache lack two
        for key in _COUNTS:
            self.counts[key] += int(row.get(key, 0))
        self.latencies.append(float(row["latency_s"]))
        if any(key in row for key in _BYTES):
            self.wire_rows += 1
            for key in _BYTES:
                self.wire[key] += int(row.get(key) or 0)
        for key in _FLAGS:
            if key in row:
                self.flag_rows[key] += 1
                self.flags[key] += bool(row[key])
        for name, c in (row.get("clients") or {}).items():
            first, final = bool(c["first_correct"]), bool(c["final_correct"])
            self.total.add(first, final)
            self.clients.setdefault(name, _Collab()).add(first, final)

    def result(self) -> dict[str, Any]:
        calls, correct = self.counts["calls"], self.correct
        sums = {k: round(v, 12) for k, v in self.sums.items()}  # no 0.49999999999999994
        # a graph costs what its calls cost, cached ones at what they cost when made;
        # *_spent is what this run paid
        spent = {"usd_spent": sums["usd"], "paid_usd_spent": sums["paid_usd"]}
        sums["usd"] = round(sums["usd"] + sums.pop("cached_usd"), 12)
        sums["paid_usd"] = round(sums["paid_usd"] + sums.pop("cached_paid_usd"), 12)
        sums["local_usd"] = round(sums["usd"] - sums["paid_usd"], 12)
        collab = None
        if self.clients:
            collab = self.total.result()
            collab["by_client"] = {k: v.result() for k, v in self.clients.items()}
        return {
            "n": self.n, "correct": correct, "accuracy": correct / self.n,
            "ci95": list(wilson(correct, self.n)), "no_answer": self.no_answer,
            "errors": self.errors, "degraded": self.degraded, **sums, **self.counts,
            "paid_share": self.counts["paid_calls"] / calls if calls else 0.0, **spent,
            "usd_per_correct": sums["usd"] / correct if correct else None,
            "paid_usd_per_correct": sums["paid_usd"] / correct if correct else None,
            "latency_p50": percentile(self.latencies, 0.5),
            "latency_p95": percentile(self.latencies, 0.95),
            "collaboration": collab, "simulated": bool(self.simulated),
            **self._constraints(),
        }

    def _constraints(self) -> dict[str, Any]:
        recorded = bool(self.wire_rows)
        out: dict[str, Any] = {v: self.flags[k] if self.flag_rows[k] else None
                               for k, v in _FLAGS.items()}
        out.update({k: v if recorded else None for k, v in self.wire.items()})
        out["paid_request_bytes_per_item"] = (
            self.wire["paid_request_bytes"] / self.wire_rows if recorded else None)
        out["bytes_rows"] = self.wire_rows
        return out


def summarize_results(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-graph summary of result rows, streamed, in order of each graph's first row.

    Errors and missing answers count as wrong. ``ci95`` is the Wilson score interval.
    ``simulated`` is true when every row that made model calls was simulated (and one did);
    rows without calls, such as runs that failed at once, say nothing either way.
    ``collaboration`` (``None`` for graphs without client answers) counts, over all
    (item, client) pairs, first answers that were wrong and then fixed, or right and then
    broken, with the same numbers per client under ``by_client``. Latency percentiles
    interpolate linearly (see :func:`percentile`).

    Constraints and bytes: ``private_runs``, ``deadline_hits`` and ``rerouted_runs`` (a
    down paid endpoint changed the run's path) count the rows with that flag set;
    ``paid_request_bytes`` (upload to paid models), ``paid_response_bytes``,
    ``local_request_bytes`` and ``local_response_bytes`` sum the rows', and
    ``paid_request_bytes_per_item`` is the upload's mean over the ``bytes_rows`` rows that
    recorded bytes. Rows written before these were recorded count as 0 / false; a value is
    ``None`` when no row of the graph recorded it.
    """
    graphs: dict[str, _Graph] = {}
    for row in rows:
        graphs.setdefault(str(row["graph"]), _Graph()).add(row)
    return {label: g.result() for label, g in graphs.items()}


def load_results(directory: str | Path) -> Iterator[dict[str, Any]]:
    """Rows of ``directory/results.jsonl``, read lazily.

    A last line that is not valid JSON (a run cut off mid-write) is skipped.

    Raises:
        ValueError: If an earlier line is not a JSON object.
    """
    path = Path(directory) / "results.jsonl"
    bad: int | None = None
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if bad is not None:
                raise ValueError(f"{path}:{bad}: not a JSON object")
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                bad = lineno
                continue
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: not a JSON object")
            yield row


# --- report ---------------------------------------------------------------------------


def _usd(v: float | None) -> str:
    if v is None:
        return "-"
    if v == 0 or abs(v) >= 1:
        return f"${v:,.2f}"
    return f"${v:.{min(8, 2 - math.floor(math.log10(abs(v))))}f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _bytes(v: float | None) -> str:
    """Bytes in SI units (``n/a``: not recorded)."""
    if v is None:
        return "n/a"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(v) >= size:
            return f"{v / size:.1f} {unit}"
    return f"{v:.0f} B"


def _count(v: int | None) -> str:
    return "n/a" if v is None else str(v)


def _label(label: str) -> str:
    return "`" + label.replace("|", "\\|") + "`"


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table and the blank line after it."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows] + [""]


def _result_rows(graphs: dict[str, dict[str, Any]]) -> list[list[str]]:
    return [[_label(k), str(s["n"]),
             f"{_pct(s['accuracy'])} [{_pct(s['ci95'][0])}, {_pct(s['ci95'][1])}]",
             str(s["no_answer"]), str(s["errors"]), _usd(s["paid_usd"]), _usd(s["usd"]),
             _pct(s["paid_share"]), _usd(s["usd_per_correct"]),
             f"{_secs(s['latency_p50'])} / {_secs(s['latency_p95'])}", str(s["degraded"])]
            for k, s in graphs.items()]


def _constraint_lines(graphs: dict[str, dict[str, Any]]) -> list[str]:
    """The report's "Constraints and bytes" section (always there: zeros say something)."""
    rows = [[_label(k), _count(s["private_runs"]), _count(s["deadline_hits"]),
             _count(s["rerouted_runs"]), _bytes(s["paid_request_bytes"]),
             _bytes(s["paid_request_bytes_per_item"]), _bytes(s["paid_response_bytes"]),
             f"{_bytes(s['local_request_bytes'])} / {_bytes(s['local_response_bytes'])}"]
            for k, s in graphs.items()]
    out = ["## Constraints and bytes", ""]
    out += table(["Graph", "Private runs", "Deadline hits", "Rerouted (paid endpoint down)",
                  "Paid upload", "Paid upload / item", "Paid download", "Local up / down"],
                 rows)
    out += ["Private runs sent nothing to models not allowed private data; a deadline hit "
            "is a run whose deadline skipped or cut a paid step; a rerouted run took "
            "another path because a paid endpoint was down. Bytes are HTTP request and "
            "response bodies (every retry; the upload includes what cut or failed paid "
            "calls had sent); models answering in process count the UTF-8 size of prompt "
            "and reply. n/a: the rows were written before this was recorded.", ""]
    partial = [f"{_label(k)} ({s['bytes_rows']} of {s['n']})" for k, s in graphs.items()
               if 0 < s["bytes_rows"] < s["n"]]
    if partial:
        out += ["Bytes come from the rows that recorded them (older rows recorded none): "
                + ", ".join(partial) + "; the upload per item is their mean.", ""]
    return out


def _collab_rows(graphs: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for label, s in graphs.items():
        c = s["collaboration"]
        if c is None:
            continue
        for name, v in [("all clients", c), *c["by_client"].items()]:
            rows.append([_label(label), name, str(v["client_wrong"]),
                         f"{v['fixed']} ({_pct(v['fixed_share'])})", str(v["client_right"]),
                         f"{v['broken']} ({_pct(v['broken_share'])})"])
    return rows


def _baselines(run: dict[str, Any], labels: Collection[str]) -> dict[str, str]:
    """Baseline kind -> graph label, from run.json, else from the labels themselves."""
    found = {g["baseline"]: g["label"] for g in reversed(run.get("graphs", []))
             if g.get("baseline") and g["label"] in labels}
    for kind in ("large_only", "small_only"):
        if kind not in found and kind in labels:
            found[kind] = kind
    return found


def _savings(graphs: dict[str, dict[str, Any]], base: str | None) -> dict[str, Any] | None:
    if base is None:
        return None
    ref = graphs[base]
    return {k: {"accuracy_kept": s["accuracy"] / ref["accuracy"] if ref["accuracy"] else None,
                "paid_spend_saved": 1 - s["paid_usd"] / ref["paid_usd"]
                if ref["paid_usd"] else None}
            for k, s in graphs.items() if k != base}


def _points(graphs: dict[str, dict[str, Any]], run: dict[str, Any],
            baselines: dict[str, str]) -> list[ParetoPoint]:
    kinds = {label: kind for kind, label in baselines.items()}
    info = {g["label"]: g for g in run.get("graphs", [])}
    points = []
    for label, s in graphs.items():
        sweep = info.get(label, {}).get("sweep")
        series = f"{info[label].get('spec')}:{sweep['param']}" if sweep else None
        points.append(ParetoPoint(label, s["paid_usd"], s["accuracy"], s["ci95"][0],
                                  s["ci95"][1], baseline=kinds.get(label), series=series,
                                  sweep_value=float(sweep["value"]) if sweep else None))
    return points


def _markdown(summary: dict[str, Any]) -> str:
    run, graphs = summary["run"], summary["graphs"]
    out = [f"# Evaluation report: {run.get('dataset', '?')}", ""]
    if summary["simulated"]:
        out += ["> **Simulated models: these numbers come from the built-in simulator, not "
                "from language models.**", ""]
    started = run.get("started_at")
    when = datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds") if started else "?"
    chosen = (" (a sample stratified by domain, drawn with the seed)" if run.get("sample")
              else f" (the first {run['limit']})" if run.get("limit") else "")
    out += [f"- Dataset: `{run.get('dataset', '?')}`, items: {run.get('items', '?')}"
            f"{chosen}, seed: {run.get('seed', '?')}",
            f"- Models: {run.get('models') or 'default pool'}",
            f"- Started: {when}; colm_graph {run.get('colm_graph_version', '?')}", ""]
    missing = [g["label"] for g in run.get("graphs", []) if g["label"] not in graphs]
    if missing:
        out += ["No results yet for: " + ", ".join(map(_label, missing)) + ".", ""]
    if not graphs:
        return "\n".join(out)
    out += ["## Results", ""]
    out += table(["Graph", "n", "Accuracy [95% CI]", "No answer", "Errors", "Paid USD",
                   "Total USD", "Paid share", "USD / correct", "Latency p50 / p95 (s)",
                   "Degraded"], _result_rows(graphs))
    out += ["Errors and missing answers count as wrong. The interval is Wilson's; latency "
            "percentiles interpolate linearly between ranks. Paid share is the share of "
            "model calls that went to paid models.", ""]
    if summary["warnings"]:
        out += ["## Warnings", ""] + [f"- **{w}**" for w in summary["warnings"]] + [""]
    if any(g["cached_calls"] for g in graphs.values()):
        out += ["## Call cache", "", "Calls answered from the call cache (`calls.sqlite`, or "
                "`--cache`) cost nothing this time. Every other table counts them at what "
                "they cost when they were made, so graphs compare as if each ran alone; this "
                "one shows what this run paid.", ""]
        out += table(["Graph", "Cached calls", "Paid USD (its calls)", "Paid USD this run"],
                      [[_label(k), str(g["cached_calls"]), _usd(g["paid_usd"]),
                        _usd(g["paid_usd_spent"])] for k, g in graphs.items()])
    out += _constraint_lines(graphs)
    collab = _collab_rows(graphs)
    if collab:
        out += ["## Collaboration", "", "Per (item, client) pair: of the first answers that "
                "were wrong, how many the final answer fixed; of those that were right, how "
                "many it broke.", ""]
        out += table(["Graph", "Client", "First wrong", "Fixed", "First right", "Broken"],
                      collab)
    base = summary["baselines"].get("large_only")
    if summary["savings"]:
        out += [f"## Against the large-only baseline {_label(base)}", ""]
        out += table(["Graph", "Accuracy kept", "Paid spend saved"],
                      [[_label(k), _pct(v["accuracy_kept"]), _pct(v["paid_spend_saved"])]
                       for k, v in summary["savings"].items()])
        out += ["Accuracy kept = accuracy / baseline accuracy; paid spend saved = 1 - paid USD "
                "/ baseline paid USD.", ""]
    out += _domain_lines(summary["by_domain"])
    out += significance_lines(summary["comparisons"])
    out += _routing_lines(summary["routing"])
    out += ["## Accuracy against paid spend", "", "![Accuracy against paid spend](pareto.png)",
            "", "The same chart as SVG: `pareto.svg`. Pareto frontier (no other graph is at "
            "least as accurate for at most the paid spend): "
            + ", ".join(map(_label, summary["frontier"])) + ".", ""]
    return "\n".join(out)


def _ci(v: dict[str, Any], fmt: Any) -> str:
    ci = v["ci"]
    return fmt(v["diff"]) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")


def _pts(v: float) -> str:
    return f"{v * 100:+.1f} pts"


def _dusd(v: float) -> str:
    return f"{'-' if v < 0 else '+'}${abs(v):.6f}"


def _p(v: float) -> str:
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def _domain_lines(cells_of: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    if not cells_of:
        return []
    domains = sorted({d for cells in cells_of.values() for d in cells})
    rows = [[_label(g)] + [f"{cells[d]['accuracy']:.1%} of {cells[d]['n']}, "
                           f"{_usd(cells[d]['paid_usd'])}" if d in cells else "-"
                           for d in domains] for g, cells in cells_of.items()]
    return (["## By domain", "", "Accuracy of the domain's items and the paid USD they cost.",
             ""] + table(["Graph", *domains], rows) + ["![Accuracy by domain](domains.png)",
                                                       ""])


def significance_lines(pairs: list[dict[str, Any]]) -> list[str]:
    """The report's "Paired comparisons" section for ``pairs`` (none: no lines)."""
    if not pairs:
        return []
    first = pairs[0]["accuracy"]
    rows = [[_label(c["a"]), _label(c["b"]), str(c["n"]), _ci(c["accuracy"], _pts),
             f"{_p(c['mcnemar']['p_value'])} ({c['mcnemar']['a_only']} / "
             f"{c['mcnemar']['b_only']})", _ci(c["paid_usd_per_item"], _dusd)]
            for c in pairs]
    return (["## Paired comparisons", "",
             f"On the items both graphs answered: the difference A - B with its 95% paired "
             f"bootstrap interval ({first['resamples']} resamples, seed {first['seed']}), "
             "and McNemar's exact p-value on correctness with the items only A / only B got "
             "right.", ""]
            + table(["A", "B", "n", "Accuracy A - B", "McNemar p (only A / only B)",
                      "Paid USD per item A - B"], rows))


def _routing_lines(routing: dict[str, dict[str, Any]]) -> list[str]:
    if not routing:
        return []

    def share(v: float | None) -> str:
        return "never" if v is None else f"{v:.1%}"

    rows = [[f"`{name}`", str(len(m["points"])),
             "n/a" if m["apgr"] is None else f"{m['apgr']:.3f}", share(m["cpt50"]),
             share(m["cpt80"])] for name, m in routing.items()]
    return (["## Routing", "",
             "Accuracy against the share of items that made a paid call, from small-only to "
             "large-only (RouteLLM's measures): APGR is the average share of the accuracy gap "
             "between them recovered along the curve; CPT(x%) the share of paid items needed "
             "to recover x% of it.", ""]
            + table(["Series", "Points", "APGR", "CPT(50%)", "CPT(80%)"], rows)
            + ["![Routing curves](routing.png)", ""])


def write_report(directory: str | Path) -> dict[str, Any]:
    """Summarize ``directory``'s run into ``summary.json``, ``report.md`` and the chart
    (``pareto.png``, ``pareto.svg``).

    ``run.json`` is optional (its metadata then shows as unknown). Without any result rows
    no chart is drawn.

    Returns:
        What was written to ``summary.json``: ``run`` (run.json), ``graphs`` (per-graph
        summaries, in run.json's order), ``simulated``, ``baselines`` (kind -> label),
        ``savings`` (per graph against the large-only baseline, or ``None``) and
        ``frontier`` (Pareto-optimal labels by increasing paid spend), ``warnings``
        (graphs with many items unanswered), ``by_domain``, ``comparisons`` (paired
        statistics) and ``routing`` (see :mod:`colm_graph.evaluation.compare`).
    """
    root = Path(directory)
    run_path = root / "run.json"
    run: dict[str, Any] = json.loads(run_path.read_text("utf-8")) if run_path.exists() else {}
    outcomes = Outcomes()
    found = summarize_results(outcomes.kept(load_results(root)))  # one pass over the rows
    order = [g["label"] for g in run.get("graphs", []) if g["label"] in found]
    graphs = {k: found[k] for k in order + [k for k in found if k not in order]}
    baselines = _baselines(run, graphs)
    points = _points(graphs, run, baselines)
    simulated = bool(run.get("simulated")) or (
        bool(graphs) and all(s["simulated"] for s in graphs.values()))
    summary: dict[str, Any] = {
        "run": run, "graphs": graphs,
        "simulated": simulated,
        "baselines": baselines, "savings": _savings(graphs, baselines.get("large_only")),
        "frontier": [points[i].label for i in pareto_frontier(points)],
        "warnings": outcomes.no_answer_warnings(),
        "by_domain": outcomes.by_domain(),
        "comparisons": outcomes.comparisons(baselines, seed=int(run.get("seed") or 0)),
        "routing": outcomes.routing(run.get("graphs", []), baselines),
    }
    (root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
    (root / "report.md").write_text(_markdown(summary), "utf-8")
    for old in ("pareto.png", "pareto.svg", "routing.png", "routing.svg", "domains.png",
                "domains.svg"):
        (root / old).unlink(missing_ok=True)
    if points:
        title = f"Accuracy vs paid spend: {run.get('dataset', '?')}, {run.get('items', '?')} items"
        save_pareto(points, root, title=title, simulated=simulated)
    if summary["routing"]:
        save_routing(summary["routing"], root, simulated=simulated,
                     title=f"Routing: {run.get('dataset', '?')}, {run.get('items', '?')} items")
    if summary["by_domain"]:
        save_domains(summary["by_domain"], root, simulated=simulated,
                     title=f"Accuracy by domain: {run.get('dataset', '?')}")
    return summary
