"""Readable text for a run summary (see :func:`colm_graph.result.summarize`)."""

from __future__ import annotations

import textwrap
from typing import Any

__all__ = ["format_text"]


def _short(text: str, width: int = 300) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 3] + "..."


def format_text(summary: dict[str, Any]) -> str:
    lines: list[str] = []
    sim = " (simulated models)" if summary.get("simulated") else ""
    selection = summary.get("selection", {})
    lines.append(f"Question: {_short(summary.get('question') or '', 200)}")
    how = selection.get("selector", "?")
    lines.append(f"Clients: {', '.join(summary['selected'])} (selected by {how}){sim}")
    if selection.get("note"):
        lines.append(f"  note: {selection['note']}")
    for rd in summary["round_detail"]:
        g = rd["guidance"]
        if g is not None:
            lines.append(f"Round {rd['round']} guidance from {g['model']}"
                         f" (supports {g['answer'] or 'no answer'}):")
            lines.extend(textwrap.wrap(_short(g["text"]), 96, initial_indent="  | ",
                                       subsequent_indent="  | "))
        label = "drafts" if rd["round"] == 0 else "revisions"
        lines.append(f"Round {rd['round']} {label}:")
        for r in rd["responses"]:
            lines.append(f"  {r['client']}: {r['answer'] or '(no answer)'}")
    lines.append(f"Stopped: {summary.get('stop_reason')} after {summary['rounds']} guidance"
                 f" round(s)")
    lines.append(f"Answer: {summary.get('answer') or '(no answer)'}")
    if summary.get("error"):
        lines.append(f"Error: {summary['error']}")
    t = summary["ledger"]["totals"]
    lines.append(f"Cost: ${t['usd']:.6f} total; paid ${t['paid_usd']:.6f} in {t['paid_calls']}"
                 f" call(s); local ${t['local_usd']:.6f} in {t['local_calls']} call(s);"
                 f" tokens {t['input_tokens']} in / {t['output_tokens']} out")
    lines.append(f"  {'node':<8} {'role':<9} {'model':<20} {'tier':<5} {'rnd':>3}"
                 f" {'in':>6} {'out':>6} {'usd':>10} {'secs':>7}")
    for c in summary["ledger"]["calls"]:
        est = "~" if c.get("tokens_estimated") else " "
        lines.append(f"  {c['node']:<8} {c['role']:<9} {c['model'][:20]:<20} {c['tier']:<5}"
                     f" {c['round']:>3} {c['input_tokens']:>6}{est}{c['output_tokens']:>6}"
                     f" {c['usd']:>10.6f} {c['latency_s']:>7.3f}")
    return "\n".join(lines)
