"""The API key of a paid model goes to its endpoint, in the Authorization header, and nowhere
else: not in any artefact a run produces (``colm-graph run`` JSON, text and ``--stream``
output, ``--trace`` pages, the error line and partial JSON of a failed paid call whose error
body echoes the key, ``colm-graph eval`` result files, ``colm-graph serve`` replies and error
replies, Python logging at DEBUG) nor in the ``repr`` of the pool, its entries and the
built ``ChatOpenAI`` model.

The paid model is a real ``ChatOpenAI`` client talking to a :class:`FakeOpenAIServer` on
127.0.0.1; its errors echo the key the way real providers do, in full or masked
(``sk-abc...wxyz``), and its replies can echo it too ("my key is sk-..."), whole, in pieces,
in capitals or where the text output wraps its lines. Every artefact is searched for the key,
every 8-character piece of it (in any letter case, and again with whitespace and the text
output's ``|`` margins taken out) and its base64 form; the checkpoint database of
``colm-graph run --checkpoint`` is searched byte by byte, with its WAL file.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from colm_graph.cli.main import main
from colm_graph.integrations.serve import create_app
from colm_graph.pool import ModelPool
from tests.support import openai_server, pools
from tests.support.openai_server import FakeOpenAIServer
from tests.support.serving import serving

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "COLM_LEAK_TEST_KEY"
KEY = "sk-LEAK-7d3f9a2b1c0e4f5a6b7c8d9e0f1a2b3c"
NEEDLES = {"the key": KEY, "its first 12 characters": KEY[:12],
           "its last 12 characters": KEY[-12:],
           "its base64 form": base64.b64encode(KEY.encode()).decode()[:24],
           **{f"its piece {KEY[i:i + 8]!r}": KEY[i:i + 8] for i in range(len(KEY) - 7)}}
_GAPS = re.compile(r"[\s|]+")
QUESTION = "What is 17 * 23 + 48?"
DRAFTS = {"m-a": "41", "m-b": "42"}  # the clients disagree: the server is asked for guidance


def assert_clean(what: str, data: str | bytes | None) -> None:
    """Fail naming the artefact when any form of the key appears in ``data``."""
    if data is None:
        return
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    for name, needle in NEEDLES.items():
        assert needle not in text, f"{name} leaked into {what}: ...{_around(text, needle)}..."
    for form, seen in (("in other letter case", text.lower()),
                       ("split by whitespace or line margins", _GAPS.sub("", text.lower()))):
        for name, needle in NEEDLES.items():
            if "base64" not in name:
                assert needle.lower() not in seen, \
                    f"{name} leaked into {what} {form}: ...{_around(seen, needle.lower())}..."


def _around(text: str, needle: str) -> str:
    i = text.index(needle)
    return text[max(0, i - 80): i + len(needle) + 40]


def test_assert_clean_catches_every_form() -> None:
    forms = [KEY, f"key {KEY[:12]}****", f"key ...{KEY[-12:]}", base64.b64encode(KEY.encode()),
             KEY.upper(), f"{KEY[:20]}\n  | {KEY[20:]}", f"{KEY[:4]} {KEY[4:12]}"]
    forms += [f"a piece {KEY[i:i + 8]} of it" for i in range(len(KEY) - 7)]
    for form in forms:
        with pytest.raises(AssertionError, match="leaked into probe"):
            assert_clean("probe", form)
    assert_clean("probe", "sk-LEA**** " + KEY[:7] + " *** " + KEY[-7:])


def test_scrub_removes_every_piece_and_keeps_the_rest() -> None:
    """The scrubber itself: what the artefact tests below rely on."""
    from colm_graph.core.secrets import scrub, scrub_bytes

    for text in (f"my key is {KEY}.", f"key {KEY[:12]}{'*' * 24}{KEY[-4:]}.", KEY.lower(),
                 f"tail {KEY[-9:]} end", f"{KEY[:14]} {KEY[14:]}", f"{KEY[:20]}\n  | {KEY[20:]}",
                 f"{KEY[:8]}\t{KEY[8:16]} | {KEY[16:]}"):
        out = scrub(text, [KEY])
        assert_clean(f"scrub({text!r})", out)
        assert "***" in out
    assert scrub("nothing secret here: sk-LEAK is a prefix only", [KEY]) == \
        "nothing secret here: sk-LEAK is a prefix only"
    doc = json.dumps({"a": f"x {KEY}\" y", "b": [KEY[3:30]], "c": f"<{KEY}>"})
    out = scrub(doc, [KEY])
    assert json.loads(out) == {"a": "x ***\" y", "b": ["***"], "c": "<***>"}
    blob = b"\xa5\x00" + KEY.encode() + b"\xc4\x03" + KEY[9:21].upper().encode() + b"\x91"
    clean = scrub_bytes(blob, [KEY])
    assert len(clean) == len(blob) and clean.startswith(b"\xa5\x00*") and \
        clean.endswith(b"*\x91")
    assert_clean("scrub_bytes", clean)


# -- the paid endpoint and its errors -----------------------------------------------------

@dataclass(frozen=True)
class Failure:
    """How the paid endpoint fails: HTTP status and what its error message says. A failed
    paid call is made again by a local model (the run is marked degraded); with
    ``fallback_fails`` that local call fails too (with the same echo) and the run fails."""

    status: int
    echo: str
    fallback_fails: bool = False


ECHOES = {
    "401-full-key": (401, f"Incorrect API key provided: {KEY}."),
    "401-masked-key": (401, f"Incorrect API key provided: {KEY[:12]}{'*' * 24}{KEY[-4:]}."
                            " You can find your API key at ..."),
    "500-full-key": (500, f"upstream rejected Authorization: Bearer {KEY}"),
}
FAILURES = {name: Failure(status, echo) for name, (status, echo) in ECHOES.items()}
"""Paid calls fail: the runs are degraded."""
HARD_FAILURES = {name: Failure(status, echo, fallback_fails=True)
                 for name, (status, echo) in ECHOES.items()}
"""Paid calls fail and so do their local fallbacks: the runs fail."""

def cases(names: list[str]) -> list[Any]:
    """``names`` as parameters (the masked-key echoes are scrubbed too)."""
    return list(names)


def responder(body: dict[str, Any]) -> dict[str, Any]:
    user = str(body["messages"][-1]["content"])
    if body["model"] == "m-big":
        text = "The drafts conflict; 17 * 23 = 391, plus 48 is 439.\nAnswer: 439" \
            if "<drafts>" in user else "17 * 23 + 48 = 439.\nAnswer: 439"
        return {"content": text, "prompt_tokens": 500, "completion_tokens": 50}
    if "<guidance>" in user:
        return {"content": "Revised with the guidance.\nAnswer: 439", "prompt_tokens": 200,
                "completion_tokens": 10}
    return {"content": f"Draft.\nAnswer: {DRAFTS.get(body['model'], '1')}",
            "prompt_tokens": 100, "completion_tokens": 10}


ECHO_FORMS = {
    "whole": f"By the way, my API key is {KEY}.",
    "pieces": f"Key pieces: {KEY[:15]} {KEY[15:]}; its tail {KEY[-20:]}; shouted {KEY.upper()}.",
    # the key starts where the text output's first line of a reply ends (92 characters)
    "wrapped": "word " * 17 + KEY + " and the rest of the sentence",
}
"""How a model's reply echoes the key (a prompt that carried it, a proxy that adds it)."""


class PaidEndpoint:
    """A FakeOpenAIServer for every model of the pool; ``fail(...)`` makes the paid model's
    calls fail with an error body that echoes the key; ``echo(...)`` makes every reply start
    with a text that carries it, and local model ``m-b`` answer with the key itself."""

    def __init__(self, server: FakeOpenAIServer) -> None:
        self.server = server
        self.failure: Failure | None = None
        self.echoed: str | None = None

    def fail(self, failure: Failure | None) -> None:
        self.failure = failure

    def echo(self, text: str | None) -> None:
        self.echoed = text

    def respond(self, body: dict[str, Any]) -> dict[str, Any]:
        reply = responder(body)
        if self.echoed is not None:
            content = reply["content"]
            if body["model"] == "m-b" and "<guidance>" not in str(body["messages"][-1]):
                content = content.replace("Answer: 42", f"Answer: {KEY}")
            reply = {**reply, "content": f"{self.echoed}\n{content}"}
        return reply

    def status_for(self, body: dict[str, Any]) -> int | None:
        failure = self.failure
        if failure is None:
            return None
        if body.get("model") == "m-big":
            return failure.status
        # the server's guidance prompt (with the drafts) made by a local model: a fallback
        if failure.fallback_fails and "<drafts>" in str(body["messages"][-1]["content"]):
            return failure.status
        return None

    def paid_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.server.chat_requests if r["body"]["model"] == "m-big"]

    def local_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.server.chat_requests if r["body"]["model"] != "m-big"]


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[PaidEndpoint]:
    """The fake endpoint; its error bodies carry the current failure's echo of the key."""
    original = openai_server._error_payload
    holder: dict[str, PaidEndpoint] = {}

    def echoing_payload(status: int, message: str) -> dict[str, Any]:
        failure = holder["endpoint"].failure
        return original(status, failure.echo if failure is not None else message)

    monkeypatch.setattr(openai_server, "_error_payload", echoing_payload)
    monkeypatch.setenv(KEY_ENV, KEY)
    with FakeOpenAIServer(responder=lambda body: holder["endpoint"].respond(body)) as server:
        ep = PaidEndpoint(server)
        holder["endpoint"] = ep
        server.status_for = ep.status_for
        yield ep


def write_pool(path: Path, base_url: str) -> Path:
    return pools.write_pool(path, [
        pools.local_entry("local-a", "m-a", base_url, domains=["arithmetic"]),
        pools.local_entry("local-b", "m-b", base_url, domains=["algebra"]),
        pools.paid_entry("big", "m-big", base_url, key_env=KEY_ENV, price=(5.0, 15.0)),
    ], server="big")


@pytest.fixture
def pool_file(tmp_path: Path, endpoint: PaidEndpoint) -> Path:
    return write_pool(tmp_path / "models.yaml", endpoint.server.base_url)


def check_key_went_to_paid_endpoint_only(endpoint: PaidEndpoint) -> None:
    paid, local = endpoint.paid_requests(), endpoint.local_requests()
    assert paid, "the paid model was never called"
    for r in paid:
        assert r["headers"].get("authorization") == f"Bearer {KEY}"
        assert_clean("the body of a request to the paid endpoint", json.dumps(r["body"]))
    for r in local:
        assert_clean("a request to a local model", json.dumps(
            {"headers": r["headers"], "body": r["body"]}))


# -- logging ----------------------------------------------------------------------------------

_FORMAT = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(pathname)s %(message)s")


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    """Every log record (root and ``colm_graph`` loggers at DEBUG) as text: the formatted
    message with its traceback, and the record's other attributes."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="colm_graph")

    def text() -> str:
        parts = []
        for record in caplog.records:
            parts.append(_FORMAT.format(record))
            parts.append(repr({k: v for k, v in vars(record).items() if k != "exc_info"}))
        return "\n".join(parts)

    return text


# -- colm-graph run -------------------------------------------------------------------------

def cli(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capfd.readouterr()
    rc = main(list(argv))
    captured = capfd.readouterr()
    return rc, captured.out, captured.err


def test_key_reaches_the_paid_endpoint_in_the_authorization_header_only(
        pool_file: Path, endpoint: PaidEndpoint, capfd: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capfd, "run", QUESTION, "--models", str(pool_file), "--json")
    assert rc == 0, err
    assert json.loads(out)["answer"] == "439"
    check_key_went_to_paid_endpoint_only(endpoint)
    assert all("authorization" not in r["headers"] or KEY not in r["headers"]["authorization"]
               for r in endpoint.local_requests())


def test_run_outputs_and_traces(pool_file: Path, endpoint: PaidEndpoint, tmp_path: Path,
                                capfd: pytest.CaptureFixture[str],
                                logs: Callable[[], str]) -> None:
    runs = {
        "run --json --trace": ["--json", "--trace", str(tmp_path / "json.html")],
        "run (text)": [],
        "run --stream": ["--stream"],
        "run --json --stream --trace": ["--json", "--stream", "--trace",
                                        str(tmp_path / "stream.html")],
    }
    for label, flags in runs.items():
        rc, out, err = cli(capfd, "run", QUESTION, "--models", str(pool_file), *flags)
        assert rc == 0, (label, err)
        assert "439" in out
        assert_clean(f"the stdout of {label}", out)
        assert_clean(f"the stderr of {label}", err)
    assert "[guide]" in cli(capfd, "run", QUESTION, "--models", str(pool_file),
                            "--stream")[1]
    for page in ("json.html", "stream.html"):
        html = (tmp_path / page).read_text(encoding="utf-8")
        assert "<drafts>" in html or "&lt;drafts&gt;" in html  # the server's prompt is shown
        assert_clean(f"the trace page {page}", html)
    check_key_went_to_paid_endpoint_only(endpoint)
    assert_clean("the log records of the runs", logs())


@pytest.mark.parametrize("failure", cases(list(FAILURES)))
def test_degraded_run_after_failed_paid_call(
        failure: str, pool_file: Path, endpoint: PaidEndpoint, tmp_path: Path,
        capfd: pytest.CaptureFixture[str], logs: Callable[[], str]) -> None:
    endpoint.fail(FAILURES[failure])
    trace = tmp_path / "degraded.html"
    rc, out, err = cli(capfd, "run", QUESTION, "--models", str(pool_file), "--json",
                       "--trace", str(trace))
    assert rc == 0, err
    result = json.loads(out)
    assert result["degraded"] and any(re.match(r"paid model big\b.* failed", reason)
                                      for reason in result["degraded_reasons"]), result
    assert_clean("the JSON of a degraded run", out)
    assert_clean("the stderr of a degraded run", err)
    assert_clean("the trace page of a degraded run", trace.read_text(encoding="utf-8"))
    for flags in ([], ["--stream"], ["--json", "--stream"]):
        rc, out, err = cli(capfd, "run", QUESTION, "--models", str(pool_file), *flags)
        assert rc == 0, err
        assert_clean(f"the output of a degraded run {flags}", out)
        assert_clean(f"the stderr of a degraded run {flags}", err)
    assert all(r["headers"]["authorization"] == f"Bearer {KEY}"
               for r in endpoint.paid_requests())
    check_key_went_to_paid_endpoint_only(endpoint)
    assert_clean("the log records of degraded runs", logs())


@pytest.mark.parametrize("failure", cases(list(HARD_FAILURES)))
def test_failed_run_after_failed_fallback(
        failure: str, pool_file: Path, endpoint: PaidEndpoint, tmp_path: Path,
        capfd: pytest.CaptureFixture[str], logs: Callable[[], str]) -> None:
    endpoint.fail(HARD_FAILURES[failure])
    trace = tmp_path / "failed.html"
    rc, out, err = cli(capfd, "run", QUESTION, "--models", str(pool_file), "--json",
                       "--trace", str(trace))
    assert rc == 1, err
    assert err.startswith("colm-graph: failed: ") and err.count("\n") == 1, err
    partial = json.loads(out)
    assert partial["error"], partial
    assert partial["round_detail"][0]["responses"], "the drafts are kept"
    assert_clean("the error line of a failed run", err)
    assert_clean("the partial JSON of a failed run", out)
    assert_clean("the trace page of a failed run", trace.read_text(encoding="utf-8"))
    for flags in ([], ["--stream"]):
        rc, out, err = cli(capfd, "run", QUESTION, "--models", str(pool_file), *flags)
        assert rc == 1, err
        assert_clean(f"the text output of a failed run {flags}", out)
        assert_clean(f"the error line of a failed run {flags}", err)
    check_key_went_to_paid_endpoint_only(endpoint)
    assert_clean("the log records of failed runs", logs())


# -- the checkpoint database ------------------------------------------------------------------

def assert_database_clean(db: Path) -> None:
    """The raw bytes of the SQLite database and its journal files hold no piece of the key
    (checkpoints, pending writes with a failed task's exception, metadata)."""
    files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
    assert db in files
    for path in files:
        data = path.read_bytes()
        assert_clean(f"the checkpoint file {path.name}", data)
        low = data.lower()
        for i in range(len(KEY) - 7):
            assert KEY[i:i + 8].lower().encode() not in low, (path.name, KEY[i:i + 8])


@contextmanager
def journal_kept(db: Path) -> Iterator[None]:
    """A second connection to ``db`` held open meanwhile, so that SQLite keeps the WAL file
    when the run's connection closes (the last one to close folds it into the database and
    deletes it), and the WAL is searched too."""
    import sqlite3

    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("BEGIN")  # an open read transaction: the WAL cannot go
        holder.execute("SELECT count(*) FROM sqlite_master").fetchall()
        yield
    finally:
        holder.close()


def test_checkpointer_scrubs_a_raw_exception_in_pending_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LangGraph stores a failed task's exception itself in the pending writes: the saver of
    ``connect_checkpointer`` scrubs it (keys given, and key-like environment variables)."""
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    from colm_graph.integrations.durable import open_checkpointer

    class State(TypedDict, total=False):
        question: str
        note: str

    def fail(state: State) -> State:
        raise RuntimeError(f"upstream said: invalid key {KEY} (masked {KEY[:12]}...)")

    def note(state: State) -> State:
        return {"note": f"copied {KEY.upper()} and {KEY[5:17]}"}

    builder = StateGraph(State)
    builder.add_node("note", note)
    builder.add_node("fail", fail)
    builder.add_edge(START, "note")
    builder.add_edge(START, "fail")
    builder.add_edge("note", END)
    builder.add_edge("fail", END)
    for label, secrets, env in (("given", [KEY], "COLM_UNRELATED_NAME"),
                                ("from the environment", [], "COLM_LEAK_TEST_KEY")):
        monkeypatch.delenv(KEY_ENV, raising=False)
        monkeypatch.setenv(env, KEY)
        db = tmp_path / f"{label.replace(' ', '-')}.sqlite"
        with journal_kept(db), open_checkpointer(db, secrets=secrets) as saver:
            graph = builder.compile(checkpointer=saver)
            config = {"configurable": {"thread_id": f"t-{KEY[:4]}"}}
            with pytest.raises(RuntimeError, match="invalid key"):
                graph.invoke({"question": f"what is {KEY}?"}, config, durability="sync")
            assert any(p.name.endswith("-wal") for p in tmp_path.iterdir())
            assert_database_clean(db)
            assert graph.get_state(config).values["question"].startswith("what is ***")
        monkeypatch.delenv(env)


@pytest.mark.parametrize("case", ["failed-run", "degraded-run", "echo-whole", "echo-pieces"])
def test_checkpoint_database(case: str, pool_file: Path, endpoint: PaidEndpoint,
                             tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    if case == "failed-run":  # the task's exception is stored in the pending writes
        endpoint.fail(HARD_FAILURES["401-full-key"])
    elif case == "degraded-run":
        endpoint.fail(FAILURES["500-full-key"])
    else:
        endpoint.echo(ECHO_FORMS[case.removeprefix("echo-")])
    db = tmp_path / "run.sqlite"
    with journal_kept(db):
        rc, out, err = cli(capfd, "run", QUESTION, "--models", str(pool_file), "--json",
                           "--checkpoint", str(db))
        assert rc == (1 if case == "failed-run" else 0), err
        assert_clean("the JSON of a checkpointed run", out)
        assert_clean("the stderr of a checkpointed run", err)
        assert any(p.name.endswith("-wal") for p in tmp_path.iterdir())
        assert_database_clean(db)
    if case == "failed-run":  # the failure is what was stored, and the run resumes from it
        import sqlite3

        with sqlite3.connect(db) as conn:
            channels = {row[0] for row in conn.execute("SELECT channel FROM writes")}
        assert "__error__" in channels, channels
        endpoint.fail(None)
        rc, out, err = cli(capfd, "run", QUESTION, "--models", str(pool_file), "--json",
                           "--checkpoint", str(db))
        assert rc == 0 and "resuming run" in err, err
        assert json.loads(out)["answer"] == "439"
        assert_database_clean(db)


# -- a model that echoes the key ---------------------------------------------------------------

@pytest.mark.parametrize("form", list(ECHO_FORMS))
def test_model_echo_in_run_outputs(form: str, pool_file: Path, endpoint: PaidEndpoint,
                                   tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    endpoint.echo(ECHO_FORMS[form])
    runs = {
        "run --json --trace": ["--json", "--trace", str(tmp_path / "json.html")],
        "run (text)": [],
        "run --stream --trace": ["--stream", "--trace", str(tmp_path / "stream.html")],
        "run --json --stream": ["--json", "--stream"],
    }
    for label, flags in runs.items():
        rc, out, err = cli(capfd, "run", QUESTION, "--models", str(pool_file), *flags)
        assert rc == 0, (label, err)
        assert "439" in out and "***" in out, (label, out)  # the echo was there, masked
        assert_clean(f"the stdout of {label} ({form} echo)", out)
        assert_clean(f"the stderr of {label} ({form} echo)", err)
    for page in ("json.html", "stream.html"):
        html = (tmp_path / page).read_text(encoding="utf-8")
        assert "[redacted]" in html
        assert_clean(f"the trace page {page} ({form} echo)", html)


@pytest.mark.parametrize("form", list(ECHO_FORMS))
def test_model_echo_stays_out_of_prompts_and_logs(
        form: str, pool_file: Path, endpoint: PaidEndpoint, capfd: pytest.CaptureFixture[str],
        logs: Callable[[], str]) -> None:
    """A reply that echoes the key is scrubbed where it comes in (the model call), so the
    next prompts (the server reads the drafts, the clients the guidance) and the logs of
    those requests never carry it."""
    endpoint.echo(ECHO_FORMS[form])
    rc, out, err = cli(capfd, "run", QUESTION, "--models", str(pool_file), "--json")
    assert rc == 0, err
    assert any("<drafts>" in json.dumps(r["body"]) for r in endpoint.paid_requests())
    check_key_went_to_paid_endpoint_only(endpoint)
    assert_clean(f"the log records of the run ({form} echo)", logs())


@pytest.mark.parametrize("form", list(ECHO_FORMS))
def test_model_echo_in_eval_files(form: str, pool_file: Path, endpoint: PaidEndpoint,
                                  tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                  logs: Callable[[], str]) -> None:
    endpoint.echo(ECHO_FORMS[form])
    out_dir = tmp_path / "eval"
    rc, out, err = cli(capfd, "eval", "--graphs", "colm,large_only,small_only", "--dataset",
                       str(write_dataset(tmp_path / "data.jsonl")), "--models",
                       str(pool_file), "--out", str(out_dir), "--concurrency", "4")
    assert rc == 0, err
    rows = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and not any(r["error"] for r in rows)
    for path in sorted(out_dir.rglob("*")):
        if path.is_file():
            assert_clean(f"eval output {path.name} ({form} echo)", path.read_bytes())
    assert_clean("the stdout of eval", out)
    assert_clean("the stderr of eval", err)
    check_key_went_to_paid_endpoint_only(endpoint)
    assert_clean(f"the log records of eval ({form} echo)", logs())


@pytest.mark.parametrize("form", list(ECHO_FORMS))
def test_model_echo_in_serve_replies(form: str, pool_file: Path, endpoint: PaidEndpoint
                                     ) -> None:
    import httpx

    endpoint.echo(ECHO_FORMS[form])
    pool = ModelPool.from_yaml(pool_file)
    body: dict[str, Any] = {"messages": [{"role": "user", "content": QUESTION}]}
    with serving(create_app(pool, graphs=["colm", "single"]), log_config=None,
                 log_level="debug") as url:
        for model in ("colm", "single"):
            r = httpx.post(f"{url}/chat/completions", json={**body, "model": model},
                           timeout=60)
            assert r.status_code == 200, r.text
            assert "***" in r.json()["choices"][0]["message"]["content"]
            assert_clean(f"the serve reply ({model}, {form} echo)", r.text)
            with httpx.stream("POST", f"{url}/chat/completions", timeout=60, json={
                    **body, "model": model, "stream": True,
                    "stream_options": {"include_usage": True}}) as s:
                assert s.status_code == 200
                events = s.read().decode()
            assert events.rstrip().endswith("data: [DONE]")
            assert_clean(f"the streamed serve reply ({model}, {form} echo)", events)
            text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                           for e in re.findall(r"^data: (\{.*\})$", events, re.MULTILINE)
                           if json.loads(e)["choices"])
            assert_clean(f"the text of the streamed reply ({model}, {form} echo)", text)


# -- colm-graph eval --------------------------------------------------------------------------

def write_dataset(path: Path) -> Path:
    rows = [{"id": "q1", "question": QUESTION, "answer": "439"},
            {"id": "q2", "question": "What is 400 + 39?", "answer": "439"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


EVAL_CASES = {"ok": None, **{f"degraded-{k}": v for k, v in FAILURES.items()},
              **{f"failed-{k}": v for k, v in HARD_FAILURES.items()}}


@pytest.mark.parametrize("case", cases([c for c in EVAL_CASES if c != "degraded-401-masked-key"])
                         + ["degraded-401-masked-key"])
def test_eval_files(case: str, pool_file: Path, endpoint: PaidEndpoint,
                    tmp_path: Path, capfd: pytest.CaptureFixture[str],
                    logs: Callable[[], str]) -> None:
    failure = EVAL_CASES[case]
    endpoint.fail(failure)
    out_dir = tmp_path / "eval"
    rc, out, err = cli(capfd, "eval", "--graphs", "colm,large_only,small_only", "--dataset",
                       str(write_dataset(tmp_path / "data.jsonl")), "--models",
                       str(pool_file), "--out", str(out_dir), "--concurrency", "4")
    assert rc == 0, err
    names = {p.name for p in out_dir.iterdir()}
    assert {"results.jsonl", "summary.json", "report.md", "run.json"} <= names, names
    rows = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    if failure is None:
        assert not any(r["error"] or r["degraded"] for r in rows)
    elif failure.fallback_fails:
        assert any(r["error"] for r in rows), "the colm runs should have failed"
    else:
        assert any(r["degraded"] for r in rows) and not any(r["error"] for r in rows)
    for path in sorted(out_dir.rglob("*")):
        if path.is_file():
            assert_clean(f"eval output {path.name}", path.read_bytes())
    assert_clean("the stdout of eval", out)
    assert_clean("the stderr of eval", err)
    assert endpoint.paid_requests()
    assert_clean("the log records of eval", logs())


# -- colm-graph serve ------------------------------------------------------------------------

def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="colm-serve-client", max_retries=0,
                         timeout=60)


def serve_round(url: str, endpoint: PaidEndpoint, echo: str) -> list[tuple[str, str]]:
    """Normal, degraded (the paid call failed) and failed (its fallback failed too) requests,
    JSON and streamed; ``(artefact, text)`` pairs."""
    seen: list[tuple[str, str]] = []
    messages: Any = [{"role": "user", "content": QUESTION}]
    with client(url) as c:
        for failure, label in ((None, "reply"), (FAILURES[echo], "degraded reply")):
            endpoint.fail(failure)
            for model in ("colm", "single"):
                reply = c.chat.completions.create(model=model, messages=messages)
                assert reply.choices[0].message.content
                colm = (reply.model_extra or {})["colm"]
                assert colm["degraded"] is (failure is not None), colm
                seen.append((f"serve {label} ({model})", reply.model_dump_json()))
                chunks = list(c.chat.completions.create(
                    model=model, messages=messages, stream=True,
                    stream_options={"include_usage": True}))
                seen.append((f"serve streamed {label} ({model})",
                             "\n".join(ch.model_dump_json() for ch in chunks)))
        endpoint.fail(HARD_FAILURES[echo])
        for stream in (False, True):
            with pytest.raises(openai.APIStatusError) as info:
                result = c.chat.completions.create(model="colm", messages=messages,
                                                   stream=stream)
                if stream:
                    list(result)
            error = info.value
            assert error.status_code == 502, error
            seen.append((f"serve error message (stream={stream})", error.message))
            seen.append((f"serve error body (stream={stream})", json.dumps(error.body)))
            seen.append((f"serve error response (stream={stream})",
                         error.response.text + repr(dict(error.response.headers))))
    endpoint.fail(None)
    return seen


@pytest.mark.parametrize("failure", cases(list(FAILURES)))
def test_serve_replies_and_errors(failure: str, pool_file: Path, endpoint: PaidEndpoint,
                                  logs: Callable[[], str]) -> None:
    pool = ModelPool.from_yaml(pool_file)
    with serving(create_app(pool, graphs=["colm", "single"]), log_config=None,
                 log_level="debug") as url:
        for what, text in serve_round(url, endpoint, failure):
            assert_clean(what, text)
    check_key_went_to_paid_endpoint_only(endpoint)
    assert_clean("the log records of serve", logs())


def _lines(stream: Any, sink: queue.Queue[str]) -> None:
    for line in stream:
        sink.put(line)


@pytest.mark.slow
def test_cli_serve_process_output(pool_file: Path, endpoint: PaidEndpoint) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "colm_graph.cli", "serve", "--port", "0", "--graphs",
               "colm,single", "--models", str(pool_file)]
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        readers = [threading.Thread(target=_lines, args=(s, q), daemon=True)
                   for s, q in ((proc.stdout, out), (proc.stderr, err))]
        for t in readers:
            t.start()
        try:
            match = re.search(r"at (http://\S+/v1)$", out.get(timeout=60).strip())
            assert match
            for what, text in serve_round(match.group(1), endpoint, "401-full-key"):
                assert_clean(f"{what} from the serve command", text)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            for t in readers:
                t.join(10)
    assert_clean("the stdout of colm-graph serve", "".join(out.queue))
    assert_clean("the stderr of colm-graph serve", "".join(err.queue))
    check_key_went_to_paid_endpoint_only(endpoint)


# -- objects ----------------------------------------------------------------------------------

def test_reprs_of_pool_entries_and_models(pool_file: Path) -> None:
    from langchain_core.load import dumps

    pool = ModelPool.from_yaml(pool_file)
    big = pool.entry("big")
    model = big.chat_model
    assert model.openai_api_key is not None  # type: ignore[attr-defined]
    assert model.openai_api_key.get_secret_value() == KEY  # type: ignore[attr-defined]
    artefacts = {
        "repr(pool)": repr(pool), "str(pool)": str(pool),
        "repr(entries)": repr(list(pool)), "repr(spec)": repr(big.spec),
        "spec.model_dump_json()": big.spec.model_dump_json() if big.spec else "",
        "repr(ChatOpenAI)": repr(model), "str(ChatOpenAI)": str(model),
        "ChatOpenAI.model_dump()": repr(model.model_dump()),
        "ChatOpenAI.model_dump_json()": model.model_dump_json(),
        "langchain dumps(ChatOpenAI)": dumps(model),
        "ChatOpenAI identifying params": repr(model._identifying_params),
        "ChatOpenAI ls params": repr(model._get_ls_params()),
    }
    for what, text in artefacts.items():
        assert_clean(what, text)
    assert KEY_ENV in repr(big.spec)  # the variable's name, not its value
