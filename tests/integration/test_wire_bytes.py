"""Bytes on the wire (``colm_graph/pool/wire.py``): every call record's ``request_bytes`` and
``response_bytes`` against what the local fake servers received and wrote, over the real
``ChatOpenAI`` client, sync and async.

The fake records each request's ``content-length`` header (the body the client sent) and
``response_bytes`` (the body it wrote, a stream's events included). A call's records are
compared with its requests on a server of its own, so that nothing else could have sent
them. Also here: the upload cap over HTTP (drafts trimmed to fit, ``nodes/server.py``), since
what it caps is what the paid fake receives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from colm_graph import ModelPool, ledger_totals, load_graph, with_constraints
from colm_graph.run.budget import Allowance
from colm_graph.run.calls import acall_model, body_extra, call_model, request_size
from colm_graph.run.record import prompt_text
from tests.support.openai_server import FakeOpenAIServer, FaultServer, message_text
from tests.support.pools import local_entry, paid_entry, write_pool

pytestmark = pytest.mark.integration

KEY_ENV = "COLM_WIRE_KEY"
MODES = ("sync", "async")
#: Non-ASCII on purpose: characters and bytes differ.
MESSAGES = [SystemMessage("Answer briefly; end with 'Answer: <value>'."),
            HumanMessage("Un café coûte 3 € ; combien coûtent 17 cafés ? — réponse")]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-wire-test-0b7d")


@pytest.fixture
def servers() -> Iterator[tuple[FakeOpenAIServer, FakeOpenAIServer]]:
    """A local endpoint and a paid one, apart."""
    with FakeOpenAIServer(responder=lambda b: "Local: 17 × 3 € = 51 €.\nAnswer: 51") as loc, \
            FakeOpenAIServer(responder=lambda b: "Paid: 51 € in all.\nAnswer: 51") as paid:
        yield loc, paid


def make_pool(tmp_path: Path, local_url: str, paid_url: str) -> ModelPool:
    return ModelPool.from_yaml(write_pool(tmp_path / "models.yaml", [
        local_entry("small", "small", local_url),
        paid_entry("big", "big", paid_url, key_env=KEY_ENV, price=(2.5, 10.0)),
    ], server="big"))


def call(mode: str, pool: ModelPool, name: str, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    how = {"node": "ask", "role": "solver", "round_": 0, **kwargs}
    if mode == "sync":
        reply, record = call_model(pool, name, MESSAGES, **how)
    else:
        reply, record = asyncio.run(acall_model(pool, name, MESSAGES, **how))
    return reply, dict(record)


def sent(requests: list[dict[str, Any]]) -> int:
    """Request body bytes the fake read (each request's ``content-length``)."""
    return sum(int(r["headers"]["content-length"]) for r in requests)


def written(requests: list[dict[str, Any]]) -> int:
    return sum(int(r["response_bytes"]) for r in requests)


@pytest.mark.parametrize("mode", MODES)
def test_a_local_call_counts_the_bodies_the_fake_received_and_wrote(tmp_path, servers, mode):
    loc, paid = servers
    _, record = call(mode, make_pool(tmp_path, loc.base_url, paid.base_url), "small")
    [request] = loc.chat_requests
    assert not request["body"].get("stream")  # local calls are not streamed
    assert record["tier"] == "local" and "bytes_estimated" not in record
    assert record["request_bytes"] == sent([request]) > 0
    assert record["response_bytes"] == written([request]) > 0
    assert paid.chat_requests == []


@pytest.mark.parametrize("mode", MODES)
def test_a_paid_streamed_call_counts_every_event_the_fake_wrote(tmp_path, servers, mode):
    loc, paid = servers
    reply, record = call(mode, make_pool(tmp_path, loc.base_url, paid.base_url), "big")
    [request] = paid.chat_requests
    assert request["body"]["stream"] is True and reply.content.endswith("Answer: 51")
    assert record["tier"] == "paid" and "fallback" not in record
    assert record["request_bytes"] == sent([request])
    assert record["response_bytes"] == written([request])
    # a stream is many events: far more bytes than the reply's text
    assert record["response_bytes"] > 3 * len(reply.content.encode("utf-8"))
    assert loc.chat_requests == []


@pytest.mark.parametrize("mode", MODES)
def test_a_paid_call_retried_by_the_client_counts_both_attempts(tmp_path, mode):
    with FakeOpenAIServer() as loc, FaultServer({"big": ["503", "ok"]}) as paid:
        _, record = call(mode, make_pool(tmp_path, loc.base_url, paid.base_url), "big")
        requests = paid.chat_requests
    assert [r["behaviour"] for r in requests] == ["503", "ok"]
    assert record["tier"] == "paid" and "fallback" not in record
    assert record["request_bytes"] == sent(requests) == 2 * sent(requests[:1])
    # the SDK closes the 503's body unread: it counts at its Content-Length
    assert record["response_bytes"] == written(requests)
    assert written(requests[:1]) > 0


@pytest.mark.parametrize("mode", MODES)
def test_a_paid_call_that_fails_every_retry_leaves_its_bytes_to_its_stand_in(tmp_path, mode):
    with FakeOpenAIServer() as loc, FaultServer({"big": ["503"] * 3}) as paid:
        _, record = call(mode, make_pool(tmp_path, loc.base_url, paid.base_url), "big")
        paid_requests, [local_request] = paid.chat_requests, loc.chat_requests
    assert len(paid_requests) == 3  # one try and the client's two retries
    assert record["tier"] == "local" and record["fallback"] == "failed"
    assert record["lost_request_bytes"] == sent(paid_requests)
    assert record["lost_response_bytes"] == written(paid_requests) > 0  # three error bodies
    assert record["request_bytes"] == sent([local_request])
    assert record["response_bytes"] == written([local_request])
    totals = ledger_totals([record])
    assert totals["paid_request_bytes"] == sent(paid_requests)
    assert totals["paid_response_bytes"] == written(paid_requests)
    assert totals["local_request_bytes"] == sent([local_request])


def colm_responder(body: dict[str, Any]) -> str:
    """Drafts that disagree (a long working, then the answer line), a server that settles
    it, revisions that agree."""
    text = message_text(body)
    if "<drafts>" in text:
        return "The drafts differ in the last step; 480 + 60 = 540.\nAnswer: 540"
    if "<guidance>" in text:
        return "Revised after the guidance.\nAnswer: 540"
    answer = {"small-a": "540", "small-b": "550", "small-c": "540"}[body["model"]]
    steps = "".join(f"Step {i}: 32 × 15 is worked digit by digit, carry {i % 7}.\n"
                    for i in range(40))
    return f"{steps}So the total is {answer}.\nAnswer: {answer}"


def colm_pool(tmp_path: Path, local_url: str, paid_url: str, clients: int = 2) -> ModelPool:
    names = ["small-a", "small-b", "small-c"][:clients]
    return ModelPool.from_yaml(write_pool(tmp_path / "colm.yaml", [
        *(local_entry(n, n, local_url) for n in names),
        paid_entry("big", "big", paid_url, key_env=KEY_ENV, price=(2.5, 10.0)),
    ], server="big"))


def run(mode: str, app: Any, question: str, config: Any = None) -> dict[str, Any]:
    inputs = {"question": question}
    return app.invoke(inputs, config) if mode == "sync" else \
        asyncio.run(app.ainvoke(inputs, config))


@pytest.mark.parametrize("mode", MODES)
def test_a_runs_totals_by_tier_are_what_each_tiers_fake_received(tmp_path, mode):
    with FakeOpenAIServer(responder=colm_responder) as loc, \
            FakeOpenAIServer(responder=colm_responder) as paid:
        app = load_graph("colm", pool=colm_pool(tmp_path, loc.base_url, paid.base_url))
        out = run(mode, app, "Compute 32 times 15, plus 60.")
        local_requests, paid_requests = loc.chat_requests, paid.chat_requests
    ledger = out["ledger"]
    assert len(paid_requests) == 1 and len(local_requests) == 4  # 2 drafts, 2 revisions
    totals = ledger_totals(ledger)
    assert totals["local_request_bytes"] == sent(local_requests)
    assert totals["local_response_bytes"] == written(local_requests)
    assert totals["paid_request_bytes"] == sent(paid_requests)
    assert totals["paid_response_bytes"] == written(paid_requests)
    # call by call (concurrent drafts: compared as multisets)
    for tier, requests in (("local", local_requests), ("paid", paid_requests)):
        mine = [r for r in ledger if r["tier"] == tier]
        assert sorted(r["request_bytes"] for r in mine) == \
            sorted(int(q["headers"]["content-length"]) for q in requests)
        assert sorted(r["response_bytes"] for r in mine) == \
            sorted(q["response_bytes"] for q in requests)


def test_an_in_process_model_gets_the_utf8_sizes_of_its_prompt_and_reply():
    pool = ModelPool.from_dict({"models": [
        {"name": "sim-a", "provider": "sim", "tier": "local", "sim": {"seed": 3}}]},
        source="wire-test")
    reply, record = call("sync", pool, "sim-a")
    prompt = prompt_text(MESSAGES)
    assert record["bytes_estimated"] is True
    assert record["request_bytes"] == len(prompt.encode("utf-8")) > len(prompt)
    assert record["response_bytes"] == len(reply.content.encode("utf-8"))


# -- the upload cap, over HTTP --------------------------------------------------------------
def full_guide_bytes(tmp_path: Path, clients: int) -> int:
    """What the server's request weighs with nothing trimmed (a run without a cap)."""
    with FakeOpenAIServer(responder=colm_responder) as loc, \
            FakeOpenAIServer(responder=colm_responder) as paid:
        app = load_graph("colm", pool=colm_pool(tmp_path, loc.base_url, paid.base_url, clients),
                         params={"top_k": clients})
        run("sync", app, "Compute 32 times 15, plus 60.")
        [request] = paid.chat_requests
    return sent([request])


@pytest.mark.parametrize("mode", MODES)
def test_drafts_are_trimmed_so_that_the_servers_request_fits_the_upload_cap(tmp_path, mode):
    full = full_guide_bytes(tmp_path, clients=2)
    cap = full * 3 // 5
    with FakeOpenAIServer(responder=colm_responder) as loc, \
            FakeOpenAIServer(responder=colm_responder) as paid:
        app = load_graph("colm", pool=colm_pool(tmp_path, loc.base_url, paid.base_url))
        out = run(mode, app, "Compute 32 times 15, plus 60.",
                  with_constraints(max_upload_bytes=cap))
        [request] = paid.chat_requests
    assert out["degraded"] is False and out["answer"] == "540"
    assert sent([request]) <= cap < full
    [guide] = [r for r in out["ledger"] if r["tier"] == "paid"]
    assert guide["request_bytes"] == sent([request])
    assert "small-a" in guide["upload_trimmed"] and "small-b" in guide["upload_trimmed"]
    prompt = message_text(request["body"])
    drafts = prompt.split("<drafts>", 1)[1].split("</drafts>", 1)[0]
    assert "characters omitted" in drafts and "Step 0:" in drafts
    assert "Answer: 540" in drafts and "Answer: 550" in drafts  # every answer line kept


def test_repeated_answers_are_dropped_last_participant_first_when_cutting_is_not_enough(
        tmp_path):
    full = full_guide_bytes(tmp_path, clients=3)
    with FakeOpenAIServer(responder=colm_responder) as loc, \
            FakeOpenAIServer(responder=colm_responder) as paid:
        app = load_graph("colm", pool=colm_pool(tmp_path, loc.base_url, paid.base_url, 3),
                         params={"top_k": 3})

        def server_called(cap: int) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
            paid.requests.clear()
            out = run("sync", app, "Compute 32 times 15, plus 60.",
                      with_constraints(max_upload_bytes=cap))
            return (out, paid.chat_requests) if paid.chat_requests else None

        # the smallest cap the server's request can be made to fit: only with every draft
        # at its answer line and the repeated answers left out
        low, high = 300, full
        assert server_called(low) is None and server_called(high) is not None
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if server_called(mid) else (mid, high)
        found = server_called(high)
    assert found is not None
    out, [request] = found
    [guide] = [r for r in out["ledger"] if r["tier"] == "paid"]
    assert sent([request]) <= high
    assert "small-c" in guide["upload_trimmed"] and "left out" in guide["upload_trimmed"]
    drafts = message_text(request["body"]).split("<drafts>", 1)[1]
    assert 'client="small-c"' not in drafts  # small-c repeated small-a's 540
    assert 'client="small-a"' in drafts and 'client="small-b"' in drafts
    assert "Answer: 540" in drafts and "Answer: 550" in drafts


def test_a_cap_too_small_for_any_trim_sends_nothing_to_the_paid_model(tmp_path):
    with FakeOpenAIServer(responder=colm_responder) as loc, \
            FakeOpenAIServer(responder=colm_responder) as paid:
        app = load_graph("colm", pool=colm_pool(tmp_path, loc.base_url, paid.base_url))
        out = run("sync", app, "Compute 32 times 15, plus 60.",
                  with_constraints(max_upload_bytes=300))
        assert paid.chat_requests == []
    assert out["degraded"] is True and out["answer"] is not None
    stand_ins = [r for r in out["ledger"] if r.get("fallback_for") == "big"]
    assert stand_ins and all(r["fallback"] == "upload" for r in stand_ins)
    assert not any("upload_trimmed" in r for r in out["ledger"])


def test_the_aggregators_answers_are_trimmed_the_same_way(tmp_path):
    """Mixture-of-Agents: the proposers' answers entering the paid aggregator's prompt."""
    def responder(body: dict[str, Any]) -> str:
        if body["model"] == "big":
            return "Weighing both: 540.\nAnswer: 540"
        return colm_responder({**body, "messages": body["messages"][:1]})  # a long draft

    def aggregate_request(cap: int | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        with FakeOpenAIServer(responder=responder) as loc, \
                FakeOpenAIServer(responder=responder) as paid:
            app = load_graph("moa", pool=colm_pool(tmp_path, loc.base_url, paid.base_url),
                             params={"refine_layers": 0})
            config = None if cap is None else with_constraints(max_upload_bytes=cap)
            return run("sync", app, "Compute 32 times 15, plus 60.", config), \
                paid.chat_requests

    _, [whole] = aggregate_request(None)
    cap = sent([whole]) // 2
    out, [request] = aggregate_request(cap)
    assert sent([request]) <= cap and out["degraded"] is False
    [record] = [r for r in out["ledger"] if r["tier"] == "paid"]
    assert record["node"] == "aggregate" and "cut to" in record["upload_trimmed"]
    answers = message_text(request["body"]).split("<answers>", 1)[1]
    assert "characters omitted" in answers
    assert "Answer: 540" in answers and "Answer: 550" in answers


def test_the_size_a_call_is_refused_by_is_never_below_what_the_client_sends(tmp_path, servers):
    """``request_size`` (what the cap is checked against) bounds the real body, or the cap
    could be passed without a refusal."""
    loc, paid = servers
    pool = make_pool(tmp_path, loc.base_url, paid.base_url)
    long = [MESSAGES[0], HumanMessage(MESSAGES[1].content + " é" * 3000 + ' "quoted"\n' * 50)]
    for messages in (MESSAGES, long):
        paid.requests.clear()
        call_model(pool, "big", messages, node="ask", role="solver", round_=0)
        [request] = paid.chat_requests
        assert sent([request]) <= request_size(messages)


def test_a_json_format_entrys_schema_is_counted_in_the_size_a_call_is_refused_by(tmp_path):
    """``answer_format: json`` sends a JSON schema with the messages (and tools would be sent
    the same way): the size checked against the cap counts it, so the body bounds hold."""
    with FakeOpenAIServer() as loc, FakeOpenAIServer() as paid:
        pool = ModelPool.from_yaml(write_pool(tmp_path / "json.yaml", [
            local_entry("small", "small", loc.base_url),
            paid_entry("big", "big", paid.base_url, key_env=KEY_ENV, price=(2.5, 10.0),
                       answer_format="json"),
        ], server="big"))
        call_model(pool, "big", MESSAGES, node="ask", role="solver", round_=0,
                   schema="answer")
        [request] = paid.chat_requests
        assert "response_format" in request["body"]
        extra = body_extra(pool.entry("big"), "answer", {})
        assert extra > 0
        assert request_size(MESSAGES) < sent([request]) <= request_size(MESSAGES, extra)
        # a cap between the two: the call is refused rather than sent past the cap
        cap = request_size(MESSAGES) + (sent([request]) - request_size(MESSAGES)) // 2
        paid.requests.clear()
        _, record = call_model(pool, "big", MESSAGES, node="ask", role="solver", round_=0,
                               schema="answer", allowance=Allowance(upload=cap))
        assert paid.chat_requests == [] and record["fallback"] == "upload"


def test_a_chat_openai_added_as_an_object_counts_its_bytes_too(servers):
    """``pool.add(name, ChatOpenAI(...))``: its HTTP clients count from when it is added."""
    from langchain_openai import ChatOpenAI

    loc, _ = servers
    pool = ModelPool().add("obj", ChatOpenAI(model="m", api_key="not-needed",
                                             base_url=loc.base_url))
    _, record = call_model(pool, "obj", MESSAGES, node="ask", role="solver", round_=0)
    [request] = loc.chat_requests
    assert "bytes_estimated" not in record
    assert record["request_bytes"] == sent([request])
    assert record["response_bytes"] == written([request])
