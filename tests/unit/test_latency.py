"""Expected latency per model (``colm_graph/pool/latency.py``): seeded from the pool entry,
then a running estimate of the calls made."""

from __future__ import annotations

import math
import threading

import pytest

from colm_graph import ModelPool
from colm_graph.pool.latency import ALPHA, CUT_FACTOR, LatencyBook


def test_nothing_is_known_of_a_model_never_seen_or_seeded():
    book = LatencyBook()
    assert book.expected("big") is None and book.observed("big") == 0


def test_the_first_observation_of_an_unseeded_model_is_its_estimate():
    book = LatencyBook()
    book.observe("big", 0.8)
    assert book.expected("big") == 0.8 and book.observed("big") == 1


def test_a_seed_is_the_estimate_until_calls_move_it_by_a_moving_average():
    book = LatencyBook(seeds={"big": 1.0})
    assert book.expected("big") == 1.0 and book.observed("big") == 0
    book.observe("big", 0.5)
    assert book.expected("big") == pytest.approx(ALPHA * 0.5 + (1 - ALPHA) * 1.0)
    book.observe("big", 0.5)
    assert book.expected("big") == pytest.approx(0.5 + (1 - ALPHA) ** 2 * 0.5)
    assert book.observed("big") == 2


def test_a_model_that_slows_down_is_believed_within_a_few_calls():
    book = LatencyBook(seeds={"big": 0.2})
    for _ in range(8):
        book.observe("big", 2.0)
    assert book.expected("big") > 1.8


@pytest.mark.parametrize("bad", [-0.1, -5.0, math.nan])
def test_negative_and_nan_observations_are_ignored(bad):
    book = LatencyBook(seeds={"big": 1.0})
    book.observe("big", bad)
    assert book.expected("big") == 1.0 and book.observed("big") == 0
    book.observe("new", bad)
    assert book.expected("new") is None


def test_models_are_kept_apart():
    book = LatencyBook(seeds={"a": 1.0})
    book.observe("b", 3.0)
    assert (book.expected("a"), book.expected("b")) == (1.0, 3.0)


def test_concurrent_observations_are_all_counted():
    book = LatencyBook()

    def observe() -> None:
        for _ in range(2000):
            book.observe("big", 0.5)

    threads = [threading.Thread(target=observe) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert book.observed("big") == 8000 and book.expected("big") == pytest.approx(0.5)


def test_a_pool_seeds_its_book_from_expected_latency_s():
    pool = ModelPool.from_dict({"models": [
        {"name": "small", "provider": "sim", "tier": "local"},
        {"name": "big", "provider": "sim", "tier": "paid", "price": {"input": 1, "output": 2},
         "expected_latency_s": 1.5}]}, source="latency-test")
    assert pool.latency.expected("big") == 1.5
    assert pool.latency.expected("small") is None


def test_a_call_cut_unfinished_is_expected_to_take_at_least_twice_as_long():
    book = LatencyBook(seeds={"big": 0.2})
    book.cut("big", 0.5)  # stopped at a deadline after 0.5 s
    assert book.expected("big") == CUT_FACTOR * 0.5 and book.observed("big") == 1
    book.cut("big", 0.1)  # a shorter cut does not lower what is known
    assert book.expected("big") == CUT_FACTOR * 0.5
    book.cut("big", math.nan)
    assert book.observed("big") == 2
    book.observe("big", 0.3)  # a finished call moves it as any call does
    assert book.expected("big") == pytest.approx(ALPHA * 0.3 + (1 - ALPHA) * 1.0)
