"""The bundled task set ``evals/datasets/colm_tasks.jsonl`` and its generator."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "evals" / "generate_tasks.py"
DATASET = ROOT / "evals" / "datasets" / "colm_tasks.jsonl"

DOMAINS = {"arithmetic", "algebra", "number_theory", "geometry", "percentages", "units"}
KEYS = ["id", "domain", "question", "answer", "choices", "distractors"]
LETTERS = "ABCD"
NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d{0,2}[1-9])?")  # at most 3 decimals, no trailing 0


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("colm_generate_tasks", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


@pytest.fixture(scope="module")
def items() -> list[dict]:
    return [json.loads(line) for line in DATASET.read_text(encoding="utf-8").splitlines()]


def is_number(text: str) -> bool:
    return NUMBER.fullmatch(text) is not None and text != "-0"


def gold_value(item: dict) -> Fraction:
    """The gold answer as a number (for multiple-choice: the text of the correct option)."""
    if item["choices"] is None:
        return Fraction(item["answer"])
    return Fraction(item["choices"][LETTERS.index(item["answer"])])


def stem(item: dict) -> str:
    """The question without its lettered option lines."""
    if item["choices"] is None:
        return item["question"]
    return item["question"].rsplit("\n", len(LETTERS))[0]


# --------------------------------------------------------------------------- the file itself


def test_committed_file_is_the_generator_output(generator: ModuleType) -> None:
    expected = generator.render(generator.generate()).encode("utf-8")
    assert DATASET.read_bytes() == expected, "regenerate with: python evals/generate_tasks.py"


def test_main_writes_the_same_bytes(generator: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "tasks.jsonl"
    assert generator.main(["--seed", "7", "--out", str(out)]) == 0
    assert out.read_bytes() == DATASET.read_bytes()


def test_other_seeds_give_other_valid_sets(generator: ModuleType) -> None:
    other = generator.generate(seed=8)
    assert len(other) == 300
    assert other != generator.generate()


def test_file_layout() -> None:
    raw = DATASET.read_bytes()
    assert raw.endswith(b"\n") and b"\r" not in raw and not raw.endswith(b"\n\n")


# --------------------------------------------------------------------------- structure


def test_counts_and_uniqueness(items: list[dict]) -> None:
    assert len(items) == 300
    assert len({item["id"] for item in items}) == 300
    assert len({item["question"] for item in items}) == 300
    by_domain = Counter(item["domain"] for item in items)
    assert set(by_domain) == DOMAINS
    assert all(count == 50 for count in by_domain.values())
    for domain in DOMAINS:
        kinds = Counter(item["choices"] is None for item in items if item["domain"] == domain)
        assert kinds[True] > 0 and kinds[False] > 0, domain
        assert 5 <= kinds[False] <= 12, domain  # about one in six is multiple-choice


def test_item_keys_and_ids(items: list[dict]) -> None:
    for item in items:
        assert list(item) == KEYS
        assert re.fullmatch(rf"{item['domain']}-\d{{4}}", item["id"]), item["id"]
        assert isinstance(item["question"], str) and item["question"].strip()


def test_numeric_answers_and_distractors(items: list[dict]) -> None:
    numeric = [item for item in items if item["choices"] is None]
    for item in numeric:
        values = [item["answer"], *item["distractors"]]
        assert len(item["distractors"]) == 3, item["id"]
        assert all(isinstance(v, str) and is_number(v) for v in values), item["id"]
        assert len({Fraction(v) for v in values}) == 4, item["id"]


def test_multiple_choice_items(items: list[dict]) -> None:
    for item in (item for item in items if item["choices"] is not None):
        choices = item["choices"]
        assert item["answer"] in LETTERS, item["id"]
        assert sorted(item["distractors"]) == sorted(set(LETTERS) - {item["answer"]}), item["id"]
        assert len(choices) == 4 and len(set(choices)) == 4, item["id"]
        lines = item["question"].split("\n")
        expected = [f"{letter}) {text}" for letter, text in zip(LETTERS, choices, strict=True)]
        assert lines[-4:] == expected, item["id"]
        assert len(lines) > 4 and lines[0].strip(), item["id"]


# --------------------------------------------------------------------------- gold answers


def recheck(items: list[dict], pattern: str, solve) -> int:
    """Recompute the gold answer of every item whose question stem matches ``pattern``."""
    regex = re.compile(pattern)
    checked = 0
    for item in items:
        match = regex.search(stem(item))
        if match:
            expected = Fraction(solve(*match.groups()))
            assert gold_value(item) == expected, (item["id"], item["question"])
            checked += 1
    return checked


def test_gcd_lcm_remainder_gold(items: list[dict]) -> None:
    nt = [item for item in items if item["domain"] == "number_theory"]
    gcd = recheck(nt, r"greatest common divisor of (\d+) and (\d+)\b",
                  lambda a, b: math.gcd(int(a), int(b)))
    gcd += recheck(nt, r"divides both (\d+) and (\d+) exactly",
                   lambda a, b: math.gcd(int(a), int(b)))
    lcm = recheck(nt, r"least common multiple of (\d+) and (\d+)\b",
                  lambda a, b: math.lcm(int(a), int(b)))
    lcm += recheck(nt, r"multiple of both (\d+) and (\d+)\?",
                   lambda a, b: math.lcm(int(a), int(b)))
    rem = recheck(nt, r"(?:remainder when|When) (\d+) is divided by (\d+)",
                  lambda n, d: int(n) % int(d))
    rem += recheck(nt, r"^(\d+) eggs are packed into cartons of (\d+)",
                   lambda n, d: int(n) % int(d))
    assert gcd >= 3 and lcm >= 3 and rem >= 3


def test_prime_gold(items: list[dict]) -> None:
    def prime(n: int) -> bool:
        return n > 1 and all(n % d for d in range(2, n))

    nt = [item for item in items if item["domain"] == "number_theory"]
    below = recheck(nt, r"prime numbers? (?:less|smaller) than (\d+)",
                    lambda n: sum(p for p in range(int(n)) if prime(p)))
    after = recheck(nt, r"prime number (?:greater than|that comes after) (\d+)",
                    lambda n: next(p for p in range(int(n) + 1, 2 * int(n) + 2) if prime(p)))
    assert below >= 3 and after >= 3
    for item in nt:
        if "numbers is prime" in item["question"]:
            assert [prime(int(c)) for c in item["choices"]].count(True) == 1
            assert prime(int(gold_value(item)))


def test_percent_gold(items: list[dict]) -> None:
    pct = [item for item in items if item["domain"] == "percentages"]
    of = recheck(pct, r"^(?:What is|Find) (\d+)% of (\d+)[?.]$",
                 lambda p, n: Fraction(int(p) * int(n), 100))
    of += recheck(pct, r"has (\d+) students, and (\d+)% of them",
                  lambda n, p: Fraction(int(p) * int(n), 100))
    change = recheck(pct, r"from \$(\d+) to \$(\d+)\. By what percent",
                     lambda a, b: Fraction(abs(int(b) - int(a)) * 100, int(a)))
    off = recheck(pct, r"costs \$(\d+)\. It is on sale for (\d+)% off",
                  lambda price, p: Fraction(int(price) * (100 - int(p)), 100))
    assert of >= 3 and change >= 3 and off >= 1


def test_arithmetic_and_algebra_gold(items: list[dict]) -> None:
    arith = [item for item in items if item["domain"] == "arithmetic"]
    mul_add = recheck(arith, r"^(?:What is|Calculate) (\d+) \* (\d+) \+ (\d+)[?.]$",
                      lambda a, b, c: int(a) * int(b) + int(c))
    mul_add += recheck(arith, r"^Compute (\d+) times (\d+), plus (\d+)\.$",
                       lambda a, b, c: int(a) * int(b) + int(c))
    assert mul_add >= 3

    linear = re.compile(
        r"(?:Solve for x:|Find x if|satisfies) (-?\d*)x ([+-]) (\d+) = (-?\d+)[.?]$"
    )
    checked = 0
    for item in (item for item in items if item["domain"] == "algebra"):
        match = linear.search(stem(item))
        if match:
            a = int(match[1]) if match[1] not in ("", "-") else int(match[1] + "1")
            b = int(match[3]) * (1 if match[2] == "+" else -1)
            x = gold_value(item)
            assert a * x + b == int(match[4]), item["id"]  # plug the solution back in
            checked += 1
    assert checked >= 3


def test_geometry_and_units_gold(items: list[dict]) -> None:
    geo = [item for item in items if item["domain"] == "geometry"]
    pi = Fraction(314, 100)
    circle = recheck(geo, r"area of a circle with radius (\d+) m", lambda r: pi * int(r) ** 2)
    circle += recheck(geo, r"circumference of a circle with radius (\d+) cm",
                      lambda r: 2 * pi * int(r))
    legs = recheck(geo, r"legs of length (\d+) and (\d+)\.",
                   lambda a, b: math.isqrt(int(a) ** 2 + int(b) ** 2))
    assert circle >= 3 and legs >= 1

    units = [item for item in items if item["domain"] == "units"]
    size = {
        "kilometers": 1000, "meters": 1, "centimeters": Fraction(1, 100),
        "millimeters": Fraction(1, 1000), "kilograms": 1000, "grams": 1,
        "liters": 1000, "milliliters": 1,
    }

    def convert(amount: str, src: str, dst: str) -> Fraction:
        return Fraction(amount) * size[src] / size[dst]

    unit = "(" + "|".join(size) + ")"
    conv = recheck(units, rf"^How many {unit} are in ([\d.]+) {unit}\?$",
                   lambda dst, amount, src: convert(amount, src, dst))
    conv += recheck(units, rf"^(?:Convert|Express) ([\d.]+) {unit} (?:to|in) {unit}\.$",
                    lambda amount, src, dst: convert(amount, src, dst))
    seconds = recheck(units, r"^How many seconds are in (\d+) hours\?$", lambda h: 3600 * int(h))
    seconds += recheck(units, r"^Convert (\d+) hours to seconds\.$", lambda h: 3600 * int(h))
    assert conv >= 5 and seconds >= 1
