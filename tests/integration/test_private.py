"""Private runs over the real ``ChatOpenAI`` client (issue 16): no byte of a private run
reaches a model that may not hold private data, whatever the spec says.

A local fake and a paid fake on separate servers on 127.0.0.1. Every shipped variant run
with ``private=True`` sends the paid fake nothing and still answers; a variant whose path
would have used the paid tier says why it did not (``private run: ...``). A spec that goes
straight to a paid node is stopped where calls are made (its stand-in's ``fallback`` is
``private``). The residency rule: local-tier models in this process or at a loopback or
private address may hold private data, paid ones may not, ``residency`` on an entry decides
for it; the detector makes a question with an e-mail address private.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from colm_graph import ModelPool, bundled_graphs, load_graph, with_constraints
from colm_graph.cli.main import main
from colm_graph.errors import ColmGraphError
from tests.support.constraint_fakes import PAID_ONLY_SPEC, LocalWriter
from tests.support.openai_server import FakeOpenAIServer
from tests.support.pools import local_entry, paid_entry, write_pool

pytestmark = pytest.mark.integration

QUESTION = "What is 17 * 23 + 48?"
PAID_ANSWER = "999"
PUBLIC_URL = "http://203.0.113.5:9/v1"  # TEST-NET-3: never contacted (the guard would raise)
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAA"
       "AUAAXpeqz8AAAAASUVORK5CYII=")
PARAMS: dict[str, dict[str, Any]] = {"route": {"threshold": 0.0}}
"""``route`` at threshold 0 sends every question to the paid model."""


@dataclass
class Fakes:
    local: FakeOpenAIServer
    paid: FakeOpenAIServer
    writer: LocalWriter
    tmp: Path

    def pool_file(self, *, big: dict[str, Any] | None = None,
                  first: dict[str, Any] | None = None, name: str = "models.yaml") -> Path:
        """Local ``a`` and ``b`` at the local fake, the paid ``big`` (``big`` adds fields to
        its entry); ``first``: an entry put before them."""
        entries = [local_entry("a", "m-a", self.local.base_url),
                   local_entry("b", "m-b", self.local.base_url),
                   paid_entry("big", "m-big", self.paid.base_url, key_env="COLM_TEST_KEY",
                              price=(2.5, 10.0), **(big or {}))]
        return write_pool(self.tmp / name, ([first] if first else []) + entries)

    def pool(self, **kwargs: Any) -> ModelPool:
        return ModelPool.from_yaml(self.pool_file(**kwargs))


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    monkeypatch.setenv("COLM_TEST_KEY", "sk-test-b71f0c9e246a8d35")
    writer = LocalWriter()
    with FakeOpenAIServer(responder=writer) as local, \
            FakeOpenAIServer(responder=lambda body: f"Answer: {PAID_ANSWER}") as paid:
        yield Fakes(local, paid, writer, tmp_path)


def question_for(graph: str) -> dict[str, Any]:
    if graph == "colm_vlm":  # vision clients get an image, as in test_openai_variants
        return {"question": "What animal is shown?", "images": [PNG]}
    return {"question": QUESTION}


def test_every_shipped_variant_keeps_a_private_run_off_the_paid_endpoint(fakes: Fakes):
    pool = fakes.pool()
    wanted_paid = []
    for graph in bundled_graphs():
        app = load_graph(graph, pool=pool, params=PARAMS.get(graph))
        fakes.paid.requests.clear()
        open_out = app.invoke(question_for(graph))
        used_paid = bool(fakes.paid.chat_requests)
        fakes.paid.requests.clear()
        out = app.invoke(question_for(graph), with_constraints(private=True))
        assert fakes.paid.requests == [], f"{graph}: a private run reached the paid endpoint"
        assert out["answer"] in fakes.writer.answers, graph
        assert all(r["tier"] == "local" for r in out["ledger"]), graph
        assert out["constraints"]["private"] is True
        if used_paid:
            wanted_paid.append(graph)
            assert out["degraded"] is True, graph
            assert any(reason.startswith("private") for reason in out["degraded_reasons"]), \
                (graph, out["degraded_reasons"])
        else:
            assert open_out["degraded"] is False and "constraints" not in open_out, graph
    # the paid-first variants were tested where it matters: each wanted the paid tier
    assert {"single", "route", "cascade", "colm", "cope", "moa"} <= set(wanted_paid)




@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_spec_straight_to_the_paid_model_is_stopped_where_calls_are_made(
        fakes: Fakes, tmp_path: Path, mode: str):
    spec = tmp_path / "straight.yaml"
    spec.write_text(PAID_ONLY_SPEC, encoding="utf-8")
    app = load_graph(spec, pool=fakes.pool())
    config = with_constraints(private=True)
    if mode == "sync":
        out = app.invoke({"question": QUESTION}, config)
    else:
        out = await app.ainvoke({"question": QUESTION}, config)
    assert fakes.paid.requests == []
    (record,) = out["ledger"]
    assert record["fallback"] == "private" and record["fallback_for"] == "big"
    assert record["model"] == "a" and record["tier"] == "local"
    assert record["degraded"].startswith("private run: model big may not receive its data")
    assert out["answer"] in fakes.writer.answers
    # the same spec, not private: the paid model answers
    out = app.invoke({"question": QUESTION})
    assert out["answer"] == PAID_ANSWER and len(fakes.paid.chat_requests) == 1


@pytest.mark.parametrize(("question", "detect", "private"), [
    ("Mail the result of 17 * 23 + 48 to jo.bloggs@example.org", True, True),
    ("Mail the result of 17 * 23 + 48 to jo.bloggs@example.org", False, False),
    (QUESTION, True, False),
])
def test_the_detector_makes_a_question_with_an_email_address_private(
        fakes: Fakes, question: str, detect: bool, private: bool):
    app = load_graph("single", pool=fakes.pool())
    config = with_constraints(private_detect=True) if detect else {}
    out = app.invoke({"question": question}, config)
    assert len(fakes.paid.chat_requests) == (0 if private else 1)
    assert (out["answer"] == PAID_ANSWER) is not private
    if private:
        assert out["constraints"]["private"] is True
        assert out["degraded_reasons"] == ["private run: big may not receive its data"]


def test_a_callable_detector(fakes: Fakes):
    app = load_graph("single", pool=fakes.pool())
    asked: list[str] = []

    def secret(question: str) -> bool:
        asked.append(question)
        return "ledger" in question

    app.invoke({"question": "Sum the ledger: 17 * 23 + 48"},
               with_constraints(private_detect=secret))
    assert fakes.paid.requests == [] and "Sum the ledger: 17 * 23 + 48" in asked
    app.invoke({"question": QUESTION}, with_constraints(private_detect=secret))
    assert len(fakes.paid.chat_requests) == 1


def test_a_local_model_at_a_public_address_is_not_called(fakes: Fakes):
    """``pub`` is local-tier but answers at a public address: under a private run its call
    goes to ``a`` (loopback) instead; ``pub`` is never contacted (the test's network guard
    would fail the call)."""
    pool = fakes.pool(first=local_entry("pub", "m-pub", PUBLIC_URL))
    app = load_graph("single", pool=pool, roles={"fallback": "pub"})
    out = app.invoke({"question": QUESTION}, with_constraints(private=True))
    assert fakes.paid.requests == []
    assert [r["model"] for r in out["ledger"]] == ["a"]
    (record,) = out["ledger"]
    assert record["fallback"] == "private" and record["fallback_for"] == "pub"
    assert "residency cloud" in record["degraded"]
    assert {r["model"] for r in fakes.local.chat_requests} == {"m-a"}


def test_residency_local_on_a_paid_entry_allows_it(fakes: Fakes):
    pool = fakes.pool(big={"residency": "local"})
    out = load_graph("single", pool=pool).invoke({"question": QUESTION},
                                                 with_constraints(private=True))
    assert len(fakes.paid.chat_requests) == 1
    assert out["answer"] == PAID_ANSWER and out["degraded"] is False


def test_residency_cloud_on_a_loopback_local_entry_forbids_it(fakes: Fakes):
    path = write_pool(fakes.tmp / "cloud.yaml", [
        local_entry("a", "m-a", fakes.local.base_url, residency="cloud"),
        local_entry("b", "m-b", fakes.local.base_url),
        paid_entry("big", "m-big", fakes.paid.base_url, key_env="COLM_TEST_KEY",
                   price=(2.5, 10.0))])
    out = load_graph("single", pool=ModelPool.from_yaml(path)).invoke(
        {"question": QUESTION}, with_constraints(private=True))
    assert fakes.paid.requests == []
    assert {r["model"] for r in fakes.local.chat_requests} == {"m-b"}
    assert [r["model"] for r in out["ledger"]] == ["b"]


def test_a_pool_with_no_local_model_allowed_is_one_line_error(fakes: Fakes, capsys):
    path = write_pool(fakes.tmp / "public.yaml", [
        local_entry("pub", "m-pub", PUBLIC_URL),
        paid_entry("big", "m-big", fakes.paid.base_url, key_env="COLM_TEST_KEY",
                   price=(2.5, 10.0))])
    app = load_graph("single", pool=ModelPool.from_yaml(path))
    with pytest.raises(ColmGraphError) as caught:
        app.invoke({"question": QUESTION}, with_constraints(private=True))
    message = str(caught.value)
    assert "\n" not in message and "no local model that may hold private data" in message
    assert "residency: local" in message
    # the same through the CLI: one line on stderr, no traceback, non-zero exit
    rc = main(["run", QUESTION, "--graph", "single", "--models", str(path),
               "--param", "private=true"])
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err
    assert err.count("\n") == 1 and "no local model that may hold private data" in err
    assert fakes.paid.requests == []


@pytest.mark.parametrize(("tier", "base_url", "residency", "allowed"), [
    ("local", "http://127.0.0.1:8000/v1", None, True),
    ("local", "http://localhost:8000/v1", None, True),
    ("local", "http://[::1]:8000/v1", None, True),
    ("local", "http://10.0.4.7:8000/v1", None, True),
    ("local", "http://172.20.0.3:8000/v1", None, True),
    ("local", "http://192.168.1.20:8000/v1", None, True),
    ("local", "http://[fd12:3456::1]:8000/v1", None, True),
    ("local", PUBLIC_URL, None, False),  # a documentation range is not a private network
    ("local", "http://8.8.8.8/v1", None, False),
    ("local", "https://llm.example.com/v1", None, False),  # a name: not trusted
    ("local", None, None, False),  # OpenAI's own endpoint
    ("local", "http://8.8.8.8/v1", "local", True),
    ("local", "http://127.0.0.1:8000/v1", "cloud", False),
    ("paid", "http://127.0.0.1:8000/v1", None, False),
    ("paid", "http://127.0.0.1:8000/v1", "local", True),
])
def test_the_residency_rule(tier: str, base_url: str | None, residency: str | None,
                            allowed: bool, monkeypatch: pytest.MonkeyPatch):
    from colm_graph.run.constraints import may_hold_private

    monkeypatch.setenv("COLM_TEST_KEY", "sk-test-b71f0c9e246a8d35")
    entry: dict[str, Any] = {"name": "m", "provider": "openai", "model": "m", "tier": tier}
    if base_url is not None:
        entry["base_url"] = base_url
    if tier == "paid":
        entry.update(api_key_env="COLM_TEST_KEY", price={"input": 1, "output": 1})
    if residency is not None:
        entry["residency"] = residency
    assert may_hold_private(ModelPool.from_dict({"models": [entry]}).entry("m")) is allowed


def test_a_run_that_checked_its_question_says_so_whatever_it_found() -> None:
    """``private_detect`` alone: the result's ``constraints`` says whether the question was
    found private (a run that did not check says nothing)."""
    graph = load_graph("single")
    checked = graph.invoke({"question": "What is 2 + 3?"}, with_constraints(private_detect=True))
    found = graph.invoke({"question": "What is 2 + 3? Reply to jo@example.org"},
                         with_constraints(private_detect=True))
    unchecked = graph.invoke({"question": "What is 2 + 3?"})
    assert checked["constraints"] == {"private": False}
    assert found["constraints"] == {"private": True}
    assert "constraints" not in unchecked or not unchecked["constraints"]
