"""HTML of a run's trace (see :mod:`colm_graph.viz.trace`): one page, inline CSS, no script,
nothing fetched. Every piece of text is scrubbed of secrets, then escaped."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from colm_graph.core.answers import extract_answer
from colm_graph.core.ledger import ledger_totals
from colm_graph.core.secrets import scrub

if TYPE_CHECKING:
    from colm_graph.pool import ModelPool
    from colm_graph.spec import GraphSpec

__all__ = ["Card", "FALLBACKS", "record_fields", "render_page"]

REDACTED = "[redacted]"


@dataclass(frozen=True)
class Card:
    """One model call on the page: a ledger record joined with its prompt and response."""

    node: str
    role: str
    model: str
    tier: str
    round: int
    stage: int | None
    input_tokens: int
    output_tokens: int
    usd: float
    """As the ledger priced the call (0 for a call that failed)."""
    latency_s: float
    started_at: float
    tokens_estimated: bool
    simulated: bool
    prompt: str | None
    """The prompt messages as text (``None``: the run was not recorded)."""
    response: str | None
    error: str | None
    """Why the call failed, scrubbed of secrets."""
    sample: int | None
    in_ledger: bool
    """False for a failed call that the recorder saw but the ledger does not count."""
    notes: tuple[str, ...] = ()
    """What the ledger says about how the reply was read (score unknown, structured reply)."""
    request_bytes: int | None = None
    """Request body bytes sent (``None``: not recorded)."""
    response_bytes: int | None = None
    bytes_estimated: bool = False
    """The model answered in process: the bytes are the prompt's and reply's UTF-8 sizes."""
    lost_request_bytes: int = 0
    """For a stand-in: what the paid call it replaced had sent before it failed or was cut."""
    time_left_s: float | None = None
    """Seconds to the run's deadline when the call started (runs with a deadline)."""
    fallback: str | None = None
    """Why a local model stood in for a paid call (the ledger's ``fallback`` kind)."""
    fallback_for: str | None = None
    degraded: str | None = None
    """The stand-in's reason in words."""


def record_fields(rec: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`Card` fields a ledger record gives beyond tokens and cost: bytes on the
    wire, time left and why the call stood in for a paid one."""
    def whole(key: str) -> int | None:
        return None if rec.get(key) is None else int(rec[key])

    left = rec.get("time_left_s")
    return {"request_bytes": whole("request_bytes"), "response_bytes": whole("response_bytes"),
            "bytes_estimated": bool(rec.get("bytes_estimated")),
            "lost_request_bytes": int(rec.get("lost_request_bytes") or 0),
            "time_left_s": None if left is None else float(left),
            "fallback": None if rec.get("fallback") is None else str(rec["fallback"]),
            "fallback_for": None if rec.get("fallback_for") is None else str(rec["fallback_for"]),
            "degraded": None if rec.get("degraded") is None else str(rec["degraded"])}


FALLBACKS = {"budget": "budget", "failed": "paid call failed", "down": "paid model down",
             "deadline": "deadline", "private": "private", "upload": "upload cap"}
"""The badge of each ``fallback`` kind."""


CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""Nothing may be fetched, whatever ends up in the page."""

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;
 background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:18px 24px 48px}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:19px;margin:28px 0 10px;
 border-bottom:2px solid #d5d9e0;padding-bottom:4px}h3{font-size:16px;margin:14px 0 6px}
.badge{display:inline-block;font-size:12px;font-weight:600;padding:1px 8px;border-radius:10px;
 margin-left:6px;vertical-align:middle;background:#e4e7ec;color:#333}
.badge.sim{background:#fff1c2;color:#6b4e00}.badge.bad{background:#fde2e1;color:#8a1c13}
.badge.paid{background:#e3ecff;color:#173e8f}.badge.local{background:#dff5e3;color:#185c2a}
.muted{color:#667085}.note{background:#fff8db;border:1px solid #f0d98a;padding:8px 12px;
 border-radius:6px}
pre{white-space:pre-wrap;word-break:break-word;background:#fff;border:1px solid #dde1e7;
 border-radius:6px;padding:8px 10px;margin:6px 0;max-height:30em;overflow:auto;
 font:13px/1.4 ui-monospace,"DejaVu Sans Mono",monospace}
table{border-collapse:collapse;background:#fff;margin:6px 0}
td,th{border:1px solid #dde1e7;padding:4px 10px;text-align:left;font-size:14px}
th{background:#eef0f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
dl.summary{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:8px 0}
dl.summary dt{font-weight:600;color:#475467}dl.summary dd{margin:0}
.answer-big{font-size:22px;font-weight:700}
.overview{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,640px);gap:28px;
 align-items:start}@media (max-width:900px){.overview{grid-template-columns:1fr}}
figure.graph{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:10px;margin:8px 0;
 overflow:auto}figure.graph svg{max-width:100%;height:auto}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}
.card{background:#fff;border:1px solid #d5d9e0;border-left:5px solid #4caf6a;border-radius:8px;
 padding:10px 12px}.card.paid{border-left-color:#3b6fd8}.card.failed{border-left-color:#d14343}
.card header{font-weight:600}.card .node{font-family:ui-monospace,monospace;color:#5b3cc4}
.metrics{font-size:13px;color:#475467;margin:4px 0}.metrics span{margin-right:12px}
summary{cursor:pointer;font-weight:600;font-size:13px;color:#344054}
.path code{background:#eef0f4;padding:1px 5px;border-radius:4px}
.constraints{background:#fff;border:1px solid #d5d9e0;border-left:5px solid #c2410c;
 border-radius:8px;padding:4px 14px;margin:12px 0}.constraints h2{border:0;margin:8px 0 2px}
.standin{background:#fde2e1;border-radius:6px;padding:4px 8px;margin:6px 0;font-size:13px}
"""


class _Text:
    """Scrub secrets from text, then escape it."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets, REDACTED)

    def __call__(self, value: Any) -> str:
        return html.escape(self.scrub("" if value is None else str(value)), quote=True)

    def final(self, page: str) -> str:
        """Last pass over the whole page: any piece of a secret left (raw or escaped)."""
        page = scrub(page, self.secrets, REDACTED)
        for s in self.secrets:
            if len(s) >= 8:
                for form in (s, html.escape(s, quote=True), html.escape(s, quote=False)):
                    page = page.replace(form, REDACTED)
        return page


def _usd(v: float) -> str:
    return f"${v:.6f}" if v else "$0"


def _tokens(card: Card) -> str:
    mark = "~" if card.tokens_estimated else ""
    return f"{mark}{card.input_tokens} in / {mark}{card.output_tokens} out"


def _bytes(card: Card) -> str | None:
    if card.request_bytes is None and card.response_bytes is None:
        return None
    mark = "~" if card.bytes_estimated else ""
    return (f"{mark}{card.request_bytes or 0:,} up / {mark}{card.response_bytes or 0:,} "
            "down")


def _time_left(seconds: float) -> str:
    return f"{seconds:.3f} s left" if seconds >= 0 else f"{-seconds:.3f} s past the deadline"


def _stand_in(c: Card, e: Callable[[Any], str]) -> list[str]:
    """The badge and lines of a call that stood in for a paid one."""
    if c.fallback is None:
        return []
    out = [f"<p class='standin'><strong>Stood in for {e(c.fallback_for or 'a paid model')}"
           f"</strong>: {e(c.degraded or c.fallback)}</p>"]
    if c.lost_request_bytes:
        out.append(f"<p class='muted'>The paid call had sent {c.lost_request_bytes:,} bytes "
                   "before it stopped (counted in the paid upload).</p>")
    return out


def _card(c: Card, e: Callable[[Any], str], index: int) -> str:
    tier = "paid" if c.tier == "paid" else "local"
    cls = f"card {tier}" + (" failed" if c.error else "")
    badges = f"<span class='badge'>sample {c.sample}</span>" if c.sample is not None else ""
    if c.fallback is not None:
        kind = "".join(ch for ch in c.fallback if ch.isascii() and ch.isalnum())
        badges += (f"<span class='badge bad fallback fallback-{kind}'>fallback: "
                   f"{e(FALLBACKS.get(c.fallback, c.fallback))}</span>")
    wire = _bytes(c)
    out = [f"<article class='{cls}' id='call-{index}'>",
           f"<header><span class='node'>{e(c.node)}</span> · {e(c.model)}"
           f"<span class='badge {tier}'>{e(c.tier)}</span>"
           f"<span class='badge'>{e(c.role)}</span>{badges}</header>",
           "<div class='metrics'>"
           f"<span>tokens {e(_tokens(c))}</span><span>{e(_usd(c.usd))}</span>"
           f"<span>{c.latency_s:.3f} s</span>"
           + (f"<span class='bytes'>bytes {e(wire)}</span>" if wire else "")
           + (f"<span class='time-left'>{e(_time_left(c.time_left_s))}</span>"
              if c.time_left_s is not None else "")
           + ("<span class='badge sim'>simulated</span>" if c.simulated else "") + "</div>",
           *_stand_in(c, e)]
    if not c.in_ledger:
        out.append("<p class='muted'>Not in the ledger (the call failed or was stopped; "
                   "a stand-in's card follows when one answered in its place).</p>")
    if c.error:
        out.append(f"<p><strong>Error:</strong> {e(c.error)}</p>")
    answer = extract_answer(c.response) if c.response else None
    if answer is not None:
        out.append(f"<p>Answer: <strong>{e(answer)}</strong></p>")
    for note in c.notes:
        out.append(f"<p class='muted note'>{e(note)}</p>")
    if c.prompt is not None:
        out.append(f"<details><summary>Prompt</summary><pre>{e(c.prompt)}</pre></details>")
    else:
        out.append("<p class='muted'>Prompt not recorded.</p>")
    if c.response is not None:
        out.append(f"<details open><summary>Response</summary><pre>{e(c.response)}</pre>"
                   "</details>")
    out.append("</article>")
    return "\n".join(out)


def _groups(cards: Sequence[Card], spec: GraphSpec) -> tuple[str, dict[int, list[Card]]]:
    by_stage = any(c.stage is not None for c in cards)
    groups: dict[int, list[Card]] = {}
    for c in sorted(cards, key=lambda c: c.started_at):
        if by_stage:
            node = spec.nodes.get(c.node)
            fallback = node.stage if node is not None and isinstance(node.stage, int) else 0
            key = c.stage if c.stage is not None else fallback
        else:
            key = c.round
        groups.setdefault(key, []).append(c)
    return ("stage" if by_stage else "round"), dict(sorted(groups.items()))


def _answers_table(result: Mapping[str, Any], mode: str, key: int,
                   e: Callable[[Any], str]) -> str:
    """Answers written in one round (``mode`` ``round``) or stage."""
    rows = [r for r in result.get("responses") or []
            if ((r.get("stage") or 0) == key if mode == "stage"
                else r.get("round") == key and not r.get("stage"))]
    if not rows:
        return ""
    body = "".join(f"<tr><td>{e(r['client'])}</td><td>{e(r['node'])}</td>"
                   f"<td>{e(r['answer'])}</td></tr>" for r in rows)
    return ("<table class='step-answers'><tr><th>Participant</th><th>Node</th>"
            f"<th>Answer</th></tr>{body}</table>")


def _sections(cards: Sequence[Card], result: Mapping[str, Any], spec: GraphSpec,
              e: Callable[[Any], str]) -> str:
    mode, groups = _groups(cards, spec)
    if not groups:
        return "<p class='muted'>No model calls.</p>"
    out, index = [], 0
    for key, group in groups.items():
        if mode == "stage":
            title = f"Stage {key}" if key else "Before the stages"
        else:
            title = f"Round {key}"
        nodes = ", ".join(dict.fromkeys(c.node for c in group))
        usd = sum(c.usd for c in group)
        out.append(f"<section class='{mode}' id='{mode}-{key}'><h2>{e(title)} "
                   f"<span class='muted'>· {e(nodes)} · {len(group)} calls · "
                   f"{e(_usd(usd))}</span></h2>")
        out.append(_answers_table(result, mode, key, e))
        out.append("<div class='cards'>")
        for c in group:
            out.append(_card(c, e, index))
            index += 1
        out.append("</div></section>")
    return "\n".join(out)


def _wire_rows(ledger: Sequence[Mapping[str, Any]], t: Mapping[str, Any]
               ) -> list[tuple[str, Any, Any, Any]]:
    """Bytes up and down by tier (``~``: some counted in process; ``n/a``: not recorded)."""
    names = ("Bytes up (requests)", "Bytes down (responses)")
    if not any(r.get(k) is not None for r in ledger
               for k in ("request_bytes", "response_bytes", "lost_request_bytes")):
        return [(name, "n/a", "n/a", "n/a") for name in names]
    paid = "~" if any(r.get("bytes_estimated") for r in ledger if r["tier"] == "paid") else ""
    local = "~" if any(r.get("bytes_estimated") for r in ledger if r["tier"] != "paid") else ""
    either = "~" if paid or local else ""
    out = []
    for name, way in zip(names, ("request", "response"), strict=True):
        up, down = int(t[f"paid_{way}_bytes"]), int(t[f"local_{way}_bytes"])
        out.append((name, f"{either}{up + down:,}", f"{paid}{up:,}", f"{local}{down:,}"))
    return out


def _totals(ledger: Sequence[Mapping[str, Any]], e: Callable[[Any], str]) -> str:
    t = ledger_totals(ledger)
    rows = [("Calls", t["calls"], t["paid_calls"], t["local_calls"]),
            ("Input tokens", t["input_tokens"], t["paid_input_tokens"],
             t["input_tokens"] - t["paid_input_tokens"]),
            ("Output tokens", t["output_tokens"], t["paid_output_tokens"],
             t["output_tokens"] - t["paid_output_tokens"]),
            ("USD", _usd(t["usd"]), _usd(t["paid_usd"]), _usd(t["local_usd"]))]
    rows += _wire_rows(ledger, t)
    body = "".join(f"<tr><th>{e(name)}</th><td class='num'>{e(a)}</td>"
                   f"<td class='num'>{e(b)}</td><td class='num'>{e(c)}</td></tr>"
                   for name, a, b, c in rows)
    return ("<table class='totals'><tr><th></th><th>Total</th><th>Paid</th><th>Local</th></tr>"
            f"{body}<tr><th>Latency (sum)</th><td class='num' colspan='3'>"
            f"{t['latency_s']:.3f} s</td></tr></table>")


def _summary(result: Mapping[str, Any], e: Callable[[Any], str]) -> str:
    path = result.get("path") or []
    degraded = bool(result.get("degraded"))
    reasons = result.get("degraded_reasons") or []
    items = [("Answer", f"<span class='answer-big'>{e(result.get('answer'))}</span>"),
             ("Stop reason", e(result.get("stop_reason") or "-"))]
    if result.get("answer_source") not in (None, "majority", "home"):
        items.append(("Answer from", e(result["answer_source"])))
    tie = result.get("tie") or {}
    if tie:
        items.append(("Tie", e(f"{', '.join(map(str, tie.get('answers', [])))} -> "
                               f"{tie.get('chosen')} ({tie.get('rule')})")))
    if result.get("rounds"):
        items.append(("Rounds", e(result.get("rounds"))))
    if result.get("stage"):
        items.append(("Last stage", e(result.get("stage"))))
    items.append(("Degraded", ("<span class='badge bad'>yes</span> " + e("; ".join(reasons)))
                  if degraded else "no"))
    if result.get("selected"):
        items.append(("Selected clients", e(", ".join(result["selected"]))))
    if result.get("scores"):
        items.append(("Scores", e(", ".join(f"{k}: {v:.3g}" for k, v in
                                            result["scores"].items()))))
    if result.get("images"):
        items.append(("Images", e(f"{len(result['images'])} (not shown)")))
    items.append(("Path", "<span class='path'>" + " → ".join(
        f"<code>{e(p['node'])}</code>" for p in path) + "</span>"))
    dl = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items)
    answers = result.get("answers") or {}
    table = ""
    if answers:
        table = ("<h3>Final answers by participant</h3><table class='answers'><tr>"
                 "<th>Participant</th><th>Answer</th></tr>" + "".join(
                     f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in answers.items())
                 + "</table>")
    return f"<dl class='summary'>{dl}</dl>{table}"


def _constraints(result: Mapping[str, Any], cards: Sequence[Card],
                 e: Callable[[Any], str]) -> str:
    """The box at the top of a run that had a deadline, was private or had an upload cap
    (its ``constraints`` output); ``""`` for other runs."""
    c = result.get("constraints") or {}
    if not c:
        return ""
    items = [("Private", "yes: no byte went to a model not allowed private data"
              if c.get("private") else "no")]
    hit = bool(c.get("deadline_hit")) or any(x.fallback == "deadline" for x in cards)
    if c.get("time_left_s") is not None or hit:
        items.append(("Deadline", "<span class='badge bad'>hit</span> a paid step was "
                      "skipped or cut" if hit else "met"))
    if c.get("time_left_s") is not None:
        items.append(("At the end", e(_time_left(float(c["time_left_s"])))))
    if c.get("upload_left_bytes") is not None:
        items.append(("Paid upload left", e(f"{int(c['upload_left_bytes']):,} bytes")))
    kinds: dict[str, int] = {}
    for x in cards:
        if x.fallback is not None:
            kinds[x.fallback] = kinds.get(x.fallback, 0) + 1
    if kinds:
        items.append(("Stand-ins", e(", ".join(f"{n} × {FALLBACKS.get(k, k)}"
                                               for k, n in kinds.items()))))
    dl = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items)
    return (f"<section class='constraints' id='constraints'><h2>Constraints</h2>"
            f"<dl class='summary'>{dl}</dl></section>")


def _pool_table(pool: ModelPool | None, e: Callable[[Any], str]) -> str:
    if pool is None:
        return ""
    from colm_graph.run.constraints import may_hold_private

    def latency(name: str) -> str:
        seconds = pool.latency.expected(name)
        return "-" if seconds is None else f"{seconds:.3f}"

    rows = "".join(
        f"<tr><td>{e(m.name)}</td><td>{e(m.tier)}</td><td>{e(m.provider)}</td>"
        f"<td class='num'>{e(m.price.input)}</td><td class='num'>{e(m.price.output)}</td>"
        f"<td>{'yes' if may_hold_private(m) else 'no'}</td>"
        f"<td class='num'>{e(latency(m.name))}</td></tr>"
        for m in pool)
    return ("<details><summary>Model pool</summary><table class='pool'><tr><th>Model</th>"
            "<th>Tier</th><th>Provider</th><th>USD / M in</th><th>USD / M out</th>"
            "<th>Private data</th><th>Expected latency (s)</th></tr>"
            f"{rows}</table></details>")


def render_page(*, result: Mapping[str, Any], spec: GraphSpec, pool: ModelPool | None,
                cards: Sequence[Card], svg: str, svg_problem: str | None, recorded: bool,
                secrets: Sequence[str]) -> str:
    """The whole page."""
    e = _Text(secrets)
    ledger = list(result.get("ledger") or [])
    n_sim = sum(1 for r in ledger if r.get("simulated"))
    sim_badge = "<span class='badge sim'>simulated</span>" if n_sim else ""
    notes = []
    if n_sim:
        notes.append(f"<p class='note'>simulated: the built-in simulator produced {n_sim} of "
                     f"{len(ledger)} model calls; they are not language models.</p>")
    if not recorded:
        notes.append("<p class='muted'>No recorder was attached to the run: prompts are not "
                     "shown and responses come from the output state.</p>")
    left = [
        "<h2>Question</h2>", f"<pre class='question'>{e(result.get('question'))}</pre>",
        "<h2>Outcome</h2>", _summary(result, e),
        "<h2>Ledger totals</h2>", _totals(ledger, e), _pool_table(pool, e),
    ]
    right = [
        "<h2>Graph</h2><p class='muted'>Highlighted: the nodes and edges the run went "
        "through.</p>",
        f"<figure class='graph'>{svg}</figure>" if svg else "",
        f"<p class='note'>{e(svg_problem)}</p>" if svg_problem else "",
    ]
    body = [
        f"<h1>Trace of a {e(spec.name)} run{sim_badge}</h1>",
        f"<p class='muted'>{e(spec.description)}</p>", *notes, _constraints(result, cards, e),
        "<div class='overview'><div>", *left, "</div><div>", *right, "</div></div>",
        _sections(cards, result, spec, e),
        f"<p class='muted'>Written {e(time.strftime('%Y-%m-%d %H:%M:%S'))} by colm-graph.</p>",
    ]
    page = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            f"<title>{e(spec.name)} trace</title><style>{CSS}</style></head>"
            "<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n")
    return e.final(page)
