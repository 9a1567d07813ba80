"""Intermittent links: reachability verdicts with a back-off (``colm_graph/pool/links.py``)
and the back-off of a paid model whose call failed, read from the ledger
(``colm_graph/run/links.py``). A fake clock and a scripted probe; no sockets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from colm_graph.pool.links import (
    PROBE_BACKOFF_MAX_S,
    PROBE_BACKOFF_S,
    UP_TTL_S,
    Links,
    backoff,
)
from colm_graph.run.links import CALL_BACKOFF_MAX_S, CALL_BACKOFF_S, still_down


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Probe:
    """Answers from a script of verdicts per name (the last one repeats); counts probes."""

    def __init__(self, **script: Iterable[bool]) -> None:
        self.script = {name: list(v) for name, v in script.items()}
        self.calls: list[str] = []

    def __call__(self, name: str) -> bool:
        self.calls.append(name)
        verdicts = self.script[name]
        return verdicts.pop(0) if len(verdicts) > 1 else verdicts[0]


def links(probe: Probe) -> tuple[Links, Clock]:
    clock = Clock()
    return Links(probe=probe, clock=clock), clock


def test_the_back_off_doubles_up_to_its_cap():
    assert [backoff(0.5, 30.0, n) for n in range(1, 9)] == \
        [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff(0.5, 30.0, 0) == 0.5  # no failure yet: the first wait


def test_a_down_verdict_is_kept_for_its_back_off_which_doubles_per_failed_probe():
    clock = Clock()
    probed_at: list[float] = []

    def probe(name: str) -> bool:
        probed_at.append(clock.now)
        return False

    book = Links(probe=probe, clock=clock)
    while len(probed_at) < 9:  # every 1/8 s, a verdict is asked for
        assert book.reachable("big") is False
        clock.now += 0.125
    waits = [b - a for a, b in zip(probed_at, probed_at[1:], strict=False)]
    assert waits == [PROBE_BACKOFF_S * 2 ** i for i in range(6)] + [PROBE_BACKOFF_MAX_S] * 2


def test_a_probe_that_gets_through_clears_the_down_verdict_at_once():
    probe = Probe(big=[False, False, False, True])
    book, clock = links(probe)
    for wait in (0.0, 0.5, 1.0):  # three failed probes: the next wait would be 2 s
        clock.now += wait
        assert book.reachable("big") is False
    clock.now += 2.0
    assert book.reachable("big") is True
    assert len(probe.calls) == 4
    # and a new failure starts the back-off from its first step again
    probe.script["big"] = [False]
    clock.now += UP_TTL_S
    assert book.reachable("big") is False
    clock.now += PROBE_BACKOFF_S - 0.01
    assert book.reachable("big") is False and len(probe.calls) == 5
    clock.now += 0.01
    book.reachable("big")
    assert len(probe.calls) == 6


def test_an_up_verdict_is_kept_for_one_second_only():
    probe = Probe(big=[True, False])
    book, clock = links(probe)
    assert book.reachable("big") is True
    clock.now += UP_TTL_S - 0.01
    assert book.reachable("big") is True and len(probe.calls) == 1
    clock.now += 0.01
    assert book.reachable("big") is False and len(probe.calls) == 2


def test_verdicts_are_kept_per_name_and_dated_from_the_probes_end():
    clock = Clock()

    def slow_probe(name: str) -> bool:
        clock.now += 0.3  # the probe itself takes time
        return name == "up"

    book = Links(probe=slow_probe, clock=clock)
    assert book.reachable("up") is True and book.reachable("down") is False
    clock.now += PROBE_BACKOFF_S - 0.01  # from the end of the probe of "down"
    before = clock.now
    assert book.reachable("down") is False and clock.now == before  # not probed


# -- run/links.py: a paid model whose call failed ---------------------------------------------
def ok(model: str, at: float) -> dict[str, Any]:
    return {"model": model, "tier": "paid", "started_at": at}


def stand_in(for_: str, at: float, kind: str = "failed") -> dict[str, Any]:
    return {"model": "small", "tier": "local", "started_at": at, "fallback_for": for_,
            "fallback": kind}


def test_a_failed_paid_model_is_skipped_for_its_back_off_from_the_failure():
    records = [stand_in("big", 100.0)]
    assert still_down(records, now=100.0) == ("big",)
    assert still_down(records, now=100.0 + CALL_BACKOFF_S - 0.01) == ("big",)
    assert still_down(records, now=100.0 + CALL_BACKOFF_S) == ()


def test_the_back_off_doubles_with_each_failure_in_a_row_up_to_its_cap():
    records: list[dict[str, Any]] = []
    at = 100.0
    for n in range(1, 10):
        records.append(stand_in("big", at))
        wait = min(CALL_BACKOFF_S * 2 ** (n - 1), CALL_BACKOFF_MAX_S)
        assert still_down(records, now=at + wait - 0.01) == ("big",), n
        assert still_down(records, now=at + wait) == (), n
        at += wait  # tried again once it is over, and it fails again


def test_an_answer_from_the_paid_model_clears_it():
    records = [stand_in("big", 100.0), stand_in("big", 101.0), ok("big", 103.0)]
    assert still_down(records, now=103.5) == ()
    records.append(stand_in("big", 104.0))  # a new failure: the first step again
    assert still_down(records, now=104.0 + CALL_BACKOFF_S - 0.01) == ("big",)
    assert still_down(records, now=104.0 + CALL_BACKOFF_S) == ()


def test_skips_while_down_neither_count_nor_move_the_clock():
    records = [stand_in("big", 100.0), stand_in("big", 100.4, "down"),
               stand_in("big", 100.9, "down")]
    assert still_down(records, now=100.0 + CALL_BACKOFF_S - 0.01) == ("big",)
    assert still_down(records, now=100.0 + CALL_BACKOFF_S) == ()


@pytest.mark.parametrize("kind", ["budget", "deadline", "private", "upload"])
def test_stand_ins_for_other_reasons_are_not_failures(kind):
    assert still_down([stand_in("big", 100.0, kind)], now=100.0) == ()


def test_models_are_kept_apart_and_named_in_order():
    records = [stand_in("zeta", 100.0), stand_in("alpha", 100.0), ok("zeta", 100.2)]
    assert still_down(records, now=100.5) == ("alpha",)
    records.append(stand_in("zeta", 100.6))
    assert still_down(records, now=100.7) == ("alpha", "zeta")
