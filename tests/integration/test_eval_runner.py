"""``colm-graph eval`` end to end: the concurrent runner, results.jsonl, ``--resume`` after a
real SIGKILL, determinism, failed items and bad command lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from colm_graph import ModelPool
from colm_graph.cli.main import main
from colm_graph.evaluation import Item, arun_eval, load_dataset, resolve_graphs, score_answer
from colm_graph.pool import DEFAULT_POOL_FILE
from tests.support.fakes import ScriptedChatModel

pytestmark = pytest.mark.integration

KEYS = {"id", "graph", "domain", "answer", "gold", "correct", "no_answer", "usd", "paid_usd",
        "local_usd", "paid_calls", "local_calls", "calls", "input_tokens", "output_tokens",
        "latency_s", "rounds", "stage", "degraded", "error", "simulated", "clients",
        "paid_tokens", "cached_calls", "cached_usd", "cached_paid_usd",
        "paid_request_bytes", "paid_response_bytes", "local_request_bytes",
        "local_response_bytes", "private", "deadline_hit", "link_changed_path"}
ROOT = Path(__file__).resolve().parents[2]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``colm-graph ARGV`` in this process; exit code, stdout, stderr."""
    capsys.readouterr()
    rc = main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def rows_of(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def by_pair(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    pairs = {(r["graph"], r["id"]): r for r in rows}
    assert len(pairs) == len(rows), "a (graph, id) pair appears twice"
    return pairs


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("colm-graph: error: "), err
    return lines[0]


def write_dataset(path: Path, questions: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": q, "answer": a}) + "\n"
                            for i, (q, a) in enumerate(questions)))
    return path


def fake_pool(latency_s: float = 0.0, script: Callable[[str], str] | None = None,
              small_script: Callable[[str], str] | None = None,
              ) -> tuple[ModelPool, ScriptedChatModel, ScriptedChatModel]:
    """A paid ``big`` model (answers 42 unless ``script`` says otherwise) and a local
    ``small`` one (answers 41 unless ``small_script`` says otherwise)."""
    big = ScriptedChatModel(latency_s=latency_s, script=script or (lambda _: "Answer: 42"))
    small = ScriptedChatModel(latency_s=latency_s, script=small_script or (lambda _: "Answer: 41"))
    pool = ModelPool()
    pool.add("big", big, tier="paid", price={"input": 1.0, "output": 2.0})
    pool.add("small", small, tier="local")
    return pool, big, small


# --- end to end on the simulated pool ------------------------------------------------------


def test_eval_end_to_end_on_the_simulated_pool(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    rc, stdout, err = cli(capsys, "eval", "--graphs", "colm,large_only,small_only",
                          "--sweep", "route.threshold=0.3,0.7", "--limit", "20",
                          "--out", str(out), "--quiet")
    assert rc == 0, err
    assert err == ""  # --quiet: no progress bar
    labels = ["colm", "large_only", "small_only", "route[threshold=0.3]",
              "route[threshold=0.7]"]
    items = {i.id: i for i in load_dataset("colm_tasks", limit=20)}
    assert len(items) == 20

    rows = rows_of(out)
    assert len(rows) == len(labels) * len(items)
    assert Counter((r["graph"], r["id"]) for r in rows) == Counter(
        (g, i) for g in labels for i in items)
    for r in rows:
        assert set(r) == KEYS
        item = items[r["id"]]
        assert r["gold"] == item.answer
        assert r["domain"] == item.domain
        assert r["error"] is None
        assert r["simulated"] is True
        # the correct flags agree with the scorer, recomputed here from answer and gold
        score = score_answer(r["answer"], item)
        assert (r["correct"], r["no_answer"]) == (score.correct, score.no_answer), r
        assert r["calls"] == r["paid_calls"] + r["local_calls"] >= 1
        assert r["usd"] == pytest.approx(r["paid_usd"] + r["local_usd"])
        # a paid call costs, unless the call cache answered it (what it cost when made)
        own = r["paid_usd"] + r["cached_paid_usd"]
        assert own > 0 if r["paid_calls"] else own == 0
        assert r["cached_calls"] <= r["calls"]
        assert r["latency_s"] >= 0

    graph_rows = {g: [r for r in rows if r["graph"] == g] for g in labels}
    # the baselines: one paid call each, or local calls only
    assert all(r["paid_calls"] == 1 and r["local_calls"] == 0
               for r in graph_rows["large_only"])
    assert all(r["paid_calls"] == 0 and r["local_calls"] == 1
               for r in graph_rows["small_only"])
    # a higher routing threshold sends no more queries to the paid model
    paid = {g: sum(r["paid_calls"] for r in graph_rows[g]) for g in labels}
    assert paid["route[threshold=0.7]"] <= paid["route[threshold=0.3]"]

    run = json.loads((out / "run.json").read_text())
    assert [g["label"] for g in run["graphs"]] == labels
    assert [g["baseline"] for g in run["graphs"]] == [None, "large_only", "small_only",
                                                      None, None]
    assert [g["params"] for g in run["graphs"][3:]] == [{"threshold": 0.3}, {"threshold": 0.7}]
    assert (run["dataset"], run["items"], run["limit"], run["seed"]) == ("colm_tasks", 20, 20, 0)
    assert run["simulated"] is True

    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["graphs"]) == labels
    for g in labels:
        s = summary["graphs"][g]
        assert s["n"] == 20
        assert s["correct"] == sum(r["correct"] for r in graph_rows[g])
        assert s["errors"] == 0
        assert s["paid_usd"] == pytest.approx(sum(r["paid_usd"] + r["cached_paid_usd"]
                                                  for r in graph_rows[g]))
        assert s["paid_usd_spent"] == pytest.approx(sum(r["paid_usd"] for r in graph_rows[g]))
    report = (out / "report.md").read_text()
    assert all(g in report for g in labels)
    with Image.open(out / "pareto.png") as png:
        assert png.format == "PNG"
    assert "simulated" in stdout
    assert all(g in stdout for g in labels)


def test_progress_goes_to_stderr_without_quiet(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "eval", "--graphs", "small_only", "--limit", "5",
                     "--out", str(tmp_path / "run"))
    assert rc == 0, err
    assert err.strip().splitlines()[-1].startswith("[")
    assert "5/5" in err.strip().splitlines()[-1]


# --- concurrency -------------------------------------------------------------------------


def max_open(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one time (one that ends as another starts does not overlap)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def test_max_open_counts_overlaps() -> None:
    assert max_open([]) == 0
    assert max_open([(0, 1), (1, 2), (2, 3)]) == 1
    assert max_open([(0, 3), (1, 2), (1.5, 4), (3.5, 5)]) == 3


async def run_fake_eval(tmp_path: Path, concurrency: int, n: int = 10
                        ) -> tuple[list[dict[str, Any]], ScriptedChatModel]:
    pool, big, small = fake_pool(latency_s=0.2)
    items = [Item(id=f"q{i}", question=f"Question number {i}: what is 40 + 2?", answer="42",
                  kind="numeric") for i in range(n)]
    out = tmp_path / f"c{concurrency}"
    await arun_eval(resolve_graphs(["single"], pool), items, pool, out,
                    concurrency=concurrency)
    assert small.calls == []
    return rows_of(out), big


def item_of(call: dict[str, Any]) -> str:
    (number,) = {f"q{i}" for i in range(100) if f"Question number {i}:" in call["prompt"]}
    return number


async def test_items_run_concurrently_but_within_the_bound(tmp_path: Path) -> None:
    rows, big = await run_fake_eval(tmp_path, concurrency=4)
    assert len(rows) == 10 and all(r["correct"] for r in rows)
    calls = big.calls
    assert sorted(item_of(c) for c in calls) == sorted(f"q{i}" for i in range(10))
    overlapping = [(a, b) for i, a in enumerate(calls) for b in calls[i + 1:]
                   if item_of(a) != item_of(b) and a["start"] < b["end"]
                   and b["start"] < a["end"]]
    assert overlapping, "no two items ran at the same time"
    assert 2 <= max_open([(c["start"], c["end"]) for c in calls]) <= 4


async def test_concurrency_one_runs_items_one_after_another(tmp_path: Path) -> None:
    rows, big = await run_fake_eval(tmp_path, concurrency=1, n=4)
    assert len(rows) == 4
    assert max_open([(c["start"], c["end"]) for c in big.calls]) == 1


# --- resume after a real SIGKILL -----------------------------------------------------------


def slow_pool_file(path: Path, latency_s: float) -> Path:
    data = yaml.safe_load(DEFAULT_POOL_FILE.read_text())
    for model in data["models"]:
        model["sim"]["latency_s"] = latency_s
    path.write_text(yaml.safe_dump(data))
    return path


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_resume_after_sigkill_finishes_without_redoing_items(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pool_file = slow_pool_file(tmp_path / "pool.yaml", 0.05)
    out = tmp_path / "run"
    results = out / "results.jsonl"
    args = ["eval", "--graphs", "colm,single", "--limit", "60", "--out", str(out),
            "--concurrency", "2", "--models", str(pool_file), "--quiet"]
    cmd = [sys.executable, "-m", "colm_graph.cli", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with (tmp_path / "first.err").open("w") as err_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_file, env=env,
                                cwd=tmp_path)
        try:
            deadline = time.monotonic() + 120  # a guard against hanging, not a timing check
            while count_lines(results) < 10 and proc.poll() is None:
                assert time.monotonic() < deadline, "the first run wrote fewer than 10 rows"
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "first.err").read_text()

    before = results.read_bytes()
    prefix = before[: before.rfind(b"\n") + 1]  # complete lines only
    kept = prefix.count(b"\n")
    assert 10 <= kept < 120
    # a write cut off mid-line
    with results.open("ab") as fh:
        fh.write(b'{"id": "torn-row", "graph": "colm", "answer": "4')
    torn = results.read_bytes()

    # without --resume, or with other settings, the folder is refused and left alone
    for extra, needle in [([], "--resume"),
                          (["--resume", "--graphs", "colm"], "graphs"),
                          (["--resume", "--seed", "1"], "seed"),
                          (["--resume", "--limit", "50"], "limit")]:
        rc, _, err = cli(capsys, *args, *extra)
        assert rc == 2, (extra, err)
        assert needle in one_error_line(err)
        assert results.read_bytes() == torn

    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300, check=False)
    assert done.returncode == 0, done.stderr

    final = results.read_bytes()
    assert final.startswith(prefix)  # rows from before the kill are unchanged
    assert b"torn-row" not in final
    assert final.endswith(b"\n")
    rows = [json.loads(line) for line in final.decode().splitlines()]
    assert len(rows) == 120
    ids = [i.id for i in load_dataset("colm_tasks", limit=60)]
    assert set(by_pair(rows)) == {(g, i) for g in ("colm", "single") for i in ids}
    assert all(set(r) == KEYS and r["error"] is None for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert {g: s["n"] for g, s in summary["graphs"].items()} == {"colm": 60, "single": 60}

    # a finished run resumed again has nothing left to do
    rc, _, err = cli(capsys, *args, "--resume")
    assert rc == 0, err
    assert results.read_bytes() == final


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_same_answers_other_seed_other_answers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(name: str, seed: int) -> dict[tuple[str, str], dict[str, Any]]:
        rc, _, err = cli(capsys, "eval", "--graphs", "colm,small_only,large_only",
                         "--limit", "30", "--seed", str(seed), "--concurrency", "8",
                         "--out", str(tmp_path / name), "--quiet")
        assert rc == 0, err
        return by_pair(rows_of(tmp_path / name))

    a, b, c = run("a", 7), run("b", 7), run("c", 8)
    assert set(a) == set(b) == set(c)
    assert len(a) == 90

    def columns(rows: dict[tuple[str, str], dict[str, Any]]) -> dict[Any, Any]:
        return {k: (r["answer"], r["correct"], r["no_answer"]) for k, r in rows.items()}

    assert columns(a) == columns(b)
    # everything but the measured latency repeats
    assert ({k: {f: v for f, v in r.items() if f != "latency_s"} for k, r in a.items()}
            == {k: {f: v for f, v in r.items() if f != "latency_s"} for k, r in b.items()})
    assert any(a[k]["answer"] != c[k]["answer"] for k in a)


# --- a failing item ---------------------------------------------------------------------------


def test_failing_item_is_recorded_and_the_rest_complete(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    def script(prompt: str) -> str:
        if "BOOM" in prompt:
            raise RuntimeError("boom: the paid endpoint fell over\nsecond line")
        return "Answer: 42"

    def small_script(prompt: str) -> str:
        if "BOOM" in prompt:  # the local fallback fails too: the item fails
            raise RuntimeError("boom: the local model fell over too")
        return "Answer: 41"

    pool, big, _ = fake_pool(script=script, small_script=small_script)
    monkeypatch.setattr(ModelPool, "default", classmethod(lambda cls: pool))
    data = write_dataset(tmp_path / "d.jsonl", [
        ("What is 40 + 2?", "42"), ("What is 6 * 7?", "42"), ("BOOM: what is 84 / 2?", "42"),
        ("What is 50 - 8?", "42"), ("What is 21 * 2?", "42")])
    out = tmp_path / "run"
    rc, stdout, err = cli(capsys, "eval", "--graphs", "single,small_only", "--dataset",
                          str(data), "--out", str(out), "--quiet")
    assert rc == 0, err

    rows = by_pair(rows_of(out))
    assert len(rows) == 10
    failed = rows[("single", "q2")]
    # the paid call failed, its local fallback failed too: the item is recorded as failed
    assert "RuntimeError: boom: the local model fell over too" in failed["error"]
    assert "\n" not in failed["error"]
    assert (failed["answer"], failed["correct"], failed["no_answer"]) == (None, False, False)
    assert failed["clients"] == {}
    assert rows[("small_only", "q2")]["error"] == failed["error"]
    for key, r in rows.items():
        if key[1] != "q2":
            assert r["error"] is None
            assert r["correct"] is (key[0] == "single")  # big says 42, small says 41
    assert len(big.calls) == 4  # the failing call raised before it was recorded

    summary = json.loads((out / "summary.json").read_text())
    single, small = summary["graphs"]["single"], summary["graphs"]["small_only"]
    assert (single["n"], single["errors"], single["correct"]) == (5, 1, 4)
    assert (small["n"], small["errors"], small["correct"]) == (5, 1, 0)
    assert "Errors" in (out / "report.md").read_text()
    assert "single" in stdout


# --- bad command lines --------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "needle"), [
    (["--dataset", "{tmp}/missing.jsonl"], "dataset not found"),
    (["--graphs", "nope"], "nope"),
    (["--sweep", "bad"], "--sweep bad"),
    (["--sweep", "route.threshold="], "--sweep"),
    (["--concurrency", "0"], "--concurrency"),
    (["--concurrency", "many"], "--concurrency"),
    (["--limit", "0"], "--limit"),
    (["--graphs", "colm,colm"], "given twice"),
], ids=["missing-dataset", "unknown-graph", "bad-sweep", "empty-sweep", "concurrency-0",
        "concurrency-word", "limit-0", "duplicate-graph"])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         argv: list[str], needle: str) -> None:
    out = tmp_path / "run"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc, stdout, err = cli(capsys, "eval", "--limit", "2", "--quiet", "--out", str(out), *argv)
    assert rc == 2
    assert needle in one_error_line(err)
    assert stdout == ""
    assert not (out / "results.jsonl").exists()


@pytest.mark.parametrize("below", [False, True], ids=["file", "under-a-file"])
def test_out_that_is_a_file_exits_2_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], below: bool) -> None:
    blocker = tmp_path / "results.txt"
    blocker.write_text("keep me\n")
    out = blocker / "sub" if below else blocker
    rc, stdout, err = cli(capsys, "eval", "--graphs", "small_only", "--limit", "2",
                          "--quiet", "--out", str(out))
    assert rc == 2
    assert f"--out {out}" in one_error_line(err)
    assert stdout == ""
    assert blocker.read_text() == "keep me\n"


def test_rerun_without_resume_is_refused(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ["eval", "--graphs", "small_only", "--limit", "3", "--quiet", "--out", str(out)]
    assert cli(capsys, *args)[0] == 0
    before = (out / "results.jsonl").read_bytes()
    rc, _, err = cli(capsys, *args)
    assert rc == 2
    assert "--resume" in one_error_line(err)
    assert (out / "results.jsonl").read_bytes() == before
