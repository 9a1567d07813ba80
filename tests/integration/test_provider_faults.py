"""Provider faults on the paid tier, over the real ChatOpenAI client against a fault-injecting
OpenAI-compatible server on 127.0.0.1 (``tests/support/openai_server.py``).

The contract under test (``colm_graph/run/calls.py``):

* a paid call whose fault the ``openai`` client retries away (429, 5xx, timeout, connection
  reset, then ``ok``) is an ordinary paid call: one ledger record, the run is not degraded,
  and the server saw one request per attempt;
* a paid call that still fails after the client's retries (or at once, for faults the client
  does not retry: malformed or truncated JSON, an empty ``choices`` list) is made by a local
  model instead: the run finishes with an answer, ``degraded`` is True with a reason naming
  the fault, and the ledger holds the fallback's record (tier local) and nothing for the
  failed paid call;
* a local model's failure is not retried by us: the run fails (the CLI prints
  ``colm-graph: failed: <one line>``, exits 1 and prints the partial result).

Every answered request carries a distinct ``prompt_tokens`` (a server-wide counter), so each
ledger record can be matched to the one response it was made from.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from colm_graph import ModelPool, ledger_totals, load_graph
from tests.support.openai_server import (
    BEHAVIOURS,
    CLIENT_RETRIES,
    ERROR_STATUS,
    FaultServer,
    group_calls,
    message_text,
)

pytestmark = pytest.mark.integration

SECRET = "sk-colm-faults-8e21c4d07a"
KEY_ENV = "COLM_FAULTS_KEY"
PAID, LOCAL_A, LOCAL_B = "m-big", "m-a", "m-b"  # model ids at the endpoint
POOL_NAME = {PAID: "big", LOCAL_A: "local-a", LOCAL_B: "local-b"}
MODEL_OF = {name: model for model, name in POOL_NAME.items()}
LOCAL_NAMES = {"local-a", "local-b"}
MAX_RETRIES = 2  # colm_graph/pool/providers/openai.py
ATTEMPTS = MAX_RETRIES + 1
PAID_TIMEOUT_S = 1.0
QUESTION = "What is 17 * 23 + 48?"
PAID_ANSWER = "42"
#: Roles bound to the paid model, per graph: a record with one of these roles and tier local
#: is a fallback for a failed paid call.
PAID_ROLES = {"single": {"solver"}, "colm": {"server"},
              "cope": {"large_planner", "large_executor"}}
#: Paid calls of one run when nothing fails (see the responder): single answers once, colm's
#: server guides once (the drafts disagree, the revisions agree), cope escalates to stage 3
#: (plan2, execute3: stage 3 reuses the stage-2 plan).
PAID_CALLS = {"single": 1, "colm": 1, "cope": 2}
GRAPHS = tuple(PAID_CALLS)
#: What a degraded reason must mention for each fault (any one of the words).
REASON_WORDS = {
    "429": ("RateLimit", "429"),
    "500": ("500",), "502": ("502",), "503": ("503",),
    "timeout": ("Timeout", "timed out"),
    "reset": ("Connection",),
    "malformed": ("JSONDecodeError", "JSON", "json"),
    "truncated": ("IncompleteStream", "without its finish"),  # paid calls stream
    "empty": ("IndexError", "choices", "empty"),
}
RETRIED = sorted(CLIENT_RETRIES)
#: Words of a fallback's reason when the client's last attempt failed at the connection
#: (openai's APIConnectionError, APITimeoutError).
LOST_ON_THE_WAY = ("Connection error", "Request timed out")
NOT_RETRIED = ["malformed", "truncated", "empty"]


# -- the server's side ------------------------------------------------------------------------
def _user(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    return message_text({"messages": messages[-1:]})


def _system(body: dict[str, Any]) -> str:
    return message_text({"messages": [m for m in body.get("messages") or []
                                      if m.get("role") == "system"]})


def _last_answer(text: str) -> str | None:
    found = re.findall(r"Answer:\s*(\S+)", text)
    return found[-1] if found else None


class Responder:
    """Answers that make every graph use its paid model and tell who answered:

    * drafts / single answers: the paid model says 42, local-a 41, local-b 40 (so CoLM's
      drafts disagree and the server is asked to guide);
    * guidance: the paid model supports 42, a local model standing in for it supports 41;
    * revisions adopt the guidance's answer (so the revised answers agree);
    * plans never answer; executors: the paid model 42, a local one ``430 + seed`` (so
      COPE's samples disagree and it escalates to stage 3).

    ``prompt_tokens`` of every answer is distinct (1000, 1001, ...)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1000)

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        model, user = body["model"], _user(body)
        paid = model == PAID
        if "<drafts>" in user:
            text = f"The drafts conflict.\nAnswer: {PAID_ANSWER if paid else '41'}"
        elif "<guidance>" in user:
            guidance = user.split("<guidance>", 1)[1].split("</guidance>", 1)[0]
            text = f"Revised with the guidance.\nAnswer: {_last_answer(guidance)}"
        elif "planner" in _system(body):
            text = "1. Multiply first.\n2. Then add."
        elif "<plan>" in user:
            seed = body.get("seed") or 0
            text = f"Working.\nAnswer: {PAID_ANSWER if paid else 430 + seed}"
        else:
            text = f"Answer: {PAID_ANSWER if paid else {LOCAL_A: '41', LOCAL_B: '40'}[model]}"
        return {"content": text, "prompt_tokens": next(self._ids), "completion_tokens": 7}


def serve(schedule: dict[str, list[str]] | None = None, **kwargs: Any) -> FaultServer:
    kwargs.setdefault("timeout_sleep_s", PAID_TIMEOUT_S + 1.5)
    return FaultServer(schedule, responder=Responder(), **kwargs)


def write_pool(path: Path, base_url: str, *, paid_timeout_s: float = PAID_TIMEOUT_S,
               local_timeout_s: float = 10.0) -> Path:
    path.write_text(textwrap.dedent(f"""\
        models:
          - name: local-a
            provider: openai
            model: {LOCAL_A}
            base_url: {base_url}
            tier: local
            domains: [arithmetic]
            timeout_s: {local_timeout_s}
          - name: local-b
            provider: openai
            model: {LOCAL_B}
            base_url: {base_url}
            tier: local
            domains: [algebra]
            timeout_s: {local_timeout_s}
          - name: big
            provider: openai
            model: {PAID}
            base_url: {base_url}
            api_key_env: {KEY_ENV}
            tier: paid
            price: {{input: 5.0, output: 15.0}}
            timeout_s: {paid_timeout_s}
        server: big
        """))
    return path


# -- reading the evidence ------------------------------------------------------------------------
def calls_on_wire(requests: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Requests grouped into calls (the attempts of one call: same model and body, the
    client's retry count going up); in arrival order."""
    return group_calls(requests)


def check_ledger_matches_ok_responses(ledger: list[dict[str, Any]],
                                      requests: list[dict[str, Any]], *, exact: bool) -> None:
    """Each ledger record was made from exactly one ``ok`` response of the same model (its
    distinct ``prompt_tokens``), never from a failed request; with ``exact``, every ``ok``
    response has its record."""
    ok = {(POOL_NAME[r["model"]], r["prompt_tokens"]) for r in requests
          if r["behaviour"] == "ok"}
    failed = {(POOL_NAME[r["model"]], r.get("prompt_tokens")) for r in requests
              if r["behaviour"] != "ok" and r.get("prompt_tokens") is not None}
    keys = [(c["model"], c["input_tokens"]) for c in ledger]
    assert len(set(keys)) == len(keys), f"two records for one response: {keys}"
    assert not set(keys) & failed, f"records for failed requests: {set(keys) & failed}"
    assert set(keys) <= ok, f"records for no ok response: {set(keys) - ok}"
    for c in ledger:
        assert c["tokens_estimated"] is False and c["output_tokens"] == 7
    if exact:
        assert set(keys) == ok, f"ok responses without a record: {ok - set(keys)}"


def fallback_records(graph: str, ledger: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in ledger if c["role"] in PAID_ROLES[graph] and c["tier"] == "local"]


def paid_records(ledger: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in ledger if c["tier"] == "paid"]


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


def run_in_process(graph: str, srv: FaultServer, tmp_path: Path, *, use_async: bool = False,
                   question: str = QUESTION) -> dict[str, Any]:
    pool = ModelPool.from_yaml(write_pool(tmp_path / "models.yaml", srv.base_url))
    app = load_graph(graph, pool=pool)
    if use_async:
        return asyncio.run(asyncio.wait_for(app.ainvoke({"question": question}), 120))
    return app.invoke({"question": question})


# -- the server itself: what the openai client makes of each behaviour ----------------------------
CLIENT_ERRORS = {"429": "RateLimitError", "500": "InternalServerError",
                 "502": "InternalServerError", "503": "InternalServerError",
                 "timeout": "APITimeoutError", "reset": "APIConnectionError",
                 "malformed": "JSONDecodeError", "truncated": "JSONDecodeError"}


@pytest.mark.parametrize("behaviour", sorted(set(BEHAVIOURS) - {"ok", "runaway"}))  # runaway:
# a stream-only fault, see test_spend_guard.py
def test_fault_server_behaviour_as_the_openai_client_sees_it(behaviour: str) -> None:
    import openai

    with FaultServer(after=behaviour, timeout_sleep_s=1.0) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=MAX_RETRIES,
                               timeout=0.3)
        try:
            reply = client.chat.completions.create(
                model="m-x", messages=[{"role": "user", "content": "hi [tag:t1]"}])
        except Exception as exc:
            error: BaseException | None = exc
        else:
            error = None
        client.close()
        requests = srv.chat_requests
    attempts = ATTEMPTS if behaviour in CLIENT_RETRIES else 1
    assert [(r["behaviour"], r["attempt"], r["call"], r["tag"]) for r in requests] == \
        [(behaviour, n, 1, "t1") for n in range(1, attempts + 1)]
    if behaviour == "empty":  # a valid response: what to make of it is up to the caller
        assert error is None and reply.choices == [] and reply.usage is not None
        return
    assert error is not None
    assert CLIENT_ERRORS[behaviour] in [c.__name__ for c in type(error).__mro__]
    if behaviour in ERROR_STATUS:
        assert isinstance(error, openai.APIStatusError)
        assert error.status_code == ERROR_STATUS[behaviour]
        assert requests[0]["status"] == ERROR_STATUS[behaviour]
    if behaviour == "reset":
        assert not isinstance(error, openai.APITimeoutError)
        assert all(r["status"] is None for r in requests)


def test_random_mode_is_a_function_of_seed_and_body() -> None:
    faults = {"*": {"503": 0.3, "malformed": 0.2}}

    def draws(seed: int) -> list[str]:
        with FaultServer(random_faults=faults, seed=seed, retry_after_ms="1") as srv:
            import openai

            client = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=MAX_RETRIES)
            for i in range(40):
                try:
                    client.chat.completions.create(
                        model="m-r", messages=[{"role": "user", "content": f"q{i}"}])
                except Exception:  # the draw is what is compared
                    pass
            client.close()
            return [f"{r['body']['messages'][0]['content']}:{r['attempt']}:{r['behaviour']}"
                    for r in srv.chat_requests]

    first = draws(7)
    assert draws(7) == first
    assert draws(8) != first
    assert {d.rsplit(":", 1)[1] for d in first} == {"ok", "503", "malformed"}


# -- the answers the responder leads to -----------------------------------------------------------
def test_baseline_every_graph_uses_the_paid_model(tmp_path: Path, key: str) -> None:
    """No fault: the shape the fault tests rely on (and that can fail if the graphs change)."""
    for graph in GRAPHS:
        with serve() as srv:
            out = run_in_process(graph, srv, tmp_path)
            requests = srv.chat_requests
        assert out["answer"] == PAID_ANSWER, graph
        assert out["degraded"] is False and out["degraded_reasons"] == []
        assert len(paid_records(out["ledger"])) == PAID_CALLS[graph]
        assert len(srv.requests_for(PAID)) == PAID_CALLS[graph]
        assert fallback_records(graph, out["ledger"]) == []
        check_ledger_matches_ok_responses(out["ledger"], requests, exact=True)
        for r in requests:  # the key goes to the paid endpoint only
            auth = r["headers"].get("authorization", "")
            assert (auth == f"Bearer {SECRET}") == (r["model"] == PAID), r["model"]


# -- (a) transient: the client's retries succeed ---------------------------------------------
@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("fault", RETRIED)
def test_transient_paid_fault_is_retried_by_the_client(tmp_path: Path, key: str, graph: str,
                                                       fault: str) -> None:
    with serve({PAID: [fault, "ok"]}) as srv:
        out = run_in_process(graph, srv, tmp_path)
        requests = srv.chat_requests
        paid_wire = srv.behaviours(PAID)
    # one more request than paid calls: the retry; the schedule was used as written
    assert paid_wire == [fault] + ["ok"] * PAID_CALLS[graph]
    assert out["answer"] == PAID_ANSWER
    assert out["degraded"] is False and out["degraded_reasons"] == []
    # one record per paid call, retries are not calls of ours
    paid = paid_records(out["ledger"])
    assert len(paid) == PAID_CALLS[graph]
    assert fallback_records(graph, out["ledger"]) == []
    # the first paid call's record is the retry's response, not the failed attempt's
    first = calls_on_wire(srv.requests_for(PAID))[0]
    assert [r["behaviour"] for r in first] == [fault, "ok"]
    assert first[1]["attempt"] == 2
    assert sorted(c["input_tokens"] for c in paid)[0] == first[1]["prompt_tokens"]
    check_ledger_matches_ok_responses(out["ledger"], requests, exact=True)
    assert ledger_totals(out["ledger"])["paid_usd"] > 0


# -- (b) persistent: the call falls back to a local model ------------------------------------------
PERSISTENT = [pytest.param(f, marks=pytest.mark.slow) if f == "timeout" else f
              for f in RETRIED + NOT_RETRIED]


def check_fallback_run(graph: str, fault: str, out: dict[str, Any],
                       requests: list[dict[str, Any]]) -> None:
    """Every paid call failed: each was attempted ``ATTEMPTS`` times (once for faults the
    client does not retry), none is in the ledger, each has a local fallback record."""
    attempts = ATTEMPTS if fault in CLIENT_RETRIES else 1
    paid_calls = calls_on_wire([r for r in requests if r["model"] == PAID])
    assert paid_calls, "the paid model was never called"
    for call in paid_calls:
        assert [r["behaviour"] for r in call] == [fault] * attempts
        assert [r["attempt"] for r in call] == list(range(1, attempts + 1))
    ledger = out["ledger"]
    assert out["answer"] is not None
    assert out["degraded"] is True
    reasons = out["degraded_reasons"]
    assert reasons, "degraded without a reason"
    assert any("big" in r and any(w in r for w in REASON_WORDS[fault]) for r in reasons), \
        reasons
    assert not any(SECRET in r for r in reasons)
    totals = ledger_totals(ledger)
    if fault == "truncated":  # a stream cut after it began is billed: charged, then replaced
        charged = paid_records(ledger)
        assert len(charged) == len(paid_calls) and all(r.get("failed") for r in charged)
        assert totals["paid_usd"] > 0
        ledger = [r for r in ledger if not r.get("failed")]
    else:
        assert paid_records(ledger) == []
        assert totals["paid_usd"] == 0
    fallbacks = fallback_records(graph, ledger)
    assert len(fallbacks) == len(paid_calls)
    assert {c["model"] for c in fallbacks} <= LOCAL_NAMES
    check_ledger_matches_ok_responses(ledger, requests, exact=True)


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("fault", PERSISTENT)
def test_persistent_paid_fault_falls_back_to_a_local_model(tmp_path: Path, key: str, graph: str,
                                                           fault: str) -> None:
    with serve(after={PAID: fault}) as srv:
        out = run_in_process(graph, srv, tmp_path)
        requests = srv.chat_requests
    check_fallback_run(graph, fault, out, requests)
    if graph != "cope":  # one paid call: exactly one failed call on the wire
        assert len(calls_on_wire(srv.requests_for(PAID))) == 1
    if graph in ("single", "colm"):  # the stand-in (local-a) leads to 41
        assert out["answer"] == "41"
    else:
        assert out["answer"] != PAID_ANSWER


@pytest.mark.parametrize("fault", ["500", "reset", "malformed"])
def test_fault_then_ok_within_one_call(tmp_path: Path, key: str, fault: str) -> None:
    """Up to MAX_RETRIES faults are absorbed by the client (a third fault is not), and a
    fault the client does not retry is not retried by us either."""
    schedule = {PAID: [fault] * MAX_RETRIES + ["ok"]}
    with serve(schedule) as srv:
        out = run_in_process("single", srv, tmp_path)
        requests = srv.chat_requests
    if fault in CLIENT_RETRIES:
        assert srv.behaviours(PAID) == [fault] * MAX_RETRIES + ["ok"]
        assert out["degraded"] is False and out["answer"] == PAID_ANSWER
        assert len(paid_records(out["ledger"])) == 1
    else:
        assert srv.behaviours(PAID) == [fault]
        assert out["degraded"] is True and out["answer"] == "41"
        assert paid_records(out["ledger"]) == []
    check_ledger_matches_ok_responses(out["ledger"], requests, exact=True)


@pytest.mark.parametrize("graph", ["single", "colm"])
@pytest.mark.parametrize("schedule, degraded", [
    ({PAID: ["503", "ok"]}, False),
    ({PAID: ["reset", "ok"]}, False),
    ({PAID: ["429"] * ATTEMPTS}, True),
    ({PAID: ["truncated", "ok"]}, True),
])
def test_async_runs_behave_alike(tmp_path: Path, key: str, graph: str,
                                 schedule: dict[str, list[str]], degraded: bool) -> None:
    with serve(schedule) as srv:
        out = run_in_process(graph, srv, tmp_path, use_async=True)
        requests = srv.chat_requests
    assert out["degraded"] is degraded
    if degraded:
        check_fallback_run(graph, schedule[PAID][0], out, requests)
    else:
        assert out["answer"] == PAID_ANSWER and len(paid_records(out["ledger"])) == 1
    check_ledger_matches_ok_responses([r for r in out["ledger"] if not r.get("failed")],
                                      requests, exact=True)


# -- a local model's failure fails the run ---------------------------------------------------------
def run_cli(pool_file: Path, graph: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, KEY_ENV: SECRET}
    return subprocess.run(
        [sys.executable, "-m", "colm_graph.cli", "run", QUESTION, "--models", str(pool_file),
         "--graph", graph, "--json", *extra],
        capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("graph, paid_fault", [("colm", None), ("single", "500"),
                                               ("cope", None)])
def test_cli_local_failure_fails_the_run(tmp_path: Path, graph: str,
                                         paid_fault: str | None) -> None:
    """local-a answers 500 for ever. In colm and cope it is called directly; in single it is
    the stand-in for a failing paid model. Either way the run fails, one line on stderr
    (colm needs both its clients here: with one, the failing one would be dropped)."""
    after = {LOCAL_A: "500"} | ({PAID: paid_fault} if paid_fault else {})
    extra = ["--param", "min_participants=2"] if graph == "colm" else []
    with serve(after=after) as srv:
        proc = run_cli(write_pool(tmp_path / "models.yaml", srv.base_url), graph, *extra)
        requests = srv.chat_requests
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("colm-graph: failed: ") and "500" in lines[0]
    assert SECRET not in proc.stderr and SECRET not in proc.stdout
    result = json.loads(proc.stdout)
    assert result["error"] and "\n" not in result["error"]
    assert result["answer"] is None
    # the failing local call was attempted by the client only (no retry, no fallback of ours)
    local_a = calls_on_wire([r for r in requests if r["model"] == LOCAL_A])
    assert [[r["behaviour"] for r in call] for call in local_a] == [["500"] * ATTEMPTS]
    ledger = result["ledger"]["calls"]
    assert all(c["model"] != "local-a" for c in ledger)
    check_ledger_matches_ok_responses(ledger, requests, exact=False)
    if paid_fault:  # the paid call failed first and is not charged
        assert paid_records(ledger) == []
        assert srv.behaviours(PAID) == [paid_fault] * ATTEMPTS


# -- soak -----------------------------------------------------------------------------------------
SOAK_SEED = 20240611
SOAK_PAID_FAULTS = {"429": 0.08, "500": 0.04, "502": 0.03, "503": 0.05, "reset": 0.04,
                    "timeout": 0.02, "malformed": 0.02, "truncated": 0.02, "empty": 0.02}
SOAK_LOCAL_FAULTS = {"503": 0.02, "reset": 0.01, "malformed": 0.006}
SOAK_RUNS = {"single": 300, "colm": 100}
SOAK_RUN_TIMEOUT_S = 30.0
SOAK_CONCURRENCY = 40


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_soak_random_faults(tmp_path: Path, key: str) -> None:
    """Hundreds of runs against random faults (fixed seed): each run ends with an answer or
    a caught one-line failure, none hangs, and each run's ledger holds only calls that
    happened: records only for ``ok`` responses of that run, fallbacks exactly for the paid
    calls that failed, and failures only where a local call failed."""
    faults = {PAID: SOAK_PAID_FAULTS, LOCAL_A: SOAK_LOCAL_FAULTS, LOCAL_B: SOAK_LOCAL_FAULTS}
    runs = [(graph, f"{graph[0]}{i}") for graph, n in SOAK_RUNS.items() for i in range(n)]
    outcomes: dict[str, tuple[str, Any]] = {}

    with serve(random_faults=faults, seed=SOAK_SEED, timeout_sleep_s=PAID_TIMEOUT_S + 0.5) as srv:
        pool = ModelPool.from_yaml(write_pool(tmp_path / "models.yaml", srv.base_url,
                                              local_timeout_s=PAID_TIMEOUT_S))
        apps = {graph: load_graph(graph, pool=pool) for graph in SOAK_RUNS}

        async def one(sem: asyncio.Semaphore, graph: str, tag: str) -> None:
            async with sem:
                question = f"{QUESTION} [tag:{tag}]"
                try:
                    out = await asyncio.wait_for(apps[graph].ainvoke({"question": question}),
                                                 SOAK_RUN_TIMEOUT_S)
                except TimeoutError:
                    outcomes[tag] = ("hung", f"no result within {SOAK_RUN_TIMEOUT_S} s")
                except Exception as exc:  # recorded, then judged below
                    outcomes[tag] = ("failed", _one_line(exc))
                else:
                    outcomes[tag] = ("ok", out)

        async def main() -> None:
            sem = asyncio.Semaphore(SOAK_CONCURRENCY)
            await asyncio.gather(*(one(sem, g, t) for g, t in runs))

        asyncio.run(main())
        requests = srv.chat_requests

    by_tag: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in requests:
        by_tag[r["tag"]].append(r)
    assert None not in by_tag, "a request the test cannot attribute to a run"
    assert len(outcomes) == len(runs)
    hung = {t: o[1] for t, o in outcomes.items() if o[0] == "hung"}
    assert not hung, hung

    def failed_calls(tag: str, models: set[str]) -> list[list[dict[str, Any]]]:
        """Calls whose last attempt was not ``ok`` (the client gave up, or did not retry)."""
        return [call for call in calls_on_wire([r for r in by_tag[tag] if r["model"] in models])
                if call[-1]["behaviour"] != "ok"]

    stats = defaultdict(int)
    problems: list[str] = []
    for graph, tag in runs:
        kind, value = outcomes[tag]
        mine = by_tag[tag]
        stats[f"{graph} {kind}"] += 1
        local_failures = failed_calls(tag, {LOCAL_A, LOCAL_B})
        # no retries of ours: at most ATTEMPTS per call, and only after retried faults
        for call in calls_on_wire(mine):
            seq = [r["behaviour"] for r in call]
            if len(call) > ATTEMPTS or any(b not in CLIENT_RETRIES for b in seq[:-1]):
                problems.append(f"{tag}: attempts of one call: {seq}")
        if kind == "failed":
            if "\n" in value or not value:
                problems.append(f"{tag}: failure message not one line: {value!r}")
            if not local_failures:
                problems.append(f"{tag}: failed ({value}) with no failed local call")
            continue
        out = value
        dropped = {MODEL_OF[f["model"]] for f in out.get("failures", [])}
        for call in local_failures:  # retried by us (a later ok call), or its client dropped
            first = call[0]
            retried = any(r["model"] == first["model"] and r["digest"] == first["digest"]
                          and r["behaviour"] == "ok" and r["started_at"] > first["started_at"]
                          for r in mine)
            if not retried and first["model"] not in dropped:
                problems.append(f"{tag}: a local call failed, was not retried, and no"
                                f" participant was dropped")
        if out.get("answer") is None:
            problems.append(f"{tag}: finished without an answer")
        ledger = out["ledger"]
        try:  # a stream cut after it began is charged at its bounds, from no ok response
            check_ledger_matches_ok_responses([r for r in ledger if not r.get("failed")],
                                              mine, exact=False)
        except AssertionError as exc:
            problems.append(f"{tag}: {exc}")
        paid_failures = failed_calls(tag, {PAID})
        paid_ok = [r for r in mine if r["model"] == PAID and r["behaviour"] == "ok"]
        if out.get("failures"):
            stats[f"{graph} dropped a participant"] += 1
        charged = [r for r in paid_records(ledger) if not r.get("failed")]  # cut streams
        if len(charged) > len(paid_ok):
            problems.append(f"{tag}: {len(charged)} paid records for"
                            f" {len(paid_ok)} ok paid responses")
        if len(fallback_records(graph, ledger)) != len(paid_failures):
            problems.append(f"{tag}: {len(fallback_records(graph, ledger))} fallback records"
                            f" for {len(paid_failures)} failed paid calls")
        if bool(out["degraded"]) != bool(paid_failures or out.get("failures")):
            problems.append(f"{tag}: degraded={out['degraded']} with {len(paid_failures)}"
                            f" failed paid calls ({out['degraded_reasons']})")
        unseen = [c for c in fallback_records(graph, ledger)  # a last attempt lost on the way
                  if any(w in (c.get("degraded") or "") for w in LOST_ON_THE_WAY)]
        for call in paid_failures:  # the client gave up only after all its retries
            seq = [r["behaviour"] for r in call]
            if seq[-1] in CLIENT_RETRIES and len(seq) != ATTEMPTS:
                # under load a retry can fail before the server reads it (a refused or
                # reset connect, a read timeout while the accept loop is starved): the
                # client then ends on a connection error the server has no record of
                if len(seq) < ATTEMPTS and seq[-1] in ERROR_STATUS and unseen:
                    stats["attempt lost before the server read it"] += 1
                    continue
                problems.append(f"{tag}: paid call gave up after {seq}")
        if paid_failures:
            stats[f"{graph} degraded"] += 1
            if not out["degraded_reasons"]:
                problems.append(f"{tag}: degraded without a reason")
    assert not problems, f"{len(problems)} problems ({dict(stats)}):\n" + "\n".join(problems[:30])
    # the soak exercised what it is for (fixed seed: these hold run after run)
    behaviours = {r["behaviour"] for r in requests if r["model"] == PAID}
    assert set(SOAK_PAID_FAULTS) <= behaviours, behaviours
    assert stats["single degraded"] and stats["colm degraded"], dict(stats)
    assert stats["single ok"] + stats["colm ok"] > 0.8 * len(runs), dict(stats)
