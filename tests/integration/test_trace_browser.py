"""The trace page of a run (``colm_graph.viz.trace``), opened in headless chromium.

Real graphs run on the built-in simulated pool with a :class:`TraceRecorder`; the page is
written, loaded in chromium (DOM dump, net log, screenshot) and checked for what a person
would see. Screenshots stay under pytest's tmp dir; a failing check names its screenshot.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from colm_graph import ModelPool, ledger_totals, load_graph
from colm_graph.pool import DEFAULT_POOL_FILE
from colm_graph.pool.providers.sim.tasks import bundled_tasks
from colm_graph.viz.trace import TraceRecorder, trace_cards, write_trace
from tests.support.browser import (
    Rendered,
    details_text,
    external_references,
    find_chromium,
    render,
    visible_text,
)
from tests.support.fakes import ScriptedChatModel

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium): the trace "
    "page cannot be opened in a browser")

# A 1x1 PNG, sent as an image to a vision-language graph.
PNG_1X1 = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2c1d3"
    "a20000000049454e44ae426082")).decode()


def _run(name: str, question: str, *, asynchronous: bool = False,
         **inputs: Any) -> tuple[dict[str, Any], TraceRecorder]:
    pool = ModelPool.default()
    graph = load_graph(name, pool=pool)
    recorder = TraceRecorder()
    config: Any = {"callbacks": [recorder]}
    if asynchronous:
        import asyncio

        result = asyncio.run(graph.ainvoke({"question": question, **inputs}, config))
    else:
        result = graph.invoke({"question": question, **inputs}, config)
    return result, recorder


def _first_run(name: str, wanted: Any) -> tuple[dict[str, Any], TraceRecorder]:
    for task in bundled_tasks().tasks:
        result, recorder = _run(name, task.question)
        if wanted(result):
            return result, recorder
    raise AssertionError(f"no bundled task gives a {name} run with the wanted shape")


@pytest.fixture(scope="module")
def colm_run() -> tuple[dict[str, Any], TraceRecorder]:
    """A CoLM run whose drafts disagreed, so the server wrote guidance."""
    return _first_run("colm", lambda r: bool(r["guidance"]))


@pytest.fixture(scope="module")
def cope_run() -> tuple[dict[str, Any], TraceRecorder]:
    """A COPE run that escalated to stage 2 at least (a large model's plan)."""
    return _first_run("cope", lambda r: r.get("stage", 0) >= 2)


@contextmanager
def _explained(r: Rendered, out: Path) -> Iterator[None]:
    """On a failed check, say where the screenshot and the dumped DOM are."""
    dom_file = out / "dom.html"
    dom_file.write_text(r.dom, encoding="utf-8")
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n  screenshot: {r.screenshot}\n  DOM: {dom_file}") from None


def _open(page: Path, out: Path) -> Rendered:
    r = render(page, out, chromium=CHROMIUM)
    assert r.screenshot.is_file(), f"no screenshot written at {r.screenshot}"
    return r


def _common_checks(r: Rendered, page: Path, result: Mapping[str, Any]) -> str:
    """Checks for any trace page; returns the visible text."""
    raw = page.read_text(encoding="utf-8")
    assert r.page_requests == [], f"the page asked for {r.page_requests}"
    assert external_references(raw) == [] and external_references(r.dom) == []
    shot = r.screenshot.read_bytes()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000, len(shot)
    seen = visible_text(r.dom)
    assert f"Answer {result['answer']}" in seen or str(result["answer"]) in seen
    assert "simulated" in seen
    assert "Ledger totals" in seen
    t = ledger_totals(result["ledger"])
    assert f"Calls {t['calls']} {t['paid_calls']} {t['local_calls']}" in seen
    assert f"Input tokens {t['input_tokens']} {t['paid_input_tokens']}" in seen
    assert f"Output tokens {t['output_tokens']} {t['paid_output_tokens']}" in seen
    assert f"USD ${t['usd']:.6f}" in seen or (t["usd"] == 0 and "USD $0 $0 $0" in seen)
    assert "<svg" in r.dom, "no graph drawing in the page"
    assert ("Degraded yes" if result.get("degraded") else "Degraded no") in seen
    return seen


@needs_chromium
def test_colm_trace_in_chromium(colm_run: tuple[dict[str, Any], TraceRecorder],
                                tmp_path: Path) -> None:
    result, recorder = colm_run
    pool = ModelPool.default()
    page = write_trace(tmp_path / "colm.html", result=result, spec="colm", pool=pool,
                       recorder=recorder)
    r = _open(page, tmp_path / "chromium")
    with _explained(r, tmp_path):
        seen = _common_checks(r, page, result)
        for client in result["selected"]:
            assert client in seen, client
        assert pool.server in seen
        assert "Round 0" in seen and "Round 1" in seen
        guidance = result["guidance"][0]["text"]
        assert " ".join(guidance.split()) in seen, "guidance text not visible"
        assert f"Stop reason {result['stop_reason']}" in seen
        # each round lists the answers written in it
        for step in (0, 1):
            section = r.dom[r.dom.index(f'id="round-{step}"'):]
            table = section[:section.index("</table>")]
            for resp in (x for x in result["responses"] if x["round"] == step):
                assert f"<td>{resp['client']}</td><td>{resp['node']}</td>" in table, resp
        # the prompt, in a collapsed <details>: the question fenced, escaped in the markup
        question = result["question"]
        inside = details_text(r.dom)
        assert f"<question>\n{question}\n</question>" in inside
        assert "&lt;question&gt;" in page.read_text(encoding="utf-8")
        assert "<drafts>" in inside  # the server's prompt
        # one card per ledger record, all with their prompt and response
        cards = trace_cards(result, recorder)
        assert len(cards) == len(result["ledger"]) and all(c.prompt and c.response for c in cards)
        assert r.dom.count("<article") == len(result["ledger"])
        # the drawing highlights the nodes that ran (guide) and not the others (degrade)
        svg = r.dom[r.dom.index("<svg"):r.dom.index("</svg>")]
        ran, idle = _node_marks(svg, "guide"), _node_marks(svg, "degrade")
        assert "highlight" in ran[0].split() and "highlight" not in idle[0].split()
        assert ran[1] != idle[1], f"guide (ran) and degrade (idle) have one stroke: {ran[1]}"
        for step in result["path"]:
            assert "highlight" in _node_marks(svg, step["node"])[0].split(), step


def _node_marks(svg: str, node: str) -> tuple[str, str]:
    """The class of the drawn group of ``node`` and the stroke of its box."""
    import re

    m = re.search(r'<g\b([^>]*\bdata-name="' + re.escape(node) + r'"[^>]*)>(.*?)</g>', svg,
                  re.DOTALL)
    assert m is not None, f"node {node!r} not found in the drawing"
    cls = re.search(r'class="([^"]*)"', m.group(1))
    stroke = re.search(r'stroke="([^"]*)"', m.group(2))
    return (cls.group(1) if cls else "", stroke.group(1) if stroke else "")


@needs_chromium
def test_cope_trace_in_chromium(cope_run: tuple[dict[str, Any], TraceRecorder],
                                tmp_path: Path) -> None:
    result, recorder = cope_run
    page = write_trace(tmp_path / "cope.html", result=result, spec="cope",
                       pool=ModelPool.default(), recorder=recorder)
    r = _open(page, tmp_path / "chromium")
    with _explained(r, tmp_path):
        seen = _common_checks(r, page, result)
        for stage in range(1, result["stage"] + 1):
            assert f"Stage {stage}" in seen, stage
        assert f"Stage {result['stage'] + 1}" not in seen
        assert "Round 0" not in seen
        for plan in result["plans"]:
            assert " ".join(plan["text"].split()) in seen, "plan text not visible"
        inside = details_text(r.dom)
        assert "<plan>" in inside  # an executor's prompt carries its plan
        assert r.dom.count("<article") == len(result["ledger"])


@needs_chromium
def test_degraded_trace_in_chromium(tmp_path: Path) -> None:
    """The paid server cannot be reached: the page says degraded, why, and draws the
    fallback path."""
    data = yaml.safe_load(DEFAULT_POOL_FILE.read_text(encoding="utf-8"))
    for model in data["models"]:
        if model["tier"] == "paid":
            model["sim"]["reachable"] = False
    pool = ModelPool.from_dict(data)
    graph = load_graph("colm", pool=pool)
    for task in bundled_tasks().tasks:
        recorder = TraceRecorder()
        result = graph.invoke({"question": task.question}, {"callbacks": [recorder]})
        if result["degraded"]:
            break
    else:
        raise AssertionError("no bundled task gives a degraded colm run")
    page = write_trace(tmp_path / "degraded.html", result=result, spec="colm", pool=pool,
                       recorder=recorder)
    r = _open(page, tmp_path / "chromium")
    with _explained(r, tmp_path):
        seen = _common_checks(r, page, result)
        assert result["degraded_reasons"] and all(
            " ".join(reason.split()) in seen for reason in result["degraded_reasons"])
        svg = r.dom[r.dom.index("<svg"):r.dom.index("</svg>")]
        assert "highlight" in _node_marks(svg, "degrade")[0].split()
        assert "highlight" not in _node_marks(svg, "guide")[0].split()
        assert "Round 1" not in seen


@needs_chromium
def test_secrets_never_reach_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret, env_key = "sk-trace-SECRET-0123456789", "sk-env-KEY-abcdefghijklmnop"
    monkeypatch.setenv("TRACE_TEST_KEY", env_key)
    leaky = ScriptedChatModel(script=lambda p: f"My key is {secret} and {env_key}.\nAnswer: 4")
    pool = ModelPool.from_dict({"models": [
        {"name": "remote", "provider": "openai", "model": "m", "tier": "paid",
         "base_url": "http://127.0.0.1:9/v1", "api_key_env": "TRACE_TEST_KEY"}]})
    pool.add("leaky", leaky, tier="local")
    graph = load_graph("single", pool=pool, roles={"solver": "leaky", "fallback": "leaky"})
    recorder = TraceRecorder()
    question = f"What is 2+2? (token {secret})"
    result = graph.invoke({"question": question}, {"callbacks": [recorder]})
    assert secret in result["responses"][0]["text"]
    page = write_trace(tmp_path / "secret.html", result=result, spec="single", pool=pool,
                       recorder=recorder, secrets=[secret])
    text = page.read_text(encoding="utf-8")
    for value in (secret, env_key, html.escape(secret)):
        assert value not in text
    assert "[redacted]" in text and "Answer: <strong>4</strong>" in text
    r = _open(page, tmp_path / "chromium")
    with _explained(r, tmp_path):
        assert secret not in r.dom and env_key not in r.dom
        assert "My key is [redacted]" in visible_text(r.dom)


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """A page that fetches from the network is caught by both checks."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><head><link rel='stylesheet' href='https://cdn.invalid/x.css'>"
                   "</head><body><img src='https://example.invalid/x.png'>"
                   "<pre>src=\"http://text.only\"</pre></body></html>", encoding="utf-8")
    refs = external_references(bad.read_text(encoding="utf-8"))
    assert refs == ["https://cdn.invalid/x.css", "https://example.invalid/x.png"]
    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    r = render(bad, tmp_path / "chromium", chromium=CHROMIUM)
    assert "https://example.invalid/x.png" in r.page_requests, r.page_requests


def test_async_run_and_images_are_recorded(tmp_path: Path) -> None:
    """An async run records every call; images show as their MIME type, never inline."""
    pool = ModelPool.default()
    pool.add("vlm", ScriptedChatModel(reply="I see a dot.\nAnswer: 1"), tier="local")
    graph = load_graph("colm_vlm", pool=pool, roles={"client": ["vlm", "sim-arith"]})
    recorder = TraceRecorder()
    image = f"data:image/png;base64,{PNG_1X1}"

    async def go() -> dict[str, Any]:
        return await graph.ainvoke({"question": "How many dots?", "images": [image]},
                                   {"callbacks": [recorder]})

    import asyncio

    result = asyncio.run(go())
    assert len(recorder) == len(result["ledger"]) > 0
    cards = trace_cards(result, recorder)
    assert all(c.prompt and c.response is not None for c in cards)
    assert all("[image image/png]" in (c.prompt or "") for c in cards if c.node == "draft")
    page = write_trace(tmp_path / "vlm.html", result=result, spec="colm_vlm", pool=pool,
                       recorder=recorder)
    text = page.read_text(encoding="utf-8")
    assert PNG_1X1[:40] not in text
    assert "[image image/png]" in text


def test_without_recorder_shows_responses_from_the_state(
        colm_run: tuple[dict[str, Any], TraceRecorder], tmp_path: Path) -> None:
    result, _ = colm_run
    page = write_trace(tmp_path / "plain.html", result=result, spec="colm",
                       pool=ModelPool.default())
    text = page.read_text(encoding="utf-8")
    cards = trace_cards(result)
    assert len(cards) == len(result["ledger"])
    assert all(c.response for c in cards) and not any(c.prompt for c in cards)
    assert html.escape(result["guidance"][0]["text"]) in text
    assert "Prompt not recorded" in text


@needs_chromium
def test_an_eval_item_trace_in_chromium(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from colm_graph.cli.main import main

    out = tmp_path / "ev"
    assert main(["eval", "--graphs", "cascade,colm", "--limit", "3", "--out", str(out),
                 "--quiet", "--log-samples"]) == 0
    row = next(json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()
               if json.loads(x)["graph"] == "colm")
    sample = next(json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()
                  if json.loads(x)["graph"] == "colm" and json.loads(x)["id"] == row["id"])
    capsys.readouterr()
    assert main(["trace", str(out), row["id"]]) == 2  # two graphs ran it: which one?
    assert "--graph" in capsys.readouterr().err
    assert main(["trace", str(out), row["id"], "--graph", "colm"]) == 0
    page = out / f"trace-colm-{row['id']}.html"
    r = _open(page, tmp_path / "chromium")
    with _explained(r, tmp_path / "chromium"):
        assert r.page_requests == [] and external_references(page.read_text()) == []
        seen = visible_text(r.dom)
        assert str(row["answer"]) in seen and "Ledger totals" in seen
        assert f"Calls {row['calls']} {row['paid_calls']} {row['local_calls']}" in seen
        assert "<svg" in r.dom
        text = details_text(r.dom)
        first = sample["calls"][0]
        assert first["prompt"].splitlines()[1][:40] in text  # a logged prompt, on the page
        assert first["response"].splitlines()[-1] in text
    assert main(["trace", str(out), "no-such-item", "--graph", "colm"]) == 2
    assert "no item 'no-such-item'" in capsys.readouterr().err
