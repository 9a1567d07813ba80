"""Durable runs (``colm-graph run --checkpoint FILE``): a run killed with SIGKILL resumes
from its last finished step, and finished model calls are neither requested nor paid for
again. The CLI runs as a real subprocess against an OpenAI-compatible server on 127.0.0.1;
the unit-level tests drive a graph compiled with a real ``SqliteSaver`` in process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from colm_graph import ModelPool, create_colm_graph, ledger_totals, load_graph
from colm_graph.cli.main import main
from colm_graph.errors import ConfigError
from colm_graph.integrations.durable import (
    DURABILITY,
    connect_checkpointer,
    default_thread_id,
    open_checkpointer,
    resume_or_start,
    thread_config,
)
from tests.support import pools
from tests.support.fakes import ScriptedChatModel
from tests.support.openai_server import FakeOpenAIServer, RecordedRequest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PRICE = {"input": 5.0, "output": 15.0}
TOKENS = {"draft": (120, 30), "guide": (1000, 200), "revise": (300, 20), "plan": (200, 40),
          "execute": (150, 25)}
KILL_WAIT_S = 90.0


# -- the fake provider -----------------------------------------------------------------------
def prompt_of(body: dict[str, Any]) -> str:
    parts = []
    for m in body["messages"]:
        c = m["content"]
        parts.append(c if isinstance(c, str) else " ".join(b.get("text", "") for b in c))
    return "\n".join(parts)


def kind_of(body: dict[str, Any]) -> str:
    """What a request is, from its prompt: drafts have no ``<guidance>``, guide requests
    have ``<drafts>``, revisions have ``<guidance>``; COPE plans and executions."""
    text = prompt_of(body)
    if "<drafts>" in text:
        return "guide"
    if "<guidance>" in text:
        return "revise"
    if "<plan>" in text:
        return "execute"
    if "You are the planner" in text:
        return "plan"
    return "draft"


def kinds(requests: list[RecordedRequest]) -> Counter[str]:
    return Counter(kind_of(r["body"]) for r in requests)


def reply(kind: str, content: str, delay_s: float) -> dict[str, Any]:
    time.sleep(delay_s)
    tin, tout = TOKENS[kind]
    return {"content": content, "prompt_tokens": tin, "completion_tokens": tout}


class Provider:
    """The fake provider's answers. While ``hold`` is set, the requests the test kills the
    run during (CoLM's round-1 revisions, COPE's stage-2 executions) are not answered."""

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.hold.set()

    def _held(self) -> float:
        if self.hold.is_set():
            deadline = time.monotonic() + KILL_WAIT_S
            while self.hold.is_set() and time.monotonic() < deadline:
                time.sleep(0.01)
        return 0.05

    def colm(self, body: dict[str, Any]) -> dict[str, Any]:
        """Clients disagree in their drafts and after round 1, and agree after round 2.
        The server takes 0.5 s a call."""
        kind, text, model = kind_of(body), prompt_of(body), body["model"]
        if kind == "guide":
            rnd = re.search(r"This is round (\d+) of", text)
            assert rnd is not None
            return reply(kind, f"GUIDE-R{rnd.group(1)}: recheck the last step.\nAnswer: 42",
                         0.5)
        if kind == "revise":
            rnd = re.search(r"GUIDE-R(\d+)", text.split("<guidance>")[1])
            assert rnd is not None
            answer = "42" if rnd.group(1) == "2" or model == "m-b" else "41"
            delay = self._held() if rnd.group(1) == "1" else 0.05
            return reply(kind, f"Revised after GUIDE-R{rnd.group(1)}.\nAnswer: {answer}",
                         delay)
        return reply(kind, f"Draft.\nAnswer: {'41' if model == 'm-a' else '40'}", 0.05)

    def cope(self, body: dict[str, Any]) -> dict[str, Any]:
        """Stage 1 (a local plan) executions disagree by seed; stage 2 (the paid plan) ones
        agree."""
        kind, text, model = kind_of(body), prompt_of(body), body["model"]
        if kind == "plan":
            who = "PLAN-BIG" if model == "m-big" else "PLAN-LOCAL"
            return reply(kind, f"1. {who}: add carefully.", 0.5 if model == "m-big" else 0.05)
        if kind == "execute":
            if "PLAN-BIG" in text:
                return reply(kind, "Following PLAN-BIG.\nAnswer: 42", self._held())
            return reply(kind, f"Working.\nAnswer: {40 + int(body.get('seed') or 0)}", 0.05)
        raise AssertionError(f"unexpected request: {text[:200]}")


def write_pool(path: Path, base_url: str) -> Path:
    return pools.write_pool(path, [
        pools.local_entry("local-a", "m-a", base_url, domains=["arithmetic"]),
        pools.local_entry("local-b", "m-b", base_url, domains=["algebra"]),
        pools.paid_entry("big", "m-big", base_url, key_env="COLM_TEST_KEY",
                         price=(PRICE["input"], PRICE["output"])),
    ], server="big")


def usd(kind: str) -> float:
    tin, tout = TOKENS[kind]
    return (PRICE["input"] * tin + PRICE["output"] * tout) / 1e6


# -- running the CLI -------------------------------------------------------------------------
def cli(tmp_path: Path, pool_file: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "colm_graph.cli", "run", "What is 17 * 23 + 48?",
            "--models", str(pool_file), "--checkpoint", str(tmp_path / "db.sqlite"), "--json",
            *extra]


def env() -> dict[str, str]:
    return {**os.environ, "COLM_TEST_KEY": "sk-durable-test-0b1d"}


def quiet_disconnects(srv: FakeOpenAIServer) -> None:
    """The killed run's held requests are answered into closed sockets; keep the server's
    threads from printing those broken pipes."""
    httpd = srv._httpd
    original = httpd.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            original(request, client_address)

    httpd.handle_error = handle_error  # type: ignore[method-assign]


def run_until_killed(cmd: list[str], srv: FakeOpenAIServer, provider: Provider, cwd: Path,
                     kill_when: Any) -> tuple[list[RecordedRequest], str]:
    """Start ``cmd`` while ``provider`` holds its answers; SIGKILL it once
    ``kill_when(requests)`` holds, then stop holding. Returns the requests the server got
    from it and its stderr."""
    quiet_disconnects(srv)
    provider.hold.set()
    with open(cwd / "killed.err", "w+b") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env(),
                                cwd=cwd)
        try:
            deadline = time.monotonic() + KILL_WAIT_S
            while not kill_when(srv.chat_requests):
                if proc.poll() is not None:
                    err.seek(0)
                    pytest.fail(f"the run ended (exit {proc.returncode}) before the kill"
                                f" point: {err.read().decode()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail("the kill point was never reached")
                time.sleep(0.01)
            time.sleep(0.2)  # every task of the step has sent its request
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=30)
            provider.hold.clear()
        assert proc.returncode == -signal.SIGKILL
        err.seek(0)
        return srv.chat_requests, err.read().decode()


def call_counts(calls: list[dict[str, Any]], *fields: str) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(c.get(f) for f in fields) for c in calls)


# -- CoLM: killed during round 1's revisions -------------------------------------------------
def test_killed_colm_run_resumes_without_repeating_finished_calls(tmp_path):
    provider = Provider()
    with FakeOpenAIServer(responder=provider.colm) as srv:
        pool_file = write_pool(tmp_path / "models.yaml", srv.base_url)
        cmd = cli(tmp_path, pool_file, "--graph", "colm", "--rounds", "2",
                  "--no-skip-guidance")

        def revising(requests: list[RecordedRequest]) -> bool:
            return kinds(requests)["revise"] > 0

        first, first_err = run_until_killed(cmd, srv, provider, tmp_path, revising)
        assert "resuming" not in first_err
        k1 = kinds(first)
        assert k1 == {"draft": 2, "guide": 1, "revise": 2}, k1
        guide = next(r for r in first if kind_of(r["body"]) == "guide")
        assert guide["status"] == 200 and guide["finished_at"] is not None

        proc = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=120,
                              cwd=tmp_path)
        second = srv.chat_requests[len(first):]
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"resuming run on thread colm-\w+ from node\(s\) revise\n", proc.stderr)
    # the drafts and round 1's guidance were not asked for again; the unfinished
    # revisions were, with the guidance the killed process had received
    k2 = kinds(second)
    assert k2 == {"revise": 4, "guide": 1}, k2
    assert ["This is round 2 of" in prompt_of(r["body"]) for r in second
            if kind_of(r["body"]) == "guide"] == [True]
    r1 = [r for r in second if kind_of(r["body"]) == "revise"
          and "GUIDE-R1" in prompt_of(r["body"]).split("<guidance>")[1]]
    assert sorted(r["body"]["model"] for r in r1) == ["m-a", "m-b"]

    result = json.loads(proc.stdout)
    assert result["answer"] == "42" and result["rounds"] == 2
    assert result["path"] == ["select", "draft", "tally", "guide", "revise", "tally", "guide",
                              "revise", "tally", "finish"]
    calls = result["ledger"]["calls"]
    # every call of the run exactly once: the killed process's finished ones included
    assert call_counts(calls, "node", "model", "round") == Counter({
        ("draft", "local-a", 0): 1, ("draft", "local-b", 0): 1, ("guide", "big", 1): 1,
        ("revise", "local-a", 1): 1, ("revise", "local-b", 1): 1, ("guide", "big", 2): 1,
        ("revise", "local-a", 2): 1, ("revise", "local-b", 2): 1})
    # ... and the totals are what the server answered, over both processes, less the
    # revisions the kill cut off (asked, never answered to the run)
    totals = result["ledger"]["totals"]
    answered = Counter(kinds(first)) + Counter(kinds(second))
    answered["revise"] -= k1["revise"]
    assert totals["paid_calls"] == answered["guide"] == 2
    assert totals["local_calls"] == answered["draft"] + answered["revise"] == 6
    assert totals["input_tokens"] == sum(TOKENS[k][0] * n for k, n in answered.items())
    assert totals["output_tokens"] == sum(TOKENS[k][1] * n for k, n in answered.items())
    assert totals["paid_usd"] == pytest.approx(2 * usd("guide"))


# -- COPE: killed after stage 1, while stage 2 executes --------------------------------------
def test_killed_cope_run_resumes_in_stage_two(tmp_path):
    provider = Provider()
    with FakeOpenAIServer(responder=provider.cope) as srv:
        pool_file = write_pool(tmp_path / "models.yaml", srv.base_url)
        cmd = cli(tmp_path, pool_file, "--graph", "cope")

        def executing_stage_two(requests: list[RecordedRequest]) -> bool:
            return any("PLAN-BIG" in prompt_of(r["body"]) for r in requests)

        first, _ = run_until_killed(cmd, srv, provider, tmp_path, executing_stage_two)
        k1 = kinds(first)
        assert k1 == {"plan": 2, "execute": 6}, k1
        paid_plan = [r for r in first if r["body"]["model"] == "m-big"]
        assert len(paid_plan) == 1 and paid_plan[0]["status"] == 200

        proc = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=120,
                              cwd=tmp_path)
        second = srv.chat_requests[len(first):]
    assert proc.returncode == 0, proc.stderr
    assert "resuming run on thread cope-" in proc.stderr and "execute2" in proc.stderr
    # stage 1 and the paid plan were not asked for again: only stage 2's executions
    assert kinds(second) == {"execute": 3}
    assert all("PLAN-BIG" in prompt_of(r["body"]) for r in second)
    assert sorted(r["body"].get("seed") for r in second) == [0, 1, 2]
    assert all(r["body"]["model"] != "m-big" for r in second)

    result = json.loads(proc.stdout)
    assert result["answer"] == "42" and result["stage"] == 2
    calls = result["ledger"]["calls"]
    assert call_counts(calls, "node", "stage") == Counter({
        ("plan1", 1): 1, ("execute1", 1): 3, ("plan2", 2): 1, ("execute2", 2): 3})
    totals = result["ledger"]["totals"]
    assert totals["paid_calls"] == 1
    assert totals["paid_usd"] == pytest.approx(usd("plan"))
    assert totals["local_calls"] == 7


# -- bad checkpoint files --------------------------------------------------------------------
@pytest.mark.parametrize("what", ["directory", "text file", "foreign database", "empty name"])
def test_bad_checkpoint_is_a_one_line_user_error(tmp_path, capsys, monkeypatch, what):
    import sqlite3

    monkeypatch.setenv("COLM_TEST_KEY", "sk-durable-test-0b1d")
    if what == "directory":
        target = tmp_path / "dir.sqlite"
        target.mkdir()
    elif what == "text file":
        target = tmp_path / "notes.txt"
        target.write_text("these are not checkpoints\n")
    elif what == "foreign database":
        target = tmp_path / "other.db"
        conn = sqlite3.connect(target)
        conn.execute("CREATE TABLE checkpoints (name TEXT)")
        conn.commit()
        conn.close()
    else:
        target = Path("")
    before = target.read_bytes() if target.is_file() else None
    with FakeOpenAIServer(responder=Provider().colm) as srv:
        pool_file = write_pool(tmp_path / "models.yaml", srv.base_url)
        code = main(["run", "q", "--models", str(pool_file), "--checkpoint",
                     "" if what == "empty name" else str(target)])
        assert srv.chat_requests == []
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.startswith("colm-graph: error: --checkpoint")
    assert captured.err.count("\n") == 1, captured.err
    if before is not None:  # left as it was
        assert target.read_bytes() == before


def test_thread_needs_checkpoint(capsys):
    assert main(["run", "q", "--thread", "t1"]) == 2
    err = capsys.readouterr().err
    assert err == "colm-graph: error: --thread: needs --checkpoint FILE\n"


def test_missing_checkpoint_file_is_created(tmp_path):
    path = tmp_path / "new.sqlite"
    with open_checkpointer(path) as saver:
        assert saver.conn.execute("SELECT count(*) FROM checkpoints").fetchone() == (0,)
    assert path.read_bytes().startswith(b"SQLite format 3\x00")
    with pytest.raises(ConfigError, match="directory"):
        connect_checkpointer(tmp_path / "nowhere" / "x.sqlite")


# -- in process: a model that fails on a given call ------------------------------------------
class Breaker:
    """Counts model calls over several fakes; raises on call number ``on`` while armed."""

    def __init__(self, on: int) -> None:
        self.on, self.armed, self.count = on, True, 0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self.count += 1
            if self.armed and self.count == self.on:
                raise RuntimeError(f"provider down on call {self.count}")


def colm_pool(breaker: Breaker | None = None, failing_reviser: threading.Event | None = None
              ) -> tuple[ModelPool, dict[str, ScriptedChatModel]]:
    """Clients a and b (drafts disagree), server big. While ``failing_reviser`` is set, b's
    revision fails after 0.3 s."""

    def client(draft: str, name: str) -> ScriptedChatModel:
        def script(prompt: str) -> str:
            if breaker:
                breaker()
            if "<guidance>" in prompt:
                if name == "b" and failing_reviser is not None and failing_reviser.is_set():
                    time.sleep(0.3)  # the other client's revision is done by then
                    raise RuntimeError(f"{name} down")
                return "Revised.\nAnswer: 4"
            return f"Draft.\nAnswer: {draft}"
        return ScriptedChatModel(script=script)

    def server(prompt: str) -> str:
        if breaker:
            breaker()
        return "Check step 2.\nAnswer: 4"

    models = {"a": client("3", "a"), "b": client("5", "b"),
              "big": ScriptedChatModel(script=server)}
    pool = ModelPool()
    pool.add("a", models["a"], tier="local")
    pool.add("b", models["b"], tier="local")
    pool.add("big", models["big"], tier="paid", price={"input": 1.0, "output": 2.0})
    return pool, models


def n_calls(models: dict[str, ScriptedChatModel]) -> dict[str, int]:
    return {name: len(m.calls) for name, m in models.items()}


def test_failed_call_resumes_without_repeating_earlier_calls(tmp_path):
    # one client, two rounds: a's draft, big's guidance, a's revision (call 3: it fails; a
    # local model's failure stops the run, a paid one's would fall back), big, a
    breaker = Breaker(on=3)
    pool, models = colm_pool(breaker)
    inputs = {"question": "What is 2 + 2?", "clients": ["a"]}
    with open_checkpointer(tmp_path / "db.sqlite") as saver:
        graph = create_colm_graph(pool=pool, rounds=2, checkpointer=saver)
        config = thread_config({}, default_thread_id("colm", inputs))
        plan = resume_or_start(graph, inputs, config)
        assert plan.input is not None and not plan.resuming and plan.note is None
        with pytest.raises(RuntimeError, match="call 3"):
            graph.invoke(plan.input, config, durability=DURABILITY)
        assert n_calls(models) == {"a": 1, "b": 0, "big": 1}

        breaker.armed = False  # "fixed"
        plan = resume_or_start(graph, inputs, config)
        assert plan.resuming and plan.resumed_from == ("revise",)
        assert plan.note is not None and "from node(s) revise" in plan.note
        out = graph.invoke(plan.input, config, durability=DURABILITY)
        assert n_calls(models) == {"a": 3, "b": 0, "big": 2}
        assert breaker.count == 6  # 5 calls made, one of them twice (the failed one)
        assert [(c["node"], c["model"], c["round"]) for c in out["ledger"]] == [
            ("draft", "a", 0), ("guide", "big", 1), ("revise", "a", 1), ("guide", "big", 2),
            ("revise", "a", 2)]
        assert out["answer"] == "4" and out["rounds"] == 2
        assert not any(c.get("degraded") for c in out["ledger"])

        # the run finished: the same inputs start a new run, which makes every call again
        plan = resume_or_start(graph, inputs, config)
        assert not plan.resuming and plan.note is None
        out = graph.invoke(plan.input, config, durability=DURABILITY)
        assert n_calls(models) == {"a": 6, "b": 0, "big": 4}
        assert ledger_totals(out["ledger"])["calls"] == 5


def test_half_done_fan_out_keeps_the_finished_tasks(tmp_path):
    """b's revision fails after a's has finished: a's (saved as a pending write of the
    unfinished step) is kept, and only b is asked again."""
    failing = threading.Event()
    failing.set()
    pool, models = colm_pool(failing_reviser=failing)
    inputs = {"question": "What is 2 + 2?"}
    with open_checkpointer(tmp_path / "db.sqlite") as saver:
        # both clients are needed: with one, a failing b would be dropped, not retried
        graph = load_graph("colm", pool=pool, params={"rounds": 1, "min_participants": 2},
                           checkpointer=saver)
        config = thread_config({}, "fan-out")
        with pytest.raises(RuntimeError, match="b down"):
            graph.invoke(resume_or_start(graph, inputs, config).input, config,
                         durability=DURABILITY)
        assert n_calls(models) == {"a": 2, "b": 1, "big": 1}
        failing.clear()
        plan = resume_or_start(graph, inputs, config)
        assert plan.resumed_from == ("revise",)
        out = graph.invoke(plan.input, config, durability=DURABILITY)
    assert n_calls(models) == {"a": 2, "b": 2, "big": 1}
    assert Counter((c["node"], c["model"]) for c in out["ledger"]) == Counter({
        ("draft", "a"): 1, ("draft", "b"): 1, ("guide", "big"): 1, ("revise", "a"): 1,
        ("revise", "b"): 1})


def test_other_inputs_on_an_unfinished_thread_start_a_new_run(tmp_path):
    breaker = Breaker(on=3)
    pool, models = colm_pool(breaker)
    with open_checkpointer(tmp_path / "db.sqlite") as saver:
        graph = create_colm_graph(pool=pool, rounds=1, checkpointer=saver)
        config = thread_config({"tags": ["kept"]}, "shared")
        assert config["tags"] == ["kept"]
        with pytest.raises(RuntimeError):
            graph.invoke(resume_or_start(graph, {"question": "q1", "clients": ["b"]},
                                         config).input, config, durability=DURABILITY)
        breaker.armed = False
        plan = resume_or_start(graph, {"question": "q2"}, config)
        assert not plan.resuming and plan.note is not None and "another question" in plan.note
        # every input field is given, so the unfinished run's fixed clients do not leak
        assert plan.input == {"question": "q2", "images": None, "home": None, "clients": None}
        out = graph.invoke(plan.input, config, durability=DURABILITY)
    assert out["question"] == "q2" and out["selection"]["selector"] != "fixed"
    assert [c["node"] for c in out["ledger"]] == ["draft", "draft", "guide", "revise",
                                                   "revise"]
    assert n_calls(models) == {"a": 2, "b": 3, "big": 2}
    assert all("q2" in m.prompts[-1] for m in models.values())


def test_default_thread_id_is_stable_and_specific():
    base = default_thread_id("colm", {"question": "q"}, {"rounds": 2}, {})
    assert base == default_thread_id("colm", {"question": "q", "home": None}, {"rounds": 2})
    assert re.fullmatch(r"colm-[0-9a-f]{16}", base)
    assert len({base, default_thread_id("colm", {"question": "q2"}, {"rounds": 2}),
                default_thread_id("colm", {"question": "q"}, {"rounds": 1}),
                default_thread_id("cope", {"question": "q"}, {"rounds": 2}),
                default_thread_id("colm", {"question": "q"}, {"rounds": 2},
                                  {"server": "big"})}) == 5
    # the same in another interpreter (no per-process hash seed)
    code = ("from colm_graph.integrations.durable import default_thread_id as t;"
            "print(t('colm', {'question': 'q'}, {'rounds': 2}, {}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == base
