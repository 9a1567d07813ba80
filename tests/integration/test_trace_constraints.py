"""The trace page of a constrained run (``colm_graph.viz.trace``): the constraints box at
the top, each call's bytes and time left, a badge for every stand-in's kind, and bytes per
tier in the ledger totals.

The deadline run is real: ``ChatOpenAI`` over HTTP to two fakes on 127.0.0.1 (a 1 s paid
model, a prompt local one) with ``with_constraints(deadline_s=0.5)``, its page opened in
headless chromium. Private and upload-capped runs are real runs on the simulated pool.
"""

from __future__ import annotations

import html
import io
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from colm_graph import ModelPool, ledger_totals, load_graph, with_constraints
from colm_graph.evaluation import load_dataset, run_eval
from colm_graph.evaluation.runner import GraphEntry
from colm_graph.viz.item_trace import write_item_trace
from colm_graph.viz.trace import TraceRecorder, trace_cards, write_trace
from tests.support.browser import external_references, find_chromium, render, visible_text
from tests.support.constraint_fakes import PAID_ONLY_SPEC
from tests.support.openai_server import FakeOpenAIServer
from tests.support.pools import local_entry, paid_entry, write_pool

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = find_chromium()
QUESTION = "What is 17 * 23 + 48?"
LOCAL_REPLY = "I think <b>it</b> is 439.\nAnswer: 439"
"""Markup in a model's reply: the page must show it as text."""


def _bytes_line(rec: Mapping[str, Any]) -> str:
    mark = "~" if rec.get("bytes_estimated") else ""
    return f"bytes {mark}{rec['request_bytes']:,} up / {mark}{rec['response_bytes']:,} down"


def _totals_lines(ledger: list[dict[str, Any]]) -> list[str]:
    """The two byte rows of the ledger totals as seen: total, paid, local (``~`` where a
    tier's bytes were counted in process)."""
    t = ledger_totals(ledger)
    paid = "~" if any(r.get("bytes_estimated") for r in ledger if r["tier"] == "paid") else ""
    local = "~" if any(r.get("bytes_estimated") for r in ledger if r["tier"] == "local") \
        else ""
    every = "~" if paid or local else ""
    return [f"Bytes {name} {every}{t[f'paid_{way}_bytes'] + t[f'local_{way}_bytes']:,} "
            f"{paid}{t[f'paid_{way}_bytes']:,} {local}{t[f'local_{way}_bytes']:,}"
            for name, way in (("up (requests)", "request"), ("down (responses)", "response"))]


@pytest.fixture()
def deadline_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> Iterator[tuple[dict[str, Any], TraceRecorder, ModelPool, dict[str, Any]]]:
    """A single-model run whose paid model takes 1 s, with a 0.5 s deadline; yields the
    result, its recorder, the pool and what the fakes saw (``local``, ``paid`` requests
    and ``deadline``, the run's deadline on the fakes' monotonic clock)."""
    monkeypatch.setenv("COLM_TEST_KEY", "sk-test-0123456789abcdef")
    with FakeOpenAIServer(responder=lambda body: LOCAL_REPLY) as local, \
            FakeOpenAIServer(latency_s=1.0) as paid:
        pool = ModelPool.from_yaml(write_pool(tmp_path / "pool.yaml", [
            local_entry("small", "small", local.base_url),
            paid_entry("big", "big", paid.base_url, key_env="COLM_TEST_KEY", price=(1, 2))]))
        for entry in pool:  # the clients built before the clock starts, as the CLI does
            entry.chat_model  # noqa: B018
        graph = load_graph("single", pool=pool)
        recorder = TraceRecorder()
        config = with_constraints({"callbacks": [recorder]}, deadline_s=0.5)
        deadline = float(config["configurable"]["colm_deadline"])
        deadline_mono = deadline - (time.time() - time.monotonic())
        result = graph.invoke({"question": QUESTION}, config)
        time.sleep(0.6)  # the cut paid request ends on the fake's side
        seen = {"local": local.chat_requests, "paid": paid.chat_requests,
                "deadline": deadline_mono}
        yield result, recorder, pool, seen


def test_deadline_trace_in_chromium(deadline_run: tuple[dict[str, Any], TraceRecorder,
                                                        ModelPool, dict[str, Any]],
                                    tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    result, recorder, pool, seen = deadline_run
    ledger = result["ledger"]
    assert result["constraints"]["deadline_hit"] is True
    assert [r["fallback"] for r in ledger] == ["deadline"]
    assert all(r["started_at"] <= seen["deadline"] + 0.05 for r in seen["paid"]), \
        "a paid request started after the deadline"
    # the ledger's bytes are what the fakes received and sent
    t = ledger_totals(ledger)
    assert t["local_request_bytes"] == sum(int(r["headers"]["content-length"])
                                           for r in seen["local"]) > 0
    assert t["local_response_bytes"] == sum(r["response_bytes"] for r in seen["local"]) > 0
    assert t["paid_request_bytes"] == sum(int(r["headers"]["content-length"])
                                          for r in seen["paid"])
    assert t["paid_response_bytes"] == 0

    page = write_trace(tmp_path / "deadline.html", result=result, spec="single", pool=pool,
                       recorder=recorder)
    raw = page.read_text(encoding="utf-8")
    r = render(page, tmp_path / "chromium", chromium=CHROMIUM)
    where = f"(screenshot {r.screenshot})"
    assert r.page_requests == [] and external_references(raw) == [], where
    text = visible_text(r.dom)
    # the box, before everything else
    assert r.dom.index('id="constraints"') < r.dom.index(">Question<"), where
    box = visible_text(r.dom[r.dom.index('id="constraints"'):r.dom.index("</section>")])
    assert "Constraints Private no Deadline hit a paid step was skipped or cut" in box, box
    left = result["constraints"]["time_left_s"]
    assert (f"At the end {left:.3f} s left" if left >= 0 else
            f"At the end {-left:.3f} s past the deadline") in box, box
    assert "Stand-ins 1 × deadline" in box, box
    # the stand-in's card: its badge, why, its bytes and time left
    rec = ledger[0]
    assert "fallback: deadline" in text, where
    assert f"Stood in for big : {' '.join(rec['degraded'].split())}" in text, where
    assert _bytes_line(rec) in text, where
    card_left = rec["time_left_s"]
    assert (f"{card_left:.3f} s left" if card_left >= 0 else
            f"{-card_left:.3f} s past the deadline") in text, where
    # the paid call was started and cut (else skipped: its latency could not fit)
    assert bool(rec.get("lost_request_bytes")) == bool(seen["paid"]), where
    if rec.get("lost_request_bytes"):
        assert f"The paid call had sent {rec['lost_request_bytes']:,} bytes" in text, where
    for line in _totals_lines(ledger):
        assert line in text, (line, where)
    # the reply's markup is text, not markup
    assert "I think <b>it</b> is 439." in text
    assert "&lt;b&gt;it&lt;/b&gt;" in raw and "<b>it</b>" not in raw


def _bare_run(tmp_path: Path, config: Any) -> tuple[dict[str, Any], Path]:
    spec = tmp_path / "bare.yaml"
    spec.write_text(PAID_ONLY_SPEC, encoding="utf-8")
    pool = ModelPool.default()
    recorder = TraceRecorder()
    result = load_graph(spec, pool=pool).invoke({"question": "What is 2 + 3?"},
                                                with_constraints({"callbacks": [recorder]},
                                                                 **config))
    page = write_trace(tmp_path / "bare.html", result=result, spec=spec, pool=pool,
                       recorder=recorder)
    return result, page


def test_a_private_run_shows_its_stand_in(tmp_path: Path) -> None:
    result, page = _bare_run(tmp_path, {"private": True})
    rec = result["ledger"][0]
    assert rec["fallback"] == "private" and rec["tier"] == "local"
    text = visible_text(page.read_text(encoding="utf-8"))
    assert "Constraints Private yes: no byte went to a model not allowed private data" in text
    assert "Deadline" not in text.split("Question")[0]  # no deadline, none said
    assert "fallback: private" in text and "Stand-ins 1 × private" in text
    assert f"Stood in for {rec['fallback_for']}" in text
    assert _bytes_line(rec) in text and "~" in _bytes_line(rec)  # in process: estimated
    assert ledger_totals(result["ledger"])["paid_request_bytes"] == 0
    for line in _totals_lines(result["ledger"]):
        assert line in text, line


def test_an_upload_capped_run_shows_what_is_left(tmp_path: Path) -> None:
    result, page = _bare_run(tmp_path, {"max_upload_bytes": 10})
    assert result["ledger"][0]["fallback"] == "upload"
    text = visible_text(page.read_text(encoding="utf-8"))
    assert "Private no" in text and "Paid upload left 10 bytes" in text
    assert "fallback: upload cap" in text and "Stand-ins 1 × upload cap" in text


def test_a_run_without_constraints_has_no_box(tmp_path: Path) -> None:
    pool = ModelPool.default()
    result = load_graph("single", pool=pool).invoke({"question": "What is 2 + 3?"})
    page = write_trace(tmp_path / "plain.html", result=result, spec="single", pool=pool)
    raw = page.read_text(encoding="utf-8")
    text = visible_text(raw)
    assert "id='constraints'" not in raw and "badge bad fallback" not in raw
    assert "~" in "".join(_totals_lines(result["ledger"]))  # the simulator runs in process
    for line in _totals_lines(result["ledger"]):
        assert line in text, line


def test_text_from_the_ledger_is_escaped_and_old_ledgers_say_not_recorded(
        tmp_path: Path) -> None:
    """A stand-in's reason and model name come from outside (a pool file, a server's
    error): escaped. A ledger from before bytes were counted says n/a, not 0."""
    evil = "<img src=x onerror=alert(1)>"
    old = {"node": "answer", "role": "solver", "model": "m", "tier": "paid", "round": 0,
           "input_tokens": 3, "output_tokens": 1, "usd": 0.0, "latency_s": 0.1,
           "started_at": 1.0, "tokens_estimated": False}
    stand_in = {**old, "tier": "local", "model": "small", "started_at": 2.0,
                "fallback": "down", "fallback_for": evil, "degraded": f"down: {evil}",
                "request_bytes": 10, "response_bytes": 5}
    result = {"question": "q", "answer": "1", "ledger": [old], "path": [],
              "responses": []}
    page = write_trace(tmp_path / "old.html", result=result, spec="single", pool=None)
    text = visible_text(page.read_text(encoding="utf-8"))
    assert "Bytes up (requests) n/a n/a n/a" in text
    assert "Bytes down (responses) n/a n/a n/a" in text
    result = {**result, "ledger": [old, stand_in], "constraints": {"private": False}}
    page = write_trace(tmp_path / "evil.html", result=result, spec="single", pool=None)
    raw = page.read_text(encoding="utf-8")
    assert evil not in raw and html.escape(evil) in raw
    text = visible_text(raw)
    assert f"Stood in for {evil} : down: {evil}" in text and "fallback: paid model down" in text
    cards = trace_cards(result)
    assert [c.request_bytes for c in cards] == [None, 10]
    assert "bytes 10 up / 5 down" in text  # the old record shows no bytes at all
    assert text.count("bytes ") == 1


def test_an_eval_item_trace_shows_a_private_run(tmp_path: Path) -> None:
    """``colm-graph trace`` of an item of a private graph: the box says private, the
    logged calls show their bytes."""
    out = tmp_path / "ev"
    items = load_dataset("colm_tasks", limit=2)
    run_eval([GraphEntry("colm_private", "colm", params={"private": True})], items,
             ModelPool.default(), out, progress=None, notes=io.StringIO(),
             dataset="colm_tasks", limit=2, cache=None, log_samples=True)
    row = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    sample = next(json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()
                  if json.loads(x)["id"] == row["id"])
    assert row["private"] is True
    page = write_item_trace(out, row["id"])
    text = visible_text(page.read_text(encoding="utf-8"))
    assert "Constraints Private yes" in text
    for call in sample["calls"]:
        assert _bytes_line(call) in text, call
    ledger = [{k: v for k, v in c.items() if k not in ("prompt", "response")}
              for c in sample["calls"]]
    assert ledger_totals(ledger)["local_request_bytes"] == row["local_request_bytes"] > 0
    for line in _totals_lines(ledger):
        assert line in text, line


def test_a_guide_whose_drafts_were_trimmed_says_so(tmp_path: Path) -> None:
    """CoLM on the simulator with an upload cap a little above the whole request: the
    server's drafts are cut to fit (``upload_trimmed``), and the call's card says how."""
    pool = ModelPool.default()
    app = load_graph("colm", pool=pool, params={"skip_guidance_when_agreed": False,
                                                "rounds": 1})
    question = {"question": "What is 17 * 23 + 48?"}
    [whole] = [r for r in app.invoke(question)["ledger"] if r["node"] == "guide"]
    found = None
    for factor in (1.2, 1.15, 1.1, 1.05):  # the request's JSON weighs a little more
        recorder = TraceRecorder()
        result = app.invoke(question, with_constraints(
            {"callbacks": [recorder]}, max_upload_bytes=int(whole["request_bytes"] * factor)))
        [record] = [r for r in result["ledger"] if r["node"] == "guide"]
        if record.get("upload_trimmed"):
            found = (result, recorder, record)
            break
    assert found is not None, "no cap in the range made the drafts be cut"
    result, recorder, record = found
    assert record["tier"] == "paid" and "cut to" in record["upload_trimmed"], record
    page = write_trace(tmp_path / "trimmed.html", result=result, spec="colm", pool=pool,
                       recorder=recorder)
    text = visible_text(page.read_text(encoding="utf-8"))
    assert f"Drafts trimmed to the upload cap: {record['upload_trimmed']}." in text
