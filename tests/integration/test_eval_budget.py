"""``colm-graph eval --max-paid-usd X`` caps the whole eval (issue 10, "the eval cap"), checked
against what an OpenAI-compatible server on 127.0.0.1 saw:

* an item that fails after paid calls keeps them in its row (and they count against the cap);
* ``--resume`` keeps the cap the eval was started with (and what the killed part spent, the
  call in flight at the kill included), unless a new one is given, which ``run.json`` then
  records;
* every paid call reserves its own worst case from one account for the eval, so a cap that
  affords N worst-case calls makes N calls at concurrency 1 and at concurrency 32, in one
  process or in two worker processes (``--workers 2``).

The paid model ``big`` reports, for every call, the worst case colm_graph plans for: its
prompt's token bound (``colm_graph.core.tokens.prompt_bound``: ``big`` has no known tokenizer, so
UTF-8 bytes plus 8 tokens a message plus 16 a call) and the call's whole ``max_tokens``. So
what each call really costs is what it reserved, and the number of calls a cap affords is
exact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from colm_graph.cli.main import main
from colm_graph.core.tokens import BYTES, prompt_bound
from tests.support.openai_server import FaultServer, message_text
from tests.support.pools import local_entry, paid_entry, write_pool

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KEY_ENV, KEY = "COLM_EVAL_BUDGET_KEY", "sk-test-eval-budget"
PRICE = 1000.0
"""USD per million tokens, input and output alike: a token costs $0.001."""
MAX_TOKENS = 64
"""The paid entry's ``max_tokens``: the most output a paid call may write."""
MARK = "PAIDMARK"
"""In the paid model's guidance: a local request that carries it comes after a paid call."""


def worst_in(body: dict[str, Any]) -> int:
    """The prompt bound colm_graph reserves for a request with this body."""
    return prompt_bound([SimpleNamespace(content=m.get("content", ""))
                         for m in body.get("messages") or ()], BYTES)


def max_out(body: dict[str, Any]) -> int:
    return int(body.get("max_completion_tokens") or body.get("max_tokens") or MAX_TOKENS)


def worst_usd(body: dict[str, Any]) -> float:
    """What a paid request with this body may cost at most (and here does cost)."""
    return (worst_in(body) + max_out(body)) * PRICE / 1e6


def responder(body: dict[str, Any]) -> dict[str, Any]:
    model, text = body["model"], message_text(body)
    if model == "big":
        return {"content": f"Hint: check the sum; the answer is 42. {MARK}",
                "prompt_tokens": worst_in(body), "completion_tokens": max_out(body)}
    if MARK in text:  # a revision after the paid guidance
        return {"content": "Answer: 42"}
    return {"content": "Answer: 41" if model == "small" else "Answer: 43"}


def fail_after_paid(record: dict[str, Any]) -> str | None:
    """Local requests of items tagged ``fail`` that come after the paid call get bodies
    that are not JSON (after retries, the local call fails and so does the item)."""
    if record["model"] != "big" and (record["tag"] or "").startswith("fail") and \
            MARK in message_text(record["body"]):
        return "malformed"
    return None


def pool_file(path: Path, base_url: str) -> Path:
    return write_pool(path, [
        local_entry("small", "small", base_url),
        local_entry("tiny", "tiny", base_url),
        paid_entry("big", "big", base_url, key_env=KEY_ENV, price=(PRICE, PRICE),
                   max_tokens=MAX_TOKENS),
    ])


def dataset(path: Path, n: int, tag: Any = None) -> Path:
    """``n`` items; all alike (one prompt length) unless ``tag(i)`` tags item ``i``."""
    lines = []
    for i in range(n):
        prefix = f"[tag:{tag(i)}-{i:02d}] " if tag else ""
        lines.append(json.dumps({"id": f"q{i:02d}", "question": f"{prefix}What is 40 + 2?",
                                 "answer": "42"}) + "\n")
    path.write_text("".join(lines))
    return path


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(responder=responder, behaviour_for=fail_after_paid,
                     timeout_sleep_s=60) as srv:
        yield srv


def eval_args(tmp_path: Path, srv: FaultServer, data: Path, out: Path, graphs: str,
              *extra: str) -> list[str]:
    return ["eval", "--graphs", graphs, "--dataset", str(data), "--out", str(out), "--quiet",
            "--no-cache",  # alike prompts are how these tests count calls: none reused
            "--models", str(pool_file(tmp_path / "pool.yaml", srv.base_url)), *extra]


def cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(argv)
    return rc, capsys.readouterr().err


def rows_of(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def paid_requests(srv: FaultServer) -> list[dict[str, Any]]:
    return srv.requests_for("big")


# --- (a) failed items keep their paid calls ----------------------------------------------------


@pytest.mark.parametrize("workers", ["1", pytest.param("2", marks=pytest.mark.slow)])
def test_failed_items_keep_their_paid_calls_in_rows_and_summary(
        tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str],
        workers: str) -> None:
    # CoLM: two local clients disagree, the paid server guides, the clients revise; the
    # revisions of the odd items get malformed replies, so those items fail after paying
    data = dataset(tmp_path / "d.jsonl", 6, tag=lambda i: "fail" if i % 2 else "ok")
    out = tmp_path / "run"
    rc, err = cli(capsys, eval_args(tmp_path, server, data, out, "colm", "--concurrency", "3",
                                    "--workers", workers))
    assert rc == 0, err

    rows = {r["id"]: r for r in rows_of(out)}
    assert len(rows) == 6
    seen = paid_requests(server)
    assert all(r["behaviour"] == "ok" for r in seen)
    for i in range(6):
        row, tag = rows[f"q{i:02d}"], f"{'fail' if i % 2 else 'ok'}-{i:02d}"
        mine = [r for r in seen if r["tag"] == tag]
        assert len(mine) == 1, tag
        if i % 2:
            assert row["error"], row
            assert row["answer"] is None and not row["correct"]
        else:
            assert row["error"] is None and row["correct"]
        # the row holds the paid call the server answered, failed item or not
        assert row["paid_calls"] == 1, row
        assert row["paid_tokens"] == mine[0]["prompt_tokens"] + mine[0]["completion_tokens"]
        assert row["paid_usd"] == pytest.approx(worst_usd(mine[0]["body"]))
        assert row["calls"] == row["paid_calls"] + row["local_calls"]
        assert row["usd"] == pytest.approx(row["paid_usd"] + row["local_usd"])

    # the rows together hold every paid request the server saw
    assert sum(r["paid_calls"] for r in rows.values()) == len(seen) == 6
    server_usd = sum(worst_usd(r["body"]) for r in seen)
    assert sum(r["paid_usd"] for r in rows.values()) == pytest.approx(server_usd)
    summary = json.loads((out / "summary.json").read_text())["graphs"]["colm"]
    assert (summary["n"], summary["errors"]) == (6, 3)
    assert summary["paid_usd"] == pytest.approx(server_usd)
    assert server_usd > 0


def test_failed_items_count_against_the_cap(tmp_path: Path, server: FaultServer,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # every item fails after its paid guidance; the cap pays for two guidance calls and a
    # half: two are made, the other items run on the local tier and finish (degraded)
    probe = tmp_path / "probe"
    one = dataset(tmp_path / "one.jsonl", 1, tag=lambda i: "fail")
    assert cli(capsys, eval_args(tmp_path, server, one, probe, "colm"))[0] == 0
    (call,) = paid_requests(server)
    cap = float(f"{2.5 * worst_usd(call['body']):.6f}")
    before = len(paid_requests(server))

    data = dataset(tmp_path / "d.jsonl", 6, tag=lambda i: "fail")
    out = tmp_path / "run"
    rc, err = cli(capsys, eval_args(tmp_path, server, data, out, "colm", "--concurrency", "1",
                                    "--max-paid-usd", f"{cap:.6f}"))
    assert rc == 0, err
    seen = paid_requests(server)[before:]
    rows = rows_of(out)
    assert len(seen) == 2, [r["tag"] for r in seen]
    assert sum(worst_usd(r["body"]) for r in seen) <= cap
    assert sum(r["paid_calls"] for r in rows) == 2
    assert sum(r["paid_usd"] for r in rows) == pytest.approx(
        sum(worst_usd(r["body"]) for r in seen))
    failed = [r for r in rows if r["error"] is not None]
    assert len(failed) == 2 and all(r["paid_calls"] == 1 for r in failed)
    assert all(r["degraded"] and r["error"] is None for r in rows if r["paid_calls"] == 0)


# --- (b) --resume keeps the cap ----------------------------------------------------------------


def killed_first_part(tmp_path: Path, srv: FaultServer, argv: list[str], rows: int) -> None:
    """Run ``colm-graph ARGV`` (concurrency 1) in a subprocess and SIGKILL it while its
    ``rows + 1``-th paid request hangs on the server, after ``rows`` rows are written."""
    hang_at, skip = rows + 1, len(paid_requests(srv))
    count = {"n": 0}

    def hang(record: dict[str, Any]) -> str | None:
        if record["model"] == "big":
            count["n"] += 1
            if count["n"] == hang_at:
                return "timeout"  # the server stalls: the call is in flight at the kill
        return None

    srv.behaviour_for = hang
    results = Path(argv[argv.index("--out") + 1]) / "results.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with (tmp_path / "first.err").open("w") as err_file:
        proc = subprocess.Popen([sys.executable, "-m", "colm_graph.cli", *argv],
                                stdout=subprocess.DEVNULL, stderr=err_file, env=env,
                                cwd=tmp_path)
        try:
            deadline = time.monotonic() + 120  # a guard against hanging, not a timing check
            while (len(paid_requests(srv)) - skip < hang_at or not results.exists()
                   or results.read_bytes().count(b"\n") < rows) and proc.poll() is None:
                assert time.monotonic() < deadline, "the first part did not get that far"
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "first.err").read_text()
    assert results.read_bytes().count(b"\n") == rows
    assert len(paid_requests(srv)) - skip == hang_at
    srv.behaviour_for = None


@pytest.mark.slow
@pytest.mark.parametrize("again", [None, "same", 7.5], ids=["no-flag", "same-flag", "new-cap"])
def test_resume_keeps_the_cap_unless_a_new_one_is_given(
        tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str],
        again: Any) -> None:
    # large_only: one paid call an item, every item alike, each call costing exactly W
    probe = tmp_path / "probe"
    assert cli(capsys, eval_args(tmp_path, server, dataset(tmp_path / "one.jsonl", 1), probe,
                                 "large_only"))[0] == 0
    (call,) = paid_requests(server)
    w = worst_usd(call["body"])
    cap = float(f"{4.5 * w:.6f}")  # four calls
    skip = len(paid_requests(server))

    data = dataset(tmp_path / "d.jsonl", 8)
    out = tmp_path / "run"
    argv = eval_args(tmp_path, server, data, out, "large_only", "--concurrency", "1",
                     "--max-paid-usd", f"{cap:.6f}")
    # two items paid and written, the third one's paid call in flight at the kill
    killed_first_part(tmp_path, server, argv, rows=2)
    meta = (out / "run.json").read_bytes()
    assert json.loads(meta)["max_paid_usd"] == pytest.approx(cap)

    resume = argv[: argv.index("--max-paid-usd")] + ["--resume"]
    new_cap = cap if again in (None, "same") else float(f"{again * w:.6f}")
    if again is not None:
        resume += ["--max-paid-usd", f"{new_cap:.6f}"]
    rc, err = cli(capsys, resume)
    assert rc == 0, err

    rows = rows_of(out)
    assert sorted(r["id"] for r in rows) == [f"q{i:02d}" for i in range(8)]
    seen = paid_requests(server)[skip:]
    # every paid request sent counts at its worst case, the one that hung at the kill too
    sent = sum(worst_usd(r["body"]) for r in seen)
    assert sent <= new_cap + 1e-12
    assert sum(r["paid_usd"] for r in rows) <= new_cap + 1e-12
    if again == 7.5:
        # the new cap: 7.5 W, of which the killed part used 3 W (2 paid, 1 in flight)
        assert len(seen) == 7
        line = err.strip()
        assert "\n" not in line and line.startswith("colm-graph: note: --resume"), err
        assert f"${new_cap:g}" in line and f"${cap:g}" in line, line
        changed = json.loads((out / "run.json").read_text())
        assert changed["max_paid_usd"] == pytest.approx(new_cap)
        assert {k: v for k, v in changed.items() if k != "max_paid_usd"} == \
            {k: v for k, v in json.loads(meta).items() if k != "max_paid_usd"}
    else:
        # the original cap: 4 W, the call in flight at the kill counted at its worst case
        assert len(seen) == 4
        assert err == ""
        assert (out / "run.json").read_bytes() == meta
    assert sum(r["paid_calls"] for r in rows) == len(seen) - 1  # the hung call left no row


# --- (c) N calls at any concurrency -----------------------------------------------------------


@pytest.mark.parametrize(("concurrency", "workers"), [(1, 1), (32, 1), (32, 2)],
                         ids=["concurrency-1", "concurrency-32", "concurrency-32-workers-2"])
def test_a_cap_that_affords_n_calls_makes_n_calls_at_any_concurrency(
        tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str],
        concurrency: int, workers: int) -> None:
    # workers 2: the items run in two processes, which share the cap (colm_graph.run.spend)
    # one paid call per item (large_only), every prompt alike: a call's worst case W is its
    # prompt bound plus MAX_TOKENS output tokens, at PRICE, and the server bills exactly W
    probe = tmp_path / "probe"
    assert cli(capsys, eval_args(tmp_path, server, dataset(tmp_path / "one.jsonl", 1), probe,
                                 "large_only"))[0] == 0
    (call,) = paid_requests(server)
    assert max_out(call["body"]) == MAX_TOKENS
    w = (worst_in(call["body"]) + MAX_TOKENS) * PRICE / 1e6
    n = 5
    # N calls and half a call: what is left after N does not pay for the next prompt
    cap = float(f"{n * w + 0.5 * worst_in(call['body']) * PRICE / 1e6:.9f}")
    skip = len(paid_requests(server))

    out = tmp_path / "run"
    rc, err = cli(capsys, eval_args(tmp_path, server, dataset(tmp_path / "d.jsonl", 40), out,
                                    "large_only", "--concurrency", str(concurrency),
                                    "--workers", str(workers), "--max-paid-usd", repr(cap)))
    assert rc == 0, err
    seen = paid_requests(server)[skip:]
    rows = rows_of(out)
    assert len(rows) == 40
    assert len(seen) == n
    assert all(worst_usd(r["body"]) == pytest.approx(w) for r in seen)
    assert sum(worst_usd(r["body"]) for r in seen) <= cap
    assert sum(r["paid_calls"] for r in rows) == n
    assert sum(r["paid_usd"] for r in rows) == pytest.approx(n * w)
    assert sum(1 for r in rows if r["degraded"]) == 40 - n
    assert all(r["error"] is None for r in rows)
