"""The private-data detector (``colm_graph/run/privacy.py``): what it finds, where, and the
arithmetic it must leave alone."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from colm_graph import find_private
from colm_graph.pool.providers.sim.tasks import bundled_tasks
from colm_graph.run.privacy import Finding, looks_private

ROOT = Path(__file__).resolve().parents[2]

FOUND = [
    # e-mail addresses
    ("Write to jane.doe@example.com about the invoice.", "email", "jane.doe@example.com"),
    ("cc: a+tag@sub.example.co.uk.", "email", "a+tag@sub.example.co.uk"),
    # phones: international, US, national
    ("Call +1 415 555 2671 after six.", "phone", "+1 415 555 2671"),
    ("Call +1-415-555-2671.", "phone", "+1-415-555-2671"),
    ("WhatsApp +14155552671", "phone", "+14155552671"),
    ("London: +44 20 7946 0958", "phone", "+44 20 7946 0958"),
    ("Paris: +33 1 23 45 67 89", "phone", "+33 1 23 45 67 89"),
    ("Berlin: +49 (0)30 123456", "phone", "+49 (0)30 123456"),
    ("my cell is (415) 555-2671", "phone", "(415) 555-2671"),
    ("my cell is 415-555-2671", "phone", "415-555-2671"),
    ("my cell is 415.555.2671", "phone", "415.555.2671"),
    ("my cell is 415 555 2671", "phone", "415 555 2671"),
    ("ring 020 7946 0958 today", "phone", "020 7946 0958"),
    # cards (Luhn-valid test numbers)
    ("card 4111 1111 1111 1111 exp 12/29", "card", "4111 1111 1111 1111"),
    ("card 4111-1111-1111-1111", "card", "4111-1111-1111-1111"),
    ("card 4111111111111111", "card", "4111111111111111"),
    ("Mastercard 5500 0000 0000 0004", "card", "5500 0000 0000 0004"),
    ("Amex 3782 822463 10005", "card", "3782 822463 10005"),
    ("Amex 378282246310005", "card", "378282246310005"),
    # IBANs (valid check digits)
    ("IBAN GB82 WEST 1234 5698 7654 32 please", "iban", "GB82 WEST 1234 5698 7654 32"),
    ("to GB82WEST12345698765432", "iban", "GB82WEST12345698765432"),
    ("to DE89 3704 0044 0532 0130 00", "iban", "DE89 3704 0044 0532 0130 00"),
    # a word after an IBAN whose last group is whole is not part of it
    ("pay BE68 5390 0754 7034 EUR 50", "iban", "BE68 5390 0754 7034"),
    # US social security numbers
    ("SSN 123-45-6789 on file", "ssn", "123-45-6789"),
]


@pytest.mark.parametrize(("text", "kind", "item"), FOUND)
def test_finds_each_kind_where_it_is_written(text, kind, item):
    start = text.index(item)
    assert find_private(text) == [Finding(kind, start, start + len(item))]
    assert looks_private(text)


NOT_PRIVATE = [
    # arithmetic, the evals' bread and butter
    "What is 123456789 * 987654321?",
    "What is 12345 + 67890 - 13579?",
    "Compute 4111111111111111 + 1",          # a Luhn-valid run, but an operand
    "Compute 1234 5678 9012 3456 + 1",
    "Solve 415 555 2671 + 1",
    "x = 123-456-7890",
    "x = 123-45-6789",                       # an SSN's shape, but an operand
    "Compute 100-200-3000",                  # no US area code starts with 1
    "What is 555 123 4567 minus 1?",         # no US exchange starts with 1
    "What is 2^64 = 18446744073709551616?",
    "Find 10^9+7 = 1000000007",
    "What is 3.14159265358979 * 2?",
    "What is 1,234,567,890 + 1?",
    "Compute 12345678901234 / 2",
    "sum of 1 2 3 4 5 6 7 8 9 10 11 12 13",
    "Is 79927398713 a valid Luhn number?",  # Luhn-valid, too short for a card
    # numbers in prose that are not private
    "Dates 2024-01-15 and 1999-12-31", "The years 1776 and 1865", "ratio 1:2:3",
    "price 1.234.567,89", "ISBN 978-3-16-148410-0", "version 1.2.3.4", "IP 192.168.0.1",
    # near misses: a failed check digit, invalid SSN areas, a host-only address
    "card 4111 1111 1111 1112",
    "GB82 WEST 1234 5698 7654 33",
    "000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000",
    "user@localhost",
    "1111 1111 1111 1117",                  # Luhn-valid, not a card network's range
]


@pytest.mark.parametrize("text", NOT_PRIVATE)
def test_leaves_arithmetic_and_near_misses_alone(text):
    assert find_private(text) == []
    assert not looks_private(text)


def test_several_items_come_in_order_and_overlaps_go_to_the_checked_kind():
    text = "Contact: jane@example.org or +1 (415) 555-2671, card 4111 1111 1111 1111"
    assert [f.kind for f in find_private(text)] == ["email", "phone", "card"]
    # an IBAN's digits also look like a national phone number: one finding, the IBAN
    assert [f.kind for f in find_private("to DE89 3704 0044 0532 0130 00")] == ["iban"]


def test_no_bundled_or_shipped_question_is_flagged():
    questions = [t.question for t in bundled_tasks().tasks]
    for line in (ROOT / "evals" / "datasets" / "colm_tasks.jsonl").read_text().splitlines():
        if line.strip():
            questions.append(json.loads(line)["question"])
    assert len(questions) > 100
    assert [q for q in questions if looks_private(q)] == []


@pytest.mark.parametrize("junk", ["1 " * 50_000, "1" * 100_000, "a@" * 30_000,
                                  "a." * 50_000 + "@", "+1 " * 30_000, "GB82 " * 20_000,
                                  "(415) " * 20_000])
def test_long_adversarial_text_is_read_in_linear_time(junk):
    start = time.process_time()
    find_private(junk)
    looks_private(junk)
    assert time.process_time() - start < 5  # seconds: a backtracking blow-up takes minutes
