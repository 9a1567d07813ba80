"""A paid endpoint that goes down and comes back (issue 16), over the real ``ChatOpenAI``
client: "down" is connection refused (nothing listens on its port), "back" is a fake server
started on that port.

* Within one CoLM run: the endpoint answered a probe just before the run, is down when the
  first round's server call is made (the call fails after the client's retries and a local
  model stands in: ``fallback: failed``) and is back soon after; a later round's server call
  is answered by it (the failed model's back-off, :mod:`colm_graph.run.links`, is over by
  then), and the run says its path changed because of the link.
* Over many ``route`` runs with one pool: while the endpoint is down the runs go local
  (``paid_reachable`` is false, its verdict kept for a back-off), and once it is back the
  runs go paid again within the back-off in force (:mod:`colm_graph.pool.links`).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from colm_graph import ModelPool, RunResult, load_graph
from colm_graph.pool.links import PROBE_BACKOFF_S, UP_TTL_S
from colm_graph.run.links import CALL_BACKOFF_S
from tests.support.openai_server import FakeOpenAIServer, message_text
from tests.support.pools import local_entry, paid_entry, write_pool

pytestmark = pytest.mark.integration

QUESTION = "What is 17 * 23 + 48?"
PAID_ANSWER = "999"
LOCAL_LATENCY_S = 0.7
"""Slow enough that two local steps (a stand-in and a revision) outlast the failed model's
first back-off, quick enough that the drafts end within the probe's up verdict."""


def paid_reply(body: dict[str, Any]) -> str:
    return f"The drafts disagree; recompute 17 * 23 first.\nAnswer: {PAID_ANSWER}"


class Endpoint:
    """A paid endpoint on a fixed port that can be down (nothing listening) or up."""

    def __init__(self) -> None:
        self.server: FakeOpenAIServer | None = FakeOpenAIServer(responder=paid_reply)
        self.port = self.server.port
        self.base_url = self.server.base_url
        self.servers: list[FakeOpenAIServer] = [self.server]
        self.up_at: float | None = None
        self._lock = threading.Lock()

    def down(self) -> None:
        assert self.server is not None
        self.server.close()
        self.server = None

    def up(self) -> None:
        with self._lock:
            if self.server is None:
                self.server = FakeOpenAIServer(responder=paid_reply, port=self.port)
                self.servers.append(self.server)
                self.up_at = time.time()

    def requests(self) -> list[dict[str, Any]]:
        return [r for s in self.servers for r in s.chat_requests]

    def close(self) -> None:
        for s in self.servers:
            s.close()


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    monkeypatch.setenv("COLM_TEST_KEY", "sk-test-3c9a57e0d1b84f62")
    ep = Endpoint()
    yield ep
    ep.close()


def make_pool(tmp: Path, local: FakeOpenAIServer, paid_url: str) -> ModelPool:
    pool = ModelPool.from_yaml(write_pool(tmp / "models.yaml", [
        local_entry("a", "m-a", local.base_url), local_entry("b", "m-b", local.base_url),
        paid_entry("big", "m-big", paid_url, key_env="COLM_TEST_KEY", price=(2.5, 10.0))]))
    for name in pool.names():
        pool.entry(name).chat_model  # noqa: B018 - built before the clocks start
    return pool


def test_a_colm_run_uses_the_server_once_its_endpoint_is_back(endpoint: Endpoint,
                                                              tmp_path: Path):
    numbers = itertools.count(400)
    lock = threading.Lock()

    def local_reply(body: dict[str, Any]) -> str:
        if "You are the server model" in message_text(body):  # a stand-in for the server
            endpoint.up()  # the endpoint comes back while the stand-in writes
            return "Check the multiplication.\nAnswer: 439"
        with lock:
            return f"Working it out.\nAnswer: {next(numbers)}"  # clients never agree

    with FakeOpenAIServer(responder=local_reply, latency_s=LOCAL_LATENCY_S) as local:
        pool = make_pool(tmp_path, local, endpoint.base_url)
        app = load_graph("colm", pool=pool, params={"rounds": 3})
        assert pool.links.reachable("big")  # up when probed, just before the run
        endpoint.down()
        out = app.invoke({"question": QUESTION})

    guides = [r for r in out["ledger"] if r["node"] == "guide"]
    assert guides, ("no server call: the first tally came after the probe's up verdict"
                    f" ({UP_TTL_S} s) had run out, {out['degraded_reasons']}")
    assert [r["round"] for r in guides] == [1, 2, 3]
    failed = guides[0]
    assert failed["fallback"] == "failed" and failed["fallback_for"] == "big"
    assert failed["tier"] == "local" and f":{endpoint.port}/v1 failed" in failed["degraded"]
    assert endpoint.up_at is not None and failed["started_at"] <= endpoint.up_at
    later = [r for r in guides[1:] if r["tier"] == "paid"]
    assert later and all(r["model"] == "big" and r.get("fallback") is None for r in later)
    assert later[0]["started_at"] - failed["started_at"] >= CALL_BACKOFF_S
    assert [(g["round"], g["answer"]) for g in out["guidance"]] == \
        [(1, "439")] + [(r["round"], PAID_ANSWER) for r in later]  # the stand-in's, then big's
    # the paid requests: none while down (refused), one a paid record once it was back
    assert len(endpoint.requests()) == len(later)
    assert all(r["status"] == 200 for r in endpoint.requests())
    result = RunResult.from_state(out)
    assert result.link_changed_path is True
    assert result.degraded and any("big" in reason for reason in result.degraded_reasons)


def test_route_runs_go_paid_again_once_the_endpoint_is_back(endpoint: Endpoint,
                                                            tmp_path: Path):
    with FakeOpenAIServer(responder=lambda body: "Answer: 7") as local:
        pool = make_pool(tmp_path, local, endpoint.base_url)
        app = load_graph("route", pool=pool, params={"threshold": 0.0})
        endpoint.down()
        start = time.time()
        comes_back = threading.Timer(2.0, endpoint.up)
        comes_back.start()
        runs: list[tuple[float, dict[str, Any]]] = []
        try:
            paid_runs = 0
            while paid_runs < 3:
                assert time.time() - start < 10, "the runs never went paid again"
                at = time.time()
                out = app.invoke({"question": QUESTION})
                runs.append((at, out))
                paid_runs += out["answer"] == PAID_ANSWER
                time.sleep(0.05)
        finally:
            comes_back.cancel()
    up_at = endpoint.up_at
    assert up_at is not None
    down_runs = [out for at, out in runs if at < up_at]
    assert len(down_runs) >= 5
    for out in down_runs:
        assert [r["node"] for r in out["ledger"]] == ["weak"]
        assert out["degraded_reasons"] == ["paid model unreachable: big"]
        assert RunResult.from_state(out).link_changed_path is True
    first_paid = next(i for i, (_, out) in enumerate(runs) if out["answer"] == PAID_ANSWER)
    # every run after the first paid one is paid too, with no changed path
    for _, out in runs[first_paid:]:
        assert [r["node"] for r in out["ledger"]] == ["strong"]
        assert out["degraded"] is False and not RunResult.from_state(out).link_changed_path
    # seen back within the probe back-off in force when it came back: after failed probes
    # at 0, 0.5 and 1.5 s it is 2 s (0.5 doubling), so well under a few seconds
    back_within = runs[first_paid][0] - up_at
    assert back_within < 4 * PROBE_BACKOFF_S + 0.5, back_within
    assert len(endpoint.requests()) == len(runs) - first_paid
