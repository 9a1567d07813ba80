"""Readable text for a run's result (:class:`colm_graph.core.result.RunResult`).

Secrets are scrubbed from the summary before anything is cut or wrapped (a key wrapped at its
hyphen would leave its tail on the next line, out of reach of a scrub of the finished text),
and lines are wrapped at spaces only: a token is never split across lines."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from typing import Any

from colm_graph.core.result import RunResult
from colm_graph.core.secrets import scrub_value

__all__ = ["format_text"]


def _short(text: str, width: int = 300) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 3] + "..."


def _wrapped(text: str) -> list[str]:
    return textwrap.wrap(_short(text), 96, initial_indent="  | ", subsequent_indent="  | ",
                         break_on_hyphens=False, break_long_words=False)


def _answers(items: list[dict[str, Any]]) -> list[str]:
    return [f"  {r['client']}{'[' + str(r['sample']) + ']' if r.get('sample') else ''}:"
            f" {r['answer'] or '(no answer)'}" for r in items]


def _rounds(summary: dict[str, Any]) -> list[str]:
    lines = []
    for rd in summary["round_detail"]:
        g = rd["guidance"]
        if g is not None:
            lines.append(f"Round {rd['round']} guidance from {g['model']}"
                         f" (supports {g['answer'] or 'no answer'}):")
            lines.extend(_wrapped(g["text"]))
        if rd["responses"]:
            lines.append(f"Round {rd['round']} {'answers' if rd['round'] == 0 else 'revisions'}:")
            lines.extend(_answers(rd["responses"]))
    return lines


def _stages(summary: dict[str, Any]) -> list[str]:
    lines = []
    for st in summary["stage_detail"]:
        plan = st["plan"]
        lines.append(f"Stage {st['stage']}" + (f": plan by {plan['model']}" if plan else ""))
        if plan:
            lines.extend(_wrapped(plan["text"]))
        lines.extend(_answers(st["responses"]))
    return lines


def format_text(result: RunResult, secrets: Iterable[str] = ()) -> str:
    """The result as text; ``secrets`` (the pool's API keys) are scrubbed from its summary
    (:meth:`RunResult.to_dict`) first."""
    summary: dict[str, Any] = scrub_value(result.to_dict(), secrets)
    lines: list[str] = []
    sim = " (simulated models)" if summary.get("simulated") else ""
    lines.append(f"Graph: {summary.get('graph') or '?'}{sim}")
    lines.append(f"Question: {_short(summary.get('question') or '', 200)}")
    selection = summary.get("selection", {})
    if summary.get("selected"):
        lines.append(f"Clients: {', '.join(summary['selected'])}"
                     f" (selected by {selection.get('selector', '?')})")
    if selection.get("note"):
        lines.append(f"  note: {selection['note']}")
    for node, score in summary.get("scores", {}).items():
        lines.append(f"Score ({node}): {score:.3f}")
    lines.extend(_stages(summary) if summary.get("stage_detail") else _rounds(summary))
    lines.append(f"Path: {' -> '.join(summary.get('path', []))}")
    lines.append(f"Stopped: {summary.get('stop_reason')}"
                 + (f" after {summary['rounds']} round(s)" if summary.get("rounds") else ""))
    if summary.get("degraded"):
        lines.append("Degraded: " + "; ".join(summary.get("degraded_reasons") or ["yes"]))
    lines.append(f"Answer: {summary.get('answer') or '(no answer)'}")
    if summary.get("error"):
        lines.append(f"Error: {summary['error']}")
    t = summary["ledger"]["totals"]
    lines.append(f"Cost: ${t['usd']:.6f} total; paid ${t['paid_usd']:.6f} in {t['paid_calls']}"
                 f" call(s); local ${t['local_usd']:.6f} in {t['local_calls']} call(s);"
                 f" tokens {t['input_tokens']} in / {t['output_tokens']} out")
    lines.append(f"  {'node':<14} {'role':<14} {'model':<16} {'tier':<5} {'rnd':>3}"
                 f" {'in':>6} {'out':>6} {'usd':>10} {'secs':>7}")
    for c in summary["ledger"]["calls"]:
        est = "~" if c.get("tokens_estimated") else " "
        lines.append(f"  {c['node'][:14]:<14} {c['role'][:14]:<14} {c['model'][:16]:<16}"
                     f" {c['tier']:<5} {c.get('stage') or c['round']:>3} {c['input_tokens']:>6}"
                     f"{est}{c['output_tokens']:>6} {c['usd']:>10.6f} {c['latency_s']:>7.3f}")
    return "\n".join(lines)
