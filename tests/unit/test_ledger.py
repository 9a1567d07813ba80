"""The cost ledger (``colm_graph.core.ledger``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from colm_graph.core.ledger import Usage, call_cost_usd, estimate_tokens, ledger_totals

# --- call_cost_usd -------------------------------------------------------------------


def test_call_cost_per_million_tokens() -> None:
    price = {"input": 2.5, "output": 10.0}
    assert call_cost_usd(1_000_000, 0, price) == pytest.approx(2.5)
    assert call_cost_usd(0, 2_000, price) == pytest.approx(0.02)
    assert call_cost_usd(1_000_000, 2_000, price) == pytest.approx(2.52)
    assert call_cost_usd(500, 250, price) == pytest.approx(500 * 2.5e-6 + 250 * 10e-6)


def test_call_cost_missing_prices_are_free() -> None:
    assert call_cost_usd(1_000, 1_000, {}) == 0.0
    assert call_cost_usd(1_000_000, 1_000_000, {"output": 4}) == pytest.approx(4.0)
    assert call_cost_usd(0, 0, {"input": 2.5, "output": 10.0}) == 0.0


@given(st.integers(0, 10**7), st.integers(0, 10**7), st.floats(0, 100), st.floats(0, 100))
def test_call_cost_is_linear(i: int, o: int, pi: float, po: float) -> None:
    price = {"input": pi, "output": po}
    assert call_cost_usd(i, o, price) == pytest.approx(
        call_cost_usd(i, 0, price) + call_cost_usd(0, o, price))
    assert call_cost_usd(i, o, price) == pytest.approx((i * pi + o * po) / 1e6)


# --- ledger_totals -------------------------------------------------------------------


def _record(tier: str, inp: int, out: int, usd: float, latency: float, **extra: Any
            ) -> dict[str, Any]:
    return {"node": "draft", "role": "client", "model": f"m-{tier}", "tier": tier, "round": 0,
            "input_tokens": inp, "output_tokens": out, "usd": usd, "latency_s": latency,
            "tokens_estimated": False, **extra}


LEDGER = [
    _record("local", 120, 40, 0.0, 0.5),
    _record("paid", 1_000, 300, call_cost_usd(1_000, 300, {"input": 2.5, "output": 10}), 1.25),
    _record("local", 80, 60, 0.0, 0.25, simulated=True),
    _record("paid", 2_000, 100, call_cost_usd(2_000, 100, {"input": 2.5, "output": 10}), 2.0),
    _record("local", 10, 5, 0.001, 0.125),  # a local model with a (tiny) price
]


def test_ledger_totals_are_sums() -> None:
    totals = ledger_totals(LEDGER)
    paid = [r for r in LEDGER if r["tier"] == "paid"]
    local = [r for r in LEDGER if r["tier"] == "local"]
    assert totals["calls"] == 5
    assert totals["paid_calls"] == 2
    assert totals["local_calls"] == 3
    assert totals["input_tokens"] == 120 + 1_000 + 80 + 2_000 + 10
    assert totals["output_tokens"] == 40 + 300 + 60 + 100 + 5
    assert totals["paid_input_tokens"] == 3_000
    assert totals["paid_output_tokens"] == 400
    paid_usd = (3_000 * 2.5 + 400 * 10) / 1e6
    assert totals["paid_usd"] == pytest.approx(paid_usd)
    assert totals["local_usd"] == pytest.approx(0.001)
    assert totals["usd"] == pytest.approx(paid_usd + 0.001)
    assert totals["usd"] == pytest.approx(sum(r["usd"] for r in LEDGER))
    assert totals["paid_usd"] == pytest.approx(sum(r["usd"] for r in paid))
    assert totals["local_usd"] == pytest.approx(sum(r["usd"] for r in local))
    assert totals["latency_s"] == pytest.approx(0.5 + 1.25 + 0.25 + 2.0 + 0.125)
    assert set(totals) == {"calls", "paid_calls", "local_calls", "input_tokens",
                           "output_tokens", "paid_input_tokens", "paid_output_tokens", "usd",
                           "paid_usd", "local_usd", "latency_s", "paid_request_bytes",
                           "paid_response_bytes", "local_request_bytes",
                           "local_response_bytes"}


def test_ledger_totals_split_bytes_by_tier_and_count_a_failed_paid_calls_upload() -> None:
    records = [
        {**LEDGER[0], "tier": "paid", "request_bytes": 700, "response_bytes": 90},
        {**LEDGER[1], "tier": "local", "request_bytes": 300, "response_bytes": 40,
         "lost_request_bytes": 650},  # stood in for a paid call that had sent 650 bytes
        {**LEDGER[2], "tier": "local"},  # a record from before bytes were counted
    ]
    totals = ledger_totals(records)
    assert totals["paid_request_bytes"] == 700 + 650
    assert totals["paid_response_bytes"] == 90
    assert totals["local_request_bytes"] == 300
    assert totals["local_response_bytes"] == 40


def test_ledger_totals_order_and_iterator_independent() -> None:
    assert ledger_totals(iter(LEDGER)) == ledger_totals(LEDGER)
    assert ledger_totals(list(reversed(LEDGER)))["usd"] == pytest.approx(
        ledger_totals(LEDGER)["usd"])


def test_ledger_totals_only_local() -> None:
    local = [r for r in LEDGER if r["tier"] == "local"]
    totals = ledger_totals(local)
    assert totals["paid_calls"] == 0
    assert totals["paid_input_tokens"] == totals["paid_output_tokens"] == 0
    assert totals["paid_usd"] == 0
    assert totals["local_calls"] == totals["calls"] == 3


def test_empty_ledger_is_zero() -> None:
    totals = ledger_totals([])
    assert all(v == 0 for v in totals.values()), totals
    assert totals["calls"] == 0 and totals["usd"] == 0.0


def test_latency_defaults_to_zero() -> None:
    record = _record("paid", 1, 2, 0.5, 0.0)
    del record["latency_s"]
    assert Usage.of([record]) == Usage(1, 1, 2, 0.5, 0.0)


# --- Usage ---------------------------------------------------------------------------

_records = st.lists(st.builds(
    _record,
    tier=st.sampled_from(["local", "paid"]),
    inp=st.integers(0, 10**6),
    out=st.integers(0, 10**6),
    usd=st.floats(0, 50, allow_nan=False),
    latency=st.floats(0, 600, allow_nan=False),
), max_size=12)


@given(_records, _records)
def test_usage_is_additive(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    left = Usage.of(a) + Usage.of(b)
    right = Usage.of(a + b)
    assert (left.calls, left.input_tokens, left.output_tokens) == (
        right.calls, right.input_tokens, right.output_tokens)
    assert left.calls == len(a) + len(b)
    assert left.input_tokens == sum(r["input_tokens"] for r in a + b)
    assert left.usd == pytest.approx(right.usd)
    assert left.latency_s == pytest.approx(right.latency_s)


@given(_records.map(lambda rs: [{**r, "usd": round(r["usd"] * 64) / 64,
                                  "latency_s": round(r["latency_s"] * 64) / 64} for r in rs]),
       _records.map(lambda rs: [{**r, "usd": round(r["usd"] * 64) / 64,
                                  "latency_s": round(r["latency_s"] * 64) / 64} for r in rs]))
def test_usage_is_exactly_additive_on_exact_floats(a: list[dict[str, Any]],
                                                   b: list[dict[str, Any]]) -> None:
    # Multiples of 1/64 add without rounding, so the dataclasses compare equal.
    assert Usage.of(a) + Usage.of(b) == Usage.of(a + b)


@given(_records)
def test_ledger_totals_split_adds_up(records: list[dict[str, Any]]) -> None:
    totals = ledger_totals(records)
    assert totals["calls"] == totals["paid_calls"] + totals["local_calls"] == len(records)
    assert totals["usd"] == pytest.approx(totals["paid_usd"] + totals["local_usd"], abs=1e-9)
    assert totals["input_tokens"] == sum(r["input_tokens"] for r in records)
    assert totals["paid_input_tokens"] == sum(r["input_tokens"] for r in records
                                              if r["tier"] == "paid")


def test_usage_zero_and_as_dict() -> None:
    assert Usage.of([]) == Usage()
    assert Usage() + Usage(1, 2, 3, 0.5, 1.0) == Usage(1, 2, 3, 0.5, 1.0)
    assert Usage(1, 2, 3, 0.5, 1.0, 7, 9).as_dict() == {
        "calls": 1, "input_tokens": 2, "output_tokens": 3, "usd": 0.5, "latency_s": 1.0,
        "request_bytes": 7, "response_bytes": 9}


# --- estimate_tokens -----------------------------------------------------------------


def test_estimate_tokens_empty() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("   \n\t ") == 0


@pytest.mark.parametrize("word", ["a", "cat", "photosynthesis", "42", "!", "x1"])
def test_estimate_tokens_monotone_in_repetitions(word: str) -> None:
    counts = [estimate_tokens(" ".join([word] * n)) for n in range(30)]
    assert counts[0] == 0
    assert all(b > a for a, b in zip(counts, counts[1:], strict=False))
    # each repetition of a word costs the same
    assert counts[10] == 10 * counts[1]


def test_estimate_tokens_long_words_count_more() -> None:
    assert estimate_tokens("a") == 1
    assert estimate_tokens("abcdefghijklmnop") > estimate_tokens("abcd")
    assert estimate_tokens("a, b.") == 4  # two words, two punctuation marks


@given(st.text(), st.text())
def test_estimate_tokens_whitespace_join_adds(a: str, b: str) -> None:
    joined = estimate_tokens(a + " " + b)
    assert joined == estimate_tokens(a) + estimate_tokens(b)
    assert joined >= estimate_tokens(a)


@given(st.text())
def test_estimate_tokens_nonnegative_and_bounded(text: str) -> None:
    n = estimate_tokens(text)
    assert 0 <= n <= len(text)
