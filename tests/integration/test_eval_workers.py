"""``colm-graph eval --workers N``: the pairs dealt on demand to this process and N - 1
worker processes, one writer.

* two workers write the rows one process writes (the deterministic simulator), samples too;
* a worker killed with SIGKILL: the others finish, one line names it and ``--resume``, the
  file holds whole rows without duplicates, and ``--resume --workers 2`` does each missing
  pair once;
* the parent killed: its workers are gone soon after and wrote nothing, and ``--resume``
  (with another ``--workers``) does each missing pair once;
* one budget over the workers: a cap that affords K worst-case paid calls makes K requests
  at the fake paid endpoint over a killed part and its resume, two workers each, the calls
  in flight at the kill counted at their worst case;
* what cannot be sharded is a one-line error.

The cap with two workers at high concurrency is also run by
``test_eval_budget.py::test_a_cap_that_affords_n_calls_makes_n_calls_at_any_concurrency``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from colm_graph import ModelPool
from colm_graph.cli.main import main
from colm_graph.errors import ConfigError
from colm_graph.evaluation import Item, load_dataset, resolve_graphs, run_eval
from colm_graph.pool import DEFAULT_POOL_FILE
from colm_graph.run.budget import STREAM_FACTOR
from tests.integration.test_eval_budget import (
    KEY,
    KEY_ENV,
    MAX_TOKENS,
    PRICE,
    dataset,
    eval_args,
    max_out,
    pool_file,
    responder,
    worst_in,
)
from tests.support.fakes import ScriptedChatModel
from tests.support.openai_server import FaultServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WORKER = "colm_graph.evaluation.worker"
GUARD_S = 120.0
"""How long a wait may take before the test gives up (a guard against hanging, not a
timing check)."""


def rows_of(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def pairs_once(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    pairs = {(r["graph"], r["id"]): r for r in rows}
    assert len(pairs) == len(rows), "a (graph, id) pair appears twice"
    return pairs


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def wait_for(check: Callable[[], bool], proc: subprocess.Popen[bytes] | None = None,
             what: str = "") -> None:
    deadline = time.monotonic() + GUARD_S
    while not check():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the eval ended (exit {proc.returncode}) before {what}")
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def workers_of(pid: int) -> list[int]:
    """The eval worker processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and WORKER.encode() in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def opened(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open."""
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def slow_pool_file(path: Path, latency_s: float) -> Path:
    data = yaml.safe_load(DEFAULT_POOL_FILE.read_text())
    for model in data["models"]:
        model["sim"]["latency_s"] = latency_s
    path.write_text(yaml.safe_dump(data))
    return path


def start(argv: list[str], cwd: Path, err: Any, env: dict[str, str] | None = None
          ) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "colm_graph.cli", *argv],
                            stdout=subprocess.DEVNULL, stderr=err, cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


# --- the same rows ---------------------------------------------------------------------------


def test_two_workers_write_the_rows_one_process_writes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graphs, limit = "colm,small_only,large_only", 10
    one, two = tmp_path / "one", tmp_path / "two"
    pool = ModelPool.default().with_seed(7)
    run_eval(resolve_graphs(graphs.split(","), pool), load_dataset("colm_tasks", limit=limit),
             pool, one, concurrency=8, seed=7, limit=limit, log_samples=True, progress=None,
             notes=None, workers=1)
    capsys.readouterr()
    rc = main(["eval", "--graphs", graphs, "--limit", str(limit), "--seed", "7",
               "--concurrency", "8", "--workers", "2", "--log-samples", "--out", str(two),
               "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert [json.loads((o / "run.json").read_text())["workers"] for o in (one, two)] == [1, 2]
    a, b = pairs_once(rows_of(one)), pairs_once(rows_of(two))
    assert len(a) == 3 * limit and set(a) == set(b)
    # everything but the measured latency is the same, correctness included
    assert {k: {f: v for f, v in r.items() if f != "latency_s"} for k, r in a.items()} == \
        {k: {f: v for f, v in r.items() if f != "latency_s"} for k, r in b.items()}
    assert 0 < sum(r["correct"] for r in b.values()) < len(b)

    def samples(out: Path) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
        """Each pair's calls (in any order: a step's parallel calls end in any order)."""
        lines = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
        kept = {(s["graph"], s["id"]): sorted((c["model"], c["prompt"], c["response"])
                                              for c in s["calls"]) for s in lines}
        assert len(kept) == len(lines)
        return kept

    sa, sb = samples(one), samples(two)
    assert set(sb) == set(b) and sa == sb
    assert all(len(sb[k]) == r["calls"] for k, r in b.items())
    summary = json.loads((two / "summary.json").read_text())["graphs"]
    assert {g: s["n"] for g, s in summary.items()} == {g: limit for g in graphs.split(",")}


# --- a worker killed --------------------------------------------------------------------------


def eval_argv(tmp_path: Path, out: Path, *extra: str, latency_s: float = 0.1) -> list[str]:
    pool = slow_pool_file(tmp_path / "pool.yaml", latency_s)
    return ["eval", "--graphs", "single,small_only", "--limit", "20", "--out", str(out),
            "--concurrency", "4", "--models", str(pool), "--quiet", *extra]


EXPECTED = {(g, item.id) for g in ("single", "small_only")
            for item in load_dataset("colm_tasks", limit=20)}


@pytest.mark.slow
def test_a_killed_worker_leaves_whole_rows_and_resume_does_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    results = out / "results.jsonl"
    # --workers 2: this process and one worker; calls of 0.5 s, so that the parent alone
    # (2 of the concurrency) cannot finish before the worker runs pairs of its own
    argv = eval_argv(tmp_path, out, "--workers", "2", latency_s=0.5)
    with (tmp_path / "first.err").open("w+") as err:
        proc = start(argv, tmp_path, err)
        try:
            wait_for(lambda: count_lines(results) >= 4 and len(workers_of(proc.pid)) == 1
                     and opened(workers_of(proc.pid)[0], out / "calls.sqlite"),
                     proc, "4 rows and a worker ready")
            (victim,) = workers_of(proc.pid)
            time.sleep(0.25)  # it asks for pairs once its cache is open; they take 0.5 s
            os.kill(victim, signal.SIGKILL)
            code = proc.wait(timeout=GUARD_S)
        finally:
            proc.kill()
            proc.wait()
        err.seek(0)
        stderr = err.read()
    # the parent finished the rest; the eval says which worker died, in one line
    assert code == 1, stderr
    (line,) = stderr.splitlines()
    assert line.startswith("colm-graph: failed: worker "), line
    assert f"(pid {victim}) was killed by SIGKILL" in line and "--resume" in line, line
    before = results.read_bytes()
    assert before.endswith(b"\n")
    rows = pairs_once(rows_of(out))
    assert 20 <= len(rows) < 40
    assert set(rows) < EXPECTED
    assert not (out / "summary.json").exists()  # no report of a part

    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0, capsys.readouterr().err
    final = results.read_bytes()
    assert final.startswith(before)  # the rows written before are kept as they were
    rows = pairs_once(rows_of(out))
    assert set(rows) == EXPECTED
    assert all(r["error"] is None for r in rows.values())
    summary = json.loads((out / "summary.json").read_text())
    assert {g: s["n"] for g, s in summary["graphs"].items()} == {"single": 20, "small_only": 20}


# --- the parent killed ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_parent_takes_its_workers_and_resume_does_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    results = out / "results.jsonl"
    argv = eval_argv(tmp_path, out)
    with (tmp_path / "first.err").open("w") as err:
        proc = start(argv + ["--workers", "2"], tmp_path, err)
        try:
            wait_for(lambda: count_lines(results) >= 4 and len(workers_of(proc.pid)) == 1,
                     proc, "4 rows and a worker (--workers 2: this process and one)")
            workers = workers_of(proc.pid)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=GUARD_S)
        finally:
            proc.kill()
            proc.wait()
    at_kill = results.read_bytes()
    wait_for(lambda: not any(alive(pid) for pid in workers), what="the workers exited")
    assert results.read_bytes() == at_kill  # they wrote no row after the parent died
    kept = at_kill[: at_kill.rfind(b"\n") + 1]
    assert 4 <= kept.count(b"\n") < 40

    capsys.readouterr()  # another --workers than the first part's
    assert main([*argv, "--resume", "--workers", "1"]) == 0, capsys.readouterr().err
    final = results.read_bytes()
    assert final.startswith(kept)
    assert set(pairs_once(rows_of(out))) == EXPECTED


# --- one budget over the workers --------------------------------------------------------------


def journal_holds(out: Path) -> dict[Any, int]:
    """Reservations in ``out``'s paid journal, per part of the eval."""
    holds: dict[Any, int] = {}
    for line in (out / "paid.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if "hold" in entry:
            holds[entry["part"]] = holds.get(entry["part"], 0) + 1
    return holds


def billed_at_worst(body: dict[str, Any]) -> dict[str, Any]:
    """:func:`responder`, with every paid call billed at the worst case reserved for it: the
    prompt's bound and all the output a streamed reply may be read to (while the budget
    left pays for it all, as it does here for every call the cap affords)."""
    answer = responder(body)
    if body["model"] == "big":
        answer["completion_tokens"] = STREAM_FACTOR * max_out(body)
    return answer


def hold_usd(body: dict[str, Any]) -> float:
    return (worst_in(body) + STREAM_FACTOR * MAX_TOKENS) * PRICE / 1e6


@pytest.mark.slow
def test_a_cap_holds_across_workers_a_kill_and_the_resume(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    paid: list[int] = []

    def hang_two(record: dict[str, Any]) -> str | None:
        # the 3rd and 4th paid requests stall on the server: in flight at the kill
        if record["model"] == "big":
            paid.append(1)
            if len(paid) in (3, 4):
                return "timeout"
        return None

    srv = FaultServer(responder=billed_at_worst, timeout_sleep_s=60)
    with srv:
        pool = ModelPool.from_yaml(pool_file(tmp_path / "pool.yaml", srv.base_url))
        run_eval(resolve_graphs(["large_only"], pool),
                 load_dataset(str(dataset(tmp_path / "one.jsonl", 1))), pool,
                 tmp_path / "probe", cache=None, progress=None, notes=None)
        (call,) = srv.requests_for("big")
        h = hold_usd(call["body"])  # every call's worst case, and what it costs
        assert call["completion_tokens"] == STREAM_FACTOR * MAX_TOKENS
        k = 10  # the cap affords K worst cases (and half a prompt)
        cap = float(f"{k * h + 0.5 * worst_in(call['body']) * PRICE / 1e6:.9f}")
        skip = len(srv.requests_for("big"))
        paid.clear()
        srv.behaviour_for = hang_two

        out = tmp_path / "run"
        argv = eval_args(tmp_path, srv, dataset(tmp_path / "d.jsonl", 24), out, "large_only",
                         "--concurrency", "4", "--workers", "2", "--max-paid-usd", repr(cap))
        with (tmp_path / "first.err").open("w") as err:
            proc = start(argv, tmp_path, err, {KEY_ENV: KEY})
            try:
                wait_for(lambda: len(srv.requests_for("big")) - skip >= 4, proc,
                         "four paid requests")
                workers = workers_of(proc.pid)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=GUARD_S)
            finally:
                proc.kill()
                proc.wait()
        assert len(workers) == 1  # --workers 2: the parent runs pairs too
        wait_for(lambda: not any(alive(pid) for pid in workers), what="the workers exited")
        first = len(srv.requests_for("big")) - skip
        (held,) = journal_holds(out).values()  # what the killed part reserved
        # a reservation is journaled before its request is sent: a worker killed in between
        # leaves one more than the server saw, counted all the same
        assert 4 <= first <= held <= k
        srv.behaviour_for = None

        capsys.readouterr()
        rc = main([*argv[: argv.index("--max-paid-usd")], "--resume"])
        assert rc == 0, capsys.readouterr().err
        seen = srv.requests_for("big")[skip:]

    rows = pairs_once(rows_of(out))
    assert len(rows) == 24 and all(r["error"] is None for r in rows.values())
    # every reservation counts at its worst case, the two calls in flight at the kill
    # included: the resumed part (two workers again) made exactly what the cap had left
    assert len(seen) - first == k - held, (first, held, [r["behaviour"] for r in seen])
    assert sorted(journal_holds(out).values()) == sorted(n for n in (held, k - held) if n)
    assert len(seen) <= k
    assert sum(hold_usd(r["body"]) for r in seen) <= cap
    assert sum(r["paid_usd"] for r in rows.values()) <= cap
    assert sum(r["paid_calls"] for r in rows.values()) <= k - 2  # the hung calls left no row
    summary = json.loads((out / "summary.json").read_text())["graphs"]["large_only"]
    assert summary["paid_usd_spent"] <= cap


# --- what cannot be sharded -------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_workers_value_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         value: str) -> None:
    out = tmp_path / "run"
    capsys.readouterr()
    rc = main(["eval", "--limit", "2", "--quiet", "--out", str(out), "--workers", value])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("colm-graph: error: ") and "--workers" in line, line
    assert not out.exists()


def test_what_a_worker_cannot_rebuild_needs_one_process(tmp_path: Path) -> None:
    items = [Item(id=f"q{i}", question=f"What is {i} + 1?", answer=str(i + 1),
                  kind="numeric") for i in range(4)]
    sim = ModelPool.default()
    entries = resolve_graphs(["single"], sim)
    objects = ModelPool().add("big", ScriptedChatModel(reply="Answer: 1"), tier="paid") \
        .add("small", ScriptedChatModel(reply="Answer: 2"), tier="local")
    cases: list[tuple[dict[str, Any], str]] = [
        (dict(pool=sim, build=lambda e: None), "build="),
        (dict(pool=objects), "'big' is a chat model object"),
        (dict(pool=sim, cache=object()), "a cache object"),
    ]
    for kwargs, needle in cases:
        with pytest.raises(ConfigError) as info:
            run_eval(entries, items, kwargs.pop("pool"), tmp_path / "x", workers=2,
                     progress=None, **kwargs)
        message = str(info.value)
        assert "\n" not in message and message.startswith("--workers 2: ") and \
            needle in message, message
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="--workers: expected at least 1, got 0"):
        run_eval(entries, items, sim, tmp_path / "x", workers=0, progress=None)
    # workers=1 (the default) runs them in process as before
    out = run_eval(resolve_graphs(["single"], objects), items, objects, tmp_path / "y",
                   progress=None, concurrency=2)
    assert len(rows_of(out.parent)) == 4


def test_how_many_workers_and_how_the_pairs_are_dealt() -> None:
    import asyncio

    from colm_graph.evaluation.runner import (
        AUTO_PAIRS_PER_WORKER,
        Dealer,
        _worker_count,
    )

    entries = resolve_graphs(["colm", "single", "large_only"], ModelPool.default())
    items = [Item(id=f"q{i}", question="?", answer="1", kind="numeric") for i in range(7)]
    todo = [(e, it) for e in entries for it in items][1:]  # one pair done already
    assert _worker_count(4, 16, todo, None) == 4
    assert _worker_count(4, 3, todo, None) == 3  # each takes at least one of --concurrency
    assert _worker_count(16, 64, todo, None) == 7  # no more processes than items
    assert _worker_count(None, 16, todo, None) == 1  # a small eval stays in process
    many = [(entries[0], Item(id=f"m{i}", question="?", answer="1", kind="numeric"))
            for i in range(4 * AUTO_PAIRS_PER_WORKER)]
    assert _worker_count(None, 64, many, None) == min(os.cpu_count() or 1, 4)
    assert _worker_count(None, 64, many, "a custom build=") == 1

    def key(pair: tuple[Any, Item]) -> tuple[str, str]:
        return pair[0].label, pair[1].id

    async def deal() -> None:
        dealer = Dealer(todo, entries)
        got: dict[int, list[tuple[Any, Item]]] = {0: [], 1: [], 2: []}
        got[0] += await dealer.take(2, 0)
        got[1] += await dealer.take(3, 1)
        got[2] += await dealer.take(2, 2)
        assert [key(p) for p in got[0] + got[1] + got[2]] == [key(p) for p in todo[:7]]
        for pair in got[0] + got[1] + got[2]:
            dealer.ended(pair[0])

        async def consume(who: int) -> None:  # on demand, in the eval's order, each item
            while batch := await dealer.take(2, who):  # to the process that began it
                got[who] += batch
                await asyncio.sleep(0)
                for entry, _ in batch:
                    dealer.ended(entry)

        await asyncio.wait_for(asyncio.gather(*(consume(w) for w in (1, 0, 2))), 10)
        assert sorted(key(p) for b in got.values() for p in b) == sorted(map(key, todo))
        owners = {it.id: {w for w, b in got.items() if any(i is it for _, i in b)}
                  for it in items}
        assert all(len(o) == 1 for o in owners.values()), owners

        # a process gone gives back what was kept for it; what it took is not dealt again
        dealer = Dealer(todo, entries)
        first = await dealer.take(3, 1)  # q1..q3 of the first graph: those items are its
        rest = await dealer.take(100, 0)
        assert not {it.id for _, it in rest} & {it.id for _, it in first}
        dealer.release(1)
        back = await asyncio.wait_for(dealer.take(100, 2), 10)
        assert sorted(map(key, first + rest + back)) == sorted(map(key, todo))

    asyncio.run(deal())
