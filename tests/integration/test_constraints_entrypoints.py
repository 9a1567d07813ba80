"""Run constraints (issue 16) through every entry point, against the real ``ChatOpenAI``
client over HTTP: a fast local fake and a paid fake that takes 1 s per call, on 127.0.0.1.

* ``colm-graph run --deadline 0.5`` on ``single``: the local answer, degraded ``deadline``,
  no paid request started after the deadline; ``--private`` with every shipped variant: the
  paid fake gets no request; the text output says how the constraints came out;
* ``colm-graph eval`` with ``--private`` / ``--deadline`` and items' own ``private`` and
  ``deadline_s``: the rows' ``private`` and ``deadline_hit`` columns, paid requests only for
  the items that may have them, the settings in ``run.json``; the same with ``--workers 2``
  and in a worker process itself;
* :class:`CollaborativeChatModel` with ``deadline_s``, ``private`` and per-call overrides;
* ``colm-graph serve`` with the ``x-colm-deadline-s`` / ``x-colm-private`` headers and the
  request's ``colm`` object, through the ``openai`` client; bad values are a 400 in one line.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from colm_graph import ModelPool, bundled_graphs
from colm_graph.cli.main import main
from colm_graph.errors import ColmGraphError
from colm_graph.evaluation import load_dataset, resolve_graphs
from colm_graph.integrations.chat_model import CollaborativeChatModel
from colm_graph.integrations.serve import create_app
from tests.support.openai_server import FakeOpenAIServer
from tests.support.pools import local_entry, paid_entry, write_pool
from tests.support.serving import serving

pytestmark = pytest.mark.integration

KEY_ENV, KEY = "COLM_TEST_KEY", "sk-test-9f2c4e6a1b3d5f70"
PAID_S = 1.0
"""Seconds the paid fake takes per call."""
LOCAL, PAID = "Answer: 4", "Answer: 5"
QUESTION = "What is 2 + 2?"
SLACK_S = 1.0
"""Generous room on a timing bound (a loaded machine), never a target."""


@dataclass
class Fakes:
    local: FakeOpenAIServer
    paid: FakeOpenAIServer
    pool_file: Path

    def pool(self) -> ModelPool:
        """The pool, its clients not built (the entry points build them before a
        deadline starts counting)."""
        return ModelPool.from_yaml(self.pool_file)

    def paid_items(self) -> set[str]:
        """The eval items (``Item <id>: ...``) whose question the paid fake was sent."""
        asked = {json.dumps(r["body"]["messages"]) for r in self.paid.requests}
        return {m.group(1) for text in asked for m in re.finditer(r"Item (\w+):", text)}


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    monkeypatch.setenv(KEY_ENV, KEY)
    with FakeOpenAIServer(responder=lambda body: LOCAL) as local, \
            FakeOpenAIServer(responder=lambda body: PAID, latency_s=PAID_S) as paid:
        pool_file = write_pool(tmp_path / "pool.yaml", [
            local_entry("small", "small", local.base_url),
            paid_entry("big", "big", paid.base_url, key_env=KEY_ENV, price=(2.5, 10.0))])
        yield Fakes(local, paid, pool_file)


def unix_to_monotonic(t: float) -> float:
    """A Unix time of this process as its ``time.monotonic()`` (the fakes' clock)."""
    return t - (time.time() - time.monotonic())


def deadline_of(calls: list[dict[str, Any]]) -> float:
    """The run's deadline (monotonic) from its ledger: each record's ``time_left_s`` is
    the deadline less its ``started_at``."""
    ends = [c["started_at"] + c["time_left_s"] for c in calls]
    assert ends and max(ends) - min(ends) < 0.001, ends  # one deadline (4-decimal rounding)
    return unix_to_monotonic(ends[0])


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    got = capsys.readouterr()
    return rc, got.out, got.err


# --- colm-graph run ----------------------------------------------------------------------------


def test_run_with_a_deadline_answers_locally_and_starts_no_paid_call_after_it(
        fakes: Fakes, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(["run", QUESTION, "--graph", "single", "--json", "--deadline",
                            "0.5", "--models", str(fakes.pool_file)], capsys)
    returned = time.monotonic()
    assert rc == 0, err
    result = json.loads(out)
    assert result["answer"] == "4"  # the local model's: the paid one (5) was cut
    assert any(r.startswith("deadline") for r in result["degraded_reasons"]), result
    calls = result["ledger"]["calls"]
    assert [c["tier"] for c in calls] == ["local"] and calls[0]["fallback"] == "deadline"
    assert result["constraints"]["deadline_hit"] is True
    deadline = deadline_of(calls)
    started = [r["started_at"] for r in fakes.paid.requests]
    assert len(started) <= 1 and all(t < deadline + 0.005 for t in started), \
        (started, deadline)
    # the run is back well before the paid reply could have come (a bound, not a target)
    assert returned - (deadline - 0.5) < 0.5 + SLACK_S


@pytest.mark.parametrize("graph", [g for g in bundled_graphs() if g != "colm_vlm"])
def test_run_private_sends_nothing_to_the_paid_model(
        graph: str, fakes: Fakes, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(["run", QUESTION, "--graph", graph, "--private", "--json",
                            "--models", str(fakes.pool_file)], capsys)
    assert rc == 0, err
    result = json.loads(out)
    assert fakes.paid.requests == []
    assert fakes.local.requests and result["constraints"]["private"] is True
    assert result["ledger"]["totals"]["paid_request_bytes"] == 0


def test_detect_private_makes_a_question_with_an_email_private(
        fakes: Fakes, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "--graph", "single", "--detect-private", "--json", "--models",
            str(fakes.pool_file)]
    rc, out, _ = run_cli([*argv[:1], "Mail jane.doe@example.com: what is 2 + 2?", *argv[1:]],
                         capsys)
    assert rc == 0 and json.loads(out)["constraints"]["private"] is True
    assert fakes.paid.requests == []
    rc, out, _ = run_cli([*argv[:1], QUESTION, *argv[1:]], capsys)
    assert rc == 0 and not json.loads(out).get("constraints", {}).get("private")
    assert len(fakes.paid.requests) == 1


def test_run_text_output_has_a_constraints_line(
        fakes: Fakes, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(["run", QUESTION, "--graph", "single", "--private",
                            "--max-upload-bytes", "1200", "--models", str(fakes.pool_file)],
                           capsys)
    assert rc == 0, err
    assert out.splitlines()[-1] == "constraints: private; upload left 1200 bytes"
    rc, out, err = run_cli(["run", QUESTION, "--graph", "single", "--models",
                            str(fakes.pool_file)], capsys)
    assert rc == 0 and "constraints:" not in out


def test_run_upload_cap_keeps_the_request_from_the_paid_model(
        fakes: Fakes, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(["run", QUESTION, "--graph", "single", "--json",
                            "--max-upload-bytes", "100", "--models", str(fakes.pool_file)],
                           capsys)
    assert rc == 0, err
    result = json.loads(out)
    assert fakes.paid.requests == [] and result["answer"] == "4"
    assert result["constraints"]["upload_left_bytes"] == 100


# --- colm-graph eval ---------------------------------------------------------------------------


def dataset(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def eval_rows(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / "results.jsonl").read_text().splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


def item(i: str, **fields: Any) -> dict[str, Any]:
    return {"id": i, "question": f"Item {i}: what is 2 + 2?", "answer": "4", **fields}


@pytest.mark.parametrize("workers", [1, 2])
def test_eval_items_private_and_deadline_override_the_flags(
        workers: int, tmp_path: Path, fakes: Fakes, capsys: pytest.CaptureFixture[str]
        ) -> None:
    """``--private --deadline 5``: items without fields are private; ``private: false``
    lifts it (the paid model answers in its 1 s), and with ``deadline_s: 0.5`` too the
    paid call does not fit (cut at 0.5 s from that item's start, or skipped once its
    latency is learned)."""
    rows = [item("open", private=False), item("hidden"), item("late", private=False,
                                                             deadline_s=0.5)]
    data = dataset(tmp_path / "items.jsonl", rows)
    out = tmp_path / "eval"
    rc, _, err = run_cli(["eval", "--graphs", "single", "--dataset", str(data), "--out",
                          str(out), "--models", str(fakes.pool_file), "--quiet",
                          "--no-cache", "--private", "--deadline", "5", "--concurrency", "2",
                          "--workers", str(workers)], capsys)
    assert rc == 0, err
    got = eval_rows(out)
    assert {i: (r["private"], r["deadline_hit"], r["answer"]) for i, r in got.items()} == {
        "open": (False, False, "5"), "hidden": (True, False, "4"),
        "late": (False, True, "4")}
    assert "open" in fakes.paid_items() <= {"open", "late"}
    assert got["hidden"]["paid_request_bytes"] == 0 < got["open"]["paid_request_bytes"]
    meta = json.loads((out / "run.json").read_text())
    assert (meta["private"], meta["deadline_s"], meta["private_detect"],
            meta["max_upload_bytes"], meta["workers"]) == (True, 5.0, False, None, workers)


def test_eval_deadline_counts_from_each_items_start(
        tmp_path: Path, fakes: Fakes, capsys: pytest.CaptureFixture[str]) -> None:
    """Three items one after another under ``--deadline 2.5``, each with a 1 s paid call:
    each item has its own 2.5 s, so all three get the paid answer (on one clock for the
    eval the third would start with under 1 s left)."""
    data = dataset(tmp_path / "items.jsonl", [item(f"q{i}") for i in range(3)])
    out = tmp_path / "eval"
    rc, _, err = run_cli(["eval", "--graphs", "single", "--dataset", str(data), "--out",
                          str(out), "--models", str(fakes.pool_file), "--quiet",
                          "--no-cache", "--deadline", "2.5", "--concurrency", "1",
                          "--workers", "1"], capsys)
    assert rc == 0, err
    got = eval_rows(out)
    assert {i: (r["answer"], r["deadline_hit"]) for i, r in got.items()} == {
        f"q{i}": ("5", False) for i in range(3)}
    starts = sorted(r["started_at"] for r in fakes.paid.requests)
    assert len(starts) == 3 and starts[-1] - starts[0] > 2 * PAID_S * 0.9  # one at a time


def test_a_worker_process_runs_items_under_the_evals_constraints(
        tmp_path: Path, fakes: Fakes) -> None:
    """Every pair dealt to one worker process (this process takes none): the eval's
    ``private`` and the items' own fields travel with them."""
    from colm_graph.evaluation.runner import Dealer, _job
    from colm_graph.evaluation.shards import run_workers

    data = dataset(tmp_path / "items.jsonl",
                   [item("open", private=False), item("hidden"),
                    item("late", private=False, deadline_s=0.5)])
    pool = ModelPool.from_yaml(fakes.pool_file)
    entries = resolve_graphs(["single"], pool)
    items = load_dataset(data)
    todo = [(entries[0], it) for it in items]
    got: dict[str, dict[str, Any]] = {}
    done = asyncio.Event()

    def deliver(message: dict[str, Any]) -> None:
        row = json.loads(message["row"])
        got[row["id"]] = row
        if len(got) == len(todo):
            done.set()

    async def go() -> tuple[list[str], list[str]]:
        job = _job(entries, pool, tmp_path, None, False, None, ["single"],
                   {"private": True})
        return await run_workers(job, [2], Dealer(todo, entries), done.wait(), deliver)

    failed, died = asyncio.run(asyncio.wait_for(go(), 120))
    assert failed == [] and died == []
    assert {i: (r["private"], r["deadline_hit"], r["answer"]) for i, r in got.items()} == {
        "open": (False, False, "5"), "hidden": (True, False, "4"),
        "late": (False, True, "4")}
    assert "open" in fakes.paid_items() <= {"open", "late"}


# --- the chat model ----------------------------------------------------------------------------


def test_chat_model_deadline_answers_locally_in_time(fakes: Fakes) -> None:
    chat = CollaborativeChatModel(graph="single", pool=fakes.pool(), deadline_s=0.5)

    async def streamed() -> Any:
        return [c async for c in chat.astream(QUESTION)][-1]

    for how in ("invoke", "ainvoke", "stream", "astream"):
        start = time.perf_counter()
        if how == "invoke":
            reply: Any = chat.invoke(QUESTION)
        elif how == "ainvoke":
            reply = asyncio.run(chat.ainvoke(QUESTION))
        elif how == "stream":
            reply = list(chat.stream(QUESTION))[-1]
        else:
            reply = asyncio.run(streamed())
        took = time.perf_counter() - start
        meta = reply.response_metadata
        assert meta["answer"] == "4" and meta["degraded"] is True, (how, meta)
        assert meta["constraints"]["deadline_hit"] is True
        assert took < 0.5 + SLACK_S, (how, took)
    # the first call tried the paid model and was cut; later ones may skip it, having
    # learned that it takes longer than their deadline
    assert 1 <= len(fakes.paid.requests) <= 4


def test_chat_model_private_and_per_call_overrides(fakes: Fakes) -> None:
    pool = fakes.pool()
    private = CollaborativeChatModel(graph="single", pool=pool, private=True)
    reply = private.invoke(QUESTION)
    assert reply.response_metadata["constraints"]["private"] is True
    assert reply.response_metadata["answer"] == "4" and fakes.paid.requests == []
    # per call: the configurable wins over the field, both ways
    reply = private.invoke(QUESTION, config={"configurable": {"private": False}})
    assert reply.response_metadata["answer"] == "5" and len(fakes.paid.requests) == 1
    plain = CollaborativeChatModel(graph="single", pool=pool)
    reply = plain.invoke(QUESTION, config={"configurable": {"private": True}})
    assert reply.response_metadata["constraints"]["private"] is True
    reply = plain.invoke(QUESTION, config={"configurable": {"deadline_s": 0.5}})
    assert reply.response_metadata["constraints"]["deadline_hit"] is True
    assert reply.response_metadata["answer"] == "4"
    reply = plain.invoke(QUESTION)  # nothing set: no constraints, the paid answer
    assert "constraints" not in reply.response_metadata
    assert reply.response_metadata["answer"] == "5"


def test_chat_model_bad_constraints_are_one_line_errors(fakes: Fakes) -> None:
    pool = ModelPool.from_yaml(fakes.pool_file)
    with pytest.raises(ColmGraphError, match=r"^deadline_s: expected a positive number"):
        CollaborativeChatModel(graph="single", pool=pool, deadline_s=0)
    chat = CollaborativeChatModel(graph="single", pool=pool)
    with pytest.raises(ColmGraphError,
                       match=r"^configurable max_upload_bytes: expected a whole number"):
        chat.invoke(QUESTION, config={"configurable": {"max_upload_bytes": -1}})
    assert fakes.paid.requests == fakes.local.requests == []


# --- serve -------------------------------------------------------------------------------------


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60)


def colm_of(resp: Any) -> dict[str, Any]:
    colm: dict[str, Any] = (resp.model_extra or {})["colm"]
    return colm


def test_serve_takes_the_deadline_from_a_header_or_the_body(fakes: Fakes) -> None:
    app = create_app(fakes.pool(), graphs=["single"])
    messages = [{"role": "user", "content": QUESTION}]
    with serving(app) as base_url:
        api = client(base_url)
        for how in ({"extra_headers": {"x-colm-deadline-s": "0.5"}},
                    {"extra_body": {"colm": {"deadline_s": 0.5}}}):
            start = time.perf_counter()
            resp = api.chat.completions.create(model="single", messages=messages, **how)
            took = time.perf_counter() - start
            colm = colm_of(resp)
            assert resp.choices[0].message.content.strip().endswith("4"), how
            assert colm["constraints"]["deadline_hit"] is True, (how, colm)
            assert any(r.startswith("deadline") for r in colm["degraded_reasons"])
            assert took < 0.5 + SLACK_S, (how, took)
        sent = len(fakes.paid.requests)
        assert 1 <= sent <= 2  # the second may skip it, its latency learned
        resp = api.chat.completions.create(model="single", messages=messages,
                                           extra_headers={"x-colm-private": "true"})
        assert colm_of(resp)["constraints"]["private"] is True
        resp = api.chat.completions.create(model="single", messages=messages,
                                           extra_body={"colm": {"private": True}})
        assert colm_of(resp)["constraints"]["private"] is True
        assert len(fakes.paid.requests) == sent  # neither private request reached it


def test_serve_stream_ends_with_the_constraints(fakes: Fakes) -> None:
    app = create_app(fakes.pool(), graphs=["single"])
    with serving(app) as base_url:
        chunks = list(client(base_url).chat.completions.create(
            model="single", messages=[{"role": "user", "content": QUESTION}], stream=True,
            extra_headers={"x-colm-private": "true", "x-colm-deadline-s": "5"}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    colms = [(c.model_extra or {})["colm"] for c in chunks if "colm" in (c.model_extra or {})]
    assert text.strip().endswith("4") and len(colms) == 1
    assert colms[0]["constraints"]["private"] is True
    assert colms[0]["constraints"]["deadline_hit"] is False
    assert 0 < colms[0]["constraints"]["time_left_s"] < 5
    assert fakes.paid.requests == []


def test_serve_a_request_cannot_lift_the_servers_private(fakes: Fakes) -> None:
    app = create_app(fakes.pool(), graphs=["single"], params={"private": True})
    with serving(app) as base_url:
        resp = client(base_url).chat.completions.create(
            model="single", messages=[{"role": "user", "content": QUESTION}],
            extra_headers={"x-colm-private": "false"},
            extra_body={"colm": {"private": False}})
    assert colm_of(resp)["constraints"]["private"] is True
    assert fakes.paid.requests == []


@pytest.mark.parametrize(("how", "message"), [
    ({"extra_headers": {"x-colm-deadline-s": "soon"}},
     'x-colm-deadline-s: expected a positive number of seconds, got "soon"'),
    ({"extra_headers": {"x-colm-deadline-s": "0"}},
     'x-colm-deadline-s: expected a positive number of seconds, got "0"'),
    ({"extra_headers": {"x-colm-private": "yes"}},
     'x-colm-private: expected true or false, got "yes"'),
    ({"extra_body": {"colm": {"deadline_s": -1}}},
     "colm.deadline_s: input should be greater than 0, got -1"),
    ({"extra_body": {"colm": {"private": "yes"}}},
     'colm.private: input should be a valid boolean, got "yes"'),
    ({"extra_body": {"colm": {"deadline": 1}}},
     "colm.deadline: extra inputs are not permitted, got 1"),
])
def test_serve_bad_constraints_are_a_400_in_one_line(
        fakes: Fakes, how: dict[str, Any], message: str) -> None:
    app = create_app(ModelPool.from_yaml(fakes.pool_file), graphs=["single"])
    with serving(app) as base_url, pytest.raises(openai.BadRequestError) as caught:
        client(base_url).chat.completions.create(
            model="single", messages=[{"role": "user", "content": QUESTION}], **how)
    error = caught.value.body
    assert isinstance(error, dict) and error["message"] == message, error
    assert "\n" not in error["message"]
    assert fakes.paid.requests == fakes.local.requests == []
