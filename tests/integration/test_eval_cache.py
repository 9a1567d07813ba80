"""The eval's call cache (``colm_graph.run.cache``, ``colm-graph eval --cache``): counted at
a local OpenAI-compatible fake (the real ``ChatOpenAI`` over HTTP), a second eval on the
same cache makes no request, a threshold sweep pays for each distinct call once, and an
eval killed mid-way and resumed makes again only the calls that had not finished."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from colm_graph.cli.main import main
from colm_graph.run.cache import SQLiteCallCache
from tests.support.openai_server import FakeOpenAIServer
from tests.support.pools import small_big_pool

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = [(f"What is {a} plus {b}? Show your work.", a + b)
             for a, b in [(12, 30), (7, 8), (100, 23), (45, 45), (9, 91), (61, 17), (3, 4),
                          (250, 250)]]


def _answer(body: dict[str, Any]) -> str:
    """The big model is right; the small one is right on even sums, off by one on odd."""
    text = json.dumps(body.get("messages"))
    a, b = map(int, re.findall(r"What is (\d+) plus (\d+)", text)[-1])
    total = a + b if body["model"] == "big" or (a + b) % 2 == 0 else a + b + 1
    return (f"Let me add them.\n\n**{a} + {b}** = {total}\n\nSo the answer is "
            f"$\\boxed{{{total}}}$.")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    monkeypatch.setenv("COLM_TEST_KEY", "sk-cache-test-77a1")
    with FakeOpenAIServer(responder=_answer) as srv:
        yield srv


def _dataset(path: Path) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": q, "answer": str(a)})
                            + "\n" for i, (q, a) in enumerate(QUESTIONS)))
    return path


def _eval(tmp_path: Path, fake: FakeOpenAIServer, out: str, *extra: str) -> dict[str, Any]:
    pool = small_big_pool(tmp_path / "models.yaml", fake.base_url)
    code = main(["eval", "--dataset", str(_dataset(tmp_path / "d.jsonl")), "--models",
                 str(pool), "--out", str(tmp_path / out), "--quiet", *extra])
    assert code == 0
    summary: dict[str, Any] = json.loads((tmp_path / out / "summary.json").read_text())
    return summary


def _bodies(fake: FakeOpenAIServer) -> list[str]:
    """Each chat request as the provider saw it, but for the transport's stream flags."""
    return [json.dumps({k: v for k, v in r["body"].items()
                        if k not in ("stream", "stream_options")}, sort_keys=True)
            for r in fake.chat_requests]


@pytest.mark.parametrize("workers", ["1", pytest.param("2", marks=pytest.mark.slow)])
def test_a_second_eval_on_the_same_cache_pays_nothing(tmp_path: Path,
                                                      fake: FakeOpenAIServer,
                                                      capsys: pytest.CaptureFixture[str],
                                                      workers: str) -> None:
    # workers 2: two processes fill the cache at once, two others answer from it
    shared = tmp_path / "shared.sqlite"
    graphs = "large_only,small_only,cascade"
    first = _eval(tmp_path, fake, "one", "--graphs", graphs, "--cache", str(shared),
                  "--workers", workers)
    made = len(fake.chat_requests)
    assert made > 0 and len(SQLiteCallCache(shared)) == len(set(_bodies(fake)))
    second = _eval(tmp_path, fake, "two", "--graphs", graphs, "--cache", str(shared),
                   "--workers", workers)
    assert len(fake.chat_requests) == made  # not one request more
    for label, g in second["graphs"].items():
        was = first["graphs"][label]
        assert g["accuracy"] == was["accuracy"] and g["paid_usd"] == was["paid_usd"]
        assert g["paid_usd_spent"] == 0 and g["cached_calls"] == was["calls"]
    assert second["graphs"]["large_only"]["paid_usd"] > 0
    rows = [json.loads(x) for x in (tmp_path / "two" / "results.jsonl").read_text().splitlines()]
    assert all(r["paid_usd"] == 0 and r["cached_calls"] == r["calls"] for r in rows)
    assert "## Call cache" in (tmp_path / "two" / "report.md").read_text()
    # --no-cache makes every call again
    _eval(tmp_path, fake, "three", "--graphs", "large_only", "--no-cache")
    assert len(fake.chat_requests) == made + len(QUESTIONS)
    capsys.readouterr()


def test_a_threshold_sweep_pays_for_each_distinct_call_once(tmp_path: Path,
                                                            fake: FakeOpenAIServer) -> None:
    values = "0.1,0.3,0.5,0.7,0.9"
    summary = _eval(tmp_path, fake, "sweep", "--graphs", "large_only,small_only",
                    "--sweep", f"route.threshold={values}")
    bodies = _bodies(fake)
    assert len(bodies) == len(set(bodies)), "a call was made twice"
    # every route call is one the baselines made already (the same prompt to the same
    # model): the whole sweep paid for nothing beyond them
    paid = [r for r in fake.chat_requests if r["model"] == "big"]
    assert len(paid) == len(QUESTIONS)
    sweep = [g for label, g in summary["graphs"].items() if label.startswith("route[")]
    assert len(sweep) == 5 and all(g["paid_usd_spent"] == 0 for g in sweep)
    assert {round(g["paid_usd"], 9) for g in sweep} != {0.0}  # they did route some to big
    assert summary["routing"]["route:threshold"]["apgr"] is not None


def _count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_a_resumed_eval_makes_again_only_the_unfinished_calls(tmp_path: Path,
                                                              fake: FakeOpenAIServer
                                                              ) -> None:
    fake.latency_s = 0.15
    pool = small_big_pool(tmp_path / "models.yaml", fake.base_url)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "colm_graph.cli", "eval", "--graphs", "cascade,colm",
           "--dataset", str(_dataset(tmp_path / "d.jsonl")), "--models", str(pool),
           "--out", str(out), "--concurrency", "2", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120  # a guard against hanging, not a timing check
        while _count(out / "results.jsonl") < 3 and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)  # mid-way through the next items' calls
        killed_at = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    before = len(fake.chat_requests)
    unfinished = sum(1 for r in fake.chat_requests
                     if r["finished_at"] is None or r["finished_at"] > killed_at - 0.05)
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    counts = Counter(_bodies(fake))
    repeated = sum(n - 1 for n in counts.values() if n > 1)
    assert len(fake.chat_requests) > before  # the resumed run had calls to make
    # at most the calls in flight at the kill (two items at a time) are made again
    assert repeated <= max(unfinished, 2), (repeated, unfinished)
    # and each call made again is one that had not finished when the process died (the
    # 0.05 s: a reply the fake had sent but the killed client had not yet stored)
    firsts = {}
    for body, r in zip(_bodies(fake), fake.chat_requests, strict=True):
        firsts.setdefault(body, r)
    again = [firsts[b] for b, n in counts.items() if n > 1]
    assert all(r["finished_at"] is None or r["finished_at"] > killed_at - 0.05
               for r in again), [(r["model"], r["finished_at"], killed_at) for r in again]
    assert _count(out / "results.jsonl") == 2 * len(QUESTIONS)


def test_logged_samples_keep_every_prompt_and_reply_without_secrets(
        tmp_path: Path, fake: FakeOpenAIServer) -> None:
    key = "sk-cache-test-77a1"
    fake.responder = lambda body: (f"(using {key})\n" if body["model"] == "big" else "") + \
        _answer(body)
    _eval(tmp_path, fake, "logged", "--graphs", "large_only,cascade", "--log-samples")
    out = tmp_path / "logged"
    raw = (out / "samples.jsonl").read_text()
    assert key not in raw and key[:12] not in raw
    samples = {(s["graph"], s["id"]): s for s in map(json.loads, raw.splitlines())}
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(samples) == len(rows) == 2 * len(QUESTIONS)
    sent = {r["body"]["messages"][-1]["content"] for r in fake.chat_requests}
    for row in rows:
        calls = samples[(row["graph"], row["id"])]["calls"]
        assert len(calls) == row["calls"]
        question = QUESTIONS[int(row["id"][1:])][0]
        for c in calls:
            assert question in c["prompt"] and c["prompt"].startswith("[system]")
            assert c["response"].rstrip().endswith("$.") and c["model"] in ("big", "small")
            assert any(question in m for m in sent)


def test_a_cache_that_cannot_be_opened_is_one_line_and_nothing_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ev"
    code = main(["eval", "--graphs", "small_only", "--limit", "2", "--out", str(out),
                 "--quiet", "--cache", str(tmp_path / "missing" / "dir" / "c.sqlite")])
    assert code == 0  # a cache's folder is made when missing
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    capsys.readouterr()
    code = main(["eval", "--graphs", "small_only", "--limit", "2", "--out",
                 str(tmp_path / "ev2"), "--quiet", "--cache", str(blocker / "c.sqlite")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and f"--cache {blocker / 'c.sqlite'}" in err
    assert not (tmp_path / "ev2" / "results.jsonl").exists()
    assert not (tmp_path / "ev2" / "run.json").exists()
