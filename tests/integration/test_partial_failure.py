"""Partial failure (issue 10): in fan-out steps (CoLM drafts and revisions, debate, MoA,
self-consistency and COPE samples) a participant whose local model still fails after its
retries is dropped from the run: the failure is recorded (node, participant, model, endpoint,
round, reason), the run is degraded, later rounds do not ask it again, and the votes and the
aggregation use the others. The run fails, with one line naming the model, its endpoint and
the fault, only when fewer than ``min_participants`` (default 1; a spec parameter and
``--param``) answered. A single transient fault is retried and leaves no trace.

Every model is an OpenAI-compatible endpoint on 127.0.0.1 (``FaultServer``) reached through
the CLI, as a user meets it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from colm_graph import ModelPool, load_graph
from colm_graph.cli.main import main
from tests.support.openai_server import FaultServer, message_text
from tests.support.pools import local_entry, paid_entry, write_pool

pytestmark = pytest.mark.integration

QUESTION = "What is 6 * 7?"
REPLIES = {"m-a": "Answer: 41", "m-b": "Answer: 42", "m-c": "Answer: 43",
           "m-big": "Check the multiplication again. Answer: 42"}
KEY_ENV = "COLM_PARTIAL_KEY"


def responder(body: dict[str, Any]) -> str:
    """Each model sticks to its own answer, so the clients never agree and rounds run."""
    return REPLIES.get(body.get("model", ""), "Answer: 42")


def pool_file(path: Path, base_url: str) -> Path:
    return write_pool(path, [
        local_entry("local-a", "m-a", base_url),
        local_entry("local-b", "m-b", base_url),
        local_entry("local-c", "m-c", base_url),
        paid_entry("big", "m-big", base_url, key_env=KEY_ENV, price=(2.5, 10.0)),
    ])


@pytest.fixture
def broken_c(monkeypatch: pytest.MonkeyPatch):
    """A FaultServer where every request for local-c's model gets a body that is not JSON."""
    monkeypatch.setenv(KEY_ENV, "sk-test-partial")
    with FaultServer(responder=responder, after={"m-c": "malformed", "*": "ok"}) as srv:
        yield srv


def run(srv: FaultServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], graph: str,
        *args: str) -> tuple[int, dict[str, Any], list[str]]:
    pool = pool_file(tmp_path / "pool.yaml", srv.base_url)
    rc = main(["run", QUESTION, "--graph", graph, "--json", "--models", str(pool), *args])
    captured = capsys.readouterr()
    return rc, json.loads(captured.out), captured.err.strip().splitlines()


def prompts_to(srv: FaultServer, model: str) -> int:
    """How many different prompts ``model`` was sent (a call's retries send the same one)."""
    return len({r["digest"] for r in srv.requests_for(model)})


def assert_dropped(out: dict[str, Any], srv: FaultServer, node: str, client: str = "local-c",
                   model: str = "local-c") -> dict[str, Any]:
    assert out["degraded"] is True
    mine = [f for f in out["failures"] if f["client"] == client]
    assert mine, out["failures"]
    failure = mine[0]
    assert failure["node"] == node
    assert failure["model"] == model
    assert failure["endpoint"] == srv.base_url
    assert failure["reason"]
    assert any(client in r and srv.base_url in r for r in out["degraded_reasons"]), \
        out["degraded_reasons"]
    return failure


def assert_fails_naming(rc: int, err: list[str], out: dict[str, Any], srv: FaultServer,
                        model: str = "local-c") -> None:
    assert rc == 1
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith(f"colm-graph: failed: ModelCallError: model {model} at"
                           f" {srv.base_url} failed: "), line
    assert out["error"] in line


# -- CoLM ---------------------------------------------------------------------------------------
def test_colm_goes_on_without_a_client_whose_model_keeps_failing(broken_c, tmp_path, capsys):
    rc, out, err = run(broken_c, tmp_path, capsys, "colm", "--top-k", "3", "--rounds", "2")
    assert rc == 0, err
    assert out["selected"] == ["local-a", "local-b", "local-c"] or \
        set(out["selected"]) == {"local-a", "local-b", "local-c"}
    failure = assert_dropped(out, broken_c, "draft")
    assert failure["round"] == 0
    assert len(out["failures"]) == 1
    assert out["rounds"] == 2
    assert out["answer"] is not None
    # asked once (its retries send the same prompt), never again in the revision rounds
    assert prompts_to(broken_c, "m-c") == 1
    assert len(broken_c.requests_for("m-a")) == len(broken_c.requests_for("m-b")) == 3
    # the server saw the two drafts left, not the dropped client
    guides = broken_c.requests_for("m-big")
    assert len(guides) == 2
    for request in guides:
        text = message_text(request["body"])
        assert 'client="local-a"' in text and 'client="local-b"' in text
        assert "local-c" not in text
    answered = {r["client"] for rd in out["round_detail"] for r in rd["responses"]}
    assert answered == {"local-a", "local-b"}


def test_colm_fails_with_one_line_below_min_participants(broken_c, tmp_path, capsys):
    rc, out, err = run(broken_c, tmp_path, capsys, "colm", "--top-k", "3",
                       "--param", "min_participants=3")
    assert_fails_naming(rc, err, out, broken_c)
    assert "node 'draft': 2 of 3 participants left" in err[0]
    assert "min_participants 3" in err[0]
    # the step failed as a whole (a resumed run would ask again only local-c); its partial
    # result ends before it, and nothing after it ran
    assert out["failures"] == [] and out["path"] == ["select"]
    assert not broken_c.requests_for("m-big")


def test_min_participants_set_by_the_spec_and_overridden_by_param(broken_c, tmp_path, capsys):
    text = (Path(__file__).resolve().parents[2] / "graphs" / "colm.yaml").read_text()
    spec = tmp_path / "strict_colm.yaml"
    spec.write_text(text.replace("  top_k: 2\n", "  top_k: 3\n  min_participants: 3\n"))
    rc, out, err = run(broken_c, tmp_path, capsys, str(spec))
    assert_fails_naming(rc, err, out, broken_c)
    rc, out, err = run(broken_c, tmp_path, capsys, str(spec), "--param", "min_participants=2")
    assert rc == 0, err
    assert_dropped(out, broken_c, "draft")


def test_min_participants_is_checked(broken_c, tmp_path, capsys):
    pool = pool_file(tmp_path / "pool.yaml", broken_c.base_url)
    rc = main(["run", QUESTION, "--graph", "colm", "--models", str(pool),
               "--param", "min_participants=0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err == ["colm-graph: error: --param min_participants: expected an integer from 1"
                   " to 64, got 0"]


def test_a_single_transient_fault_is_retried_and_not_degraded(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(KEY_ENV, "sk-test-partial")
    with FaultServer({"m-c": ["malformed"]}, responder=responder) as srv:
        rc, out, err = run(srv, tmp_path, capsys, "colm", "--top-k", "3", "--rounds", "1")
        assert srv.behaviours("m-c")[:2] == ["malformed", "ok"]
    assert rc == 0, err
    assert out["degraded"] is False
    assert out["failures"] == []
    assert {r["client"] for r in out["round_detail"][0]["responses"]} == \
        {"local-a", "local-b", "local-c"}


# -- debate, MoA, self-consistency, COPE ----------------------------------------------------------
def test_debate_goes_on_without_the_failing_agent(broken_c, tmp_path, capsys):
    rc, out, err = run(broken_c, tmp_path, capsys, "debate", "--role",
                       "agent=local-a,local-b,local-c", "--rounds", "2")
    assert rc == 0, err
    assert_dropped(out, broken_c, "answer")
    assert out["rounds"] == 2
    assert prompts_to(broken_c, "m-c") == 1
    for request in broken_c.requests_for("m-a") + broken_c.requests_for("m-b"):
        assert "Answer: 43" not in message_text(request["body"])  # nothing of the dropped
    assert set(out["answers"]) == {"local-a", "local-b"}


def test_debate_fails_below_min_participants(broken_c, tmp_path, capsys):
    rc, out, err = run(broken_c, tmp_path, capsys, "debate", "--role",
                       "agent=local-a,local-b,local-c", "--param", "min_participants=3")
    assert_fails_naming(rc, err, out, broken_c)


def test_debate_agent_failing_in_a_later_round_is_not_asked_again(monkeypatch, tmp_path,
                                                                   capsys):
    monkeypatch.setenv(KEY_ENV, "sk-test-partial")
    # local-c answers its first call, then fails for good
    with FaultServer({"m-c": ["ok"]}, responder=responder,
                     after={"m-c": "malformed", "*": "ok"}) as srv:
        rc, out, err = run(srv, tmp_path, capsys, "debate", "--role",
                           "agent=local-a,local-b,local-c", "--rounds", "3")
        calls_c = prompts_to(srv, "m-c")
        later = [r for r in srv.requests_for("m-a") if "Answer: 43" in message_text(r["body"])]
    assert rc == 0, err
    failure = assert_dropped(out, srv, "debate")
    assert failure["round"] == 1
    assert calls_c == 2  # its first answer, and the revision that failed
    assert out["rounds"] == 3
    assert len(later) == 1  # only round 1 showed local-a local-c's first answer
    assert set(out["answers"]) == {"local-a", "local-b"}


def test_moa_aggregates_the_proposers_left(broken_c, tmp_path, capsys):
    rc, out, err = run(broken_c, tmp_path, capsys, "moa", "--role",
                       "proposer=local-a,local-b,local-c")
    assert rc == 0, err
    assert_dropped(out, broken_c, "propose")
    assert prompts_to(broken_c, "m-c") == 1
    (aggregation,) = broken_c.requests_for("m-big")
    text = message_text(aggregation["body"])
    assert 'participant="local-a"' in text and 'participant="local-b"' in text
    assert "local-c" not in text


def test_moa_fails_below_min_participants(broken_c, tmp_path, capsys):
    rc, out, err = run(broken_c, tmp_path, capsys, "moa", "--role",
                       "proposer=local-a,local-b,local-c", "--param", "min_participants=3")
    assert_fails_naming(rc, err, out, broken_c)


def _fail_seed(seed: int):
    """A hook that answers every request carrying sample seed ``seed`` with bad JSON."""
    return lambda record: "malformed" if (record["body"] or {}).get("seed") == seed else None


def test_self_consistency_votes_over_the_samples_left(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(KEY_ENV, "sk-test-partial")
    with FaultServer(responder=responder, behaviour_for=_fail_seed(2)) as srv:
        rc, out, err = run(srv, tmp_path, capsys, "self_consistency", "--role",
                           "solver=local-b")
    assert rc == 0, err
    failure = assert_dropped(out, srv, "answer", client="local-b", model="local-b")
    assert failure["sample"] == 2
    assert sorted(out["answers"]) == ["local-b[0]", "local-b[1]", "local-b[3]", "local-b[4]"]
    assert out["answer"] == "42"


def test_self_consistency_whose_solver_always_fails_fails(broken_c, tmp_path, capsys):
    rc, out, err = run(broken_c, tmp_path, capsys, "self_consistency", "--role",
                       "solver=local-c")
    assert_fails_naming(rc, err, out, broken_c)
    assert "node 'answer': 0 of 5 participants left" in err[0]


def test_cope_executes_on_with_the_samples_left(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(KEY_ENV, "sk-test-partial")
    with FaultServer(responder=responder, behaviour_for=_fail_seed(1)) as srv:
        rc, out, err = run(srv, tmp_path, capsys, "cope", "--role", "small_planner=local-a",
                           "--role", "small_executor=local-b")
    assert rc == 0, err
    failure = assert_dropped(out, srv, "execute1", client="local-b", model="local-b")
    assert failure["sample"] == 1 and failure["stage"] == 1
    assert out["answer"] == "42"


def test_a_failing_planner_still_fails_the_run(broken_c, tmp_path, capsys):
    """Non-fan-out nodes (planner, server, aggregator) keep failing the run."""
    rc, out, err = run(broken_c, tmp_path, capsys, "cope", "--role", "small_planner=local-c")
    assert_fails_naming(rc, err, out, broken_c)
    assert out["failures"] == []


def test_async_runs_drop_a_failing_participant_too(broken_c, tmp_path):
    pool = ModelPool.from_yaml(pool_file(tmp_path / "pool.yaml", broken_c.base_url))
    graph = load_graph("debate", pool=pool, roles={"agent": ["local-a", "local-b", "local-c"]})
    result = asyncio.run(graph.ainvoke({"question": QUESTION}))
    assert [f["client"] for f in result["failures"]] == ["local-c"]
    assert result["failures"][0]["endpoint"] == broken_c.base_url
    assert result["degraded"] is True
    assert {r["client"] for r in result["responses"]} == {"local-a", "local-b"}


def test_a_run_stopped_below_min_participants_resumes_asking_only_the_failed(broken_c,
                                                                             tmp_path, capsys):
    args = ("--top-k", "3", "--rounds", "1", "--param", "min_participants=3",
            "--checkpoint", str(tmp_path / "run.sqlite"))
    rc, out, err = run(broken_c, tmp_path, capsys, "colm", *args)
    assert_fails_naming(rc, err, out, broken_c)
    asked = {m: len(broken_c.requests_for(m)) for m in ("m-a", "m-b", "m-c")}
    broken_c.after = "ok"  # local-c's endpoint is fixed
    rc, out, err = run(broken_c, tmp_path, capsys, "colm", *args)
    assert rc == 0, err
    assert any("resuming" in line for line in err), err
    # the drafts of local-a and local-b were kept; local-c drafted once more, then all revised
    assert len(broken_c.requests_for("m-a")) == asked["m-a"] + 1
    assert len(broken_c.requests_for("m-b")) == asked["m-b"] + 1
    assert len(broken_c.requests_for("m-c")) == asked["m-c"] + 2
    assert out["failures"] == [] and out["degraded"] is False
