"""Generate the bundled task set ``evals/datasets/colm_tasks.jsonl``.

The task set holds 300 self-contained math and word problems, 50 in each of six domains
(arithmetic, algebra, number_theory, geometry, percentages, units). Every item has an exact
gold answer computed (and re-checked) in code, and three plausible wrong answers
("distractors") modelled on common mistakes. About one item in six per domain is
multiple-choice: its question lists the options as ``A) ...`` to ``D) ...`` and its answer is
the letter. The built-in chat-model simulator reads the gold answers and distractors; the eval
harness scores real models against the gold answers.

Output is byte-identical for a given seed. Regenerate the committed file with::

    python evals/generate_tasks.py

(options: ``--seed N``, default 7, and ``--out PATH``). Never edit the JSONL by hand:
``tests/unit/test_tasks.py`` checks that it matches this script's output.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

DEFAULT_SEED = 7
DEFAULT_OUT = Path(__file__).resolve().parent / "datasets" / "colm_tasks.jsonl"
DOMAINS = ("arithmetic", "algebra", "number_theory", "geometry", "percentages", "units")
ITEMS_PER_DOMAIN = 50
MC_EVERY = 6  # item i (0-based) of a domain is multiple-choice when i % MC_EVERY == MC_EVERY - 1
LETTERS = "ABCD"
MAX_DECIMALS = 3
PI = Fraction(314, 100)  # every circle question states "use pi = 3.14"

NAMES = (
    "Maya", "Sam", "Lena", "Omar", "Priya", "Diego", "Hana", "Tom",
    "Aisha", "Ben", "Chloe", "Ravi", "Sofia", "Kenji", "Nora", "Leo",
)

Number = int | Fraction


@dataclass
class Problem:
    """One generated question with its gold answer and three wrong answers."""

    question: str
    answer: str
    distractors: list[str]
    choices: list[str] | None = None


Template = Callable[[random.Random], Problem]


# --------------------------------------------------------------------------- helpers


def decimal_places(value: Number) -> int | None:
    """Digits after the point needed to write ``value`` exactly, or None if too many/infinite."""
    value = Fraction(value)
    for places in range(MAX_DECIMALS + 1):
        if (value * 10**places).denominator == 1:
            return places
    return None


def fmt(value: Number) -> str:
    """Canonical text of an exact number: ``42``, ``-3``, ``12.5`` (no trailing zeros)."""
    value = Fraction(value)
    places = decimal_places(value)
    if places is None:
        raise ValueError(f"{value} is not a short exact decimal")
    scaled = (value * 10**places).numerator
    sign = "-" if scaled < 0 else ""
    digits = str(abs(scaled)).rjust(places + 1, "0")
    if places == 0:
        return sign + digits
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def signed(n: int) -> str:
    """`` + 5`` or `` - 5``, for writing the later terms of an expression."""
    return f" + {n}" if n >= 0 else f" - {-n}"


def term(coef: int, var: str, first: bool = False) -> str:
    """A coefficient-and-variable term: ``3x``, ``x``, ``-x`` (first) or `` - 2y`` (later)."""
    body = var if abs(coef) == 1 else f"{abs(coef)}{var}"
    if first:
        return body if coef > 0 else f"-{body}"
    return f" + {body}" if coef > 0 else f" - {body}"


def plural(n: int, word: str) -> str:
    """``1 hour``, ``3 hours``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def nonzero(rng: random.Random, lo: int, hi: int) -> int:
    while True:
        n = rng.randint(lo, hi)
        if n != 0:
            return n


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


def next_prime(n: int) -> int:
    """Smallest prime strictly greater than ``n``."""
    p = n + 1
    while not is_prime(p):
        p += 1
    return p


def prev_prime(n: int) -> int:
    """Largest prime less than or equal to ``n`` (``n >= 2``)."""
    p = n
    while not is_prime(p):
        p -= 1
    return p


def divisor_count(n: int) -> int:
    return sum(1 for d in range(1, n + 1) if n % d == 0)


def smallest_prime_factor(n: int) -> int:
    return next(d for d in range(2, n + 1) if n % d == 0)


def numeric(
    question: str,
    answer: Number,
    candidates: Iterable[Number],
    *,
    allow_negative: bool = False,
) -> Problem:
    """A numeric problem: keep the first three usable wrong answers from ``candidates``.

    A candidate is dropped when it equals the answer or an earlier pick, is not a short exact
    decimal, or is negative while the answer is not (unless ``allow_negative``). Small offsets
    of the answer (off-by-one and the like) top the list up if needed.
    """
    gold = Fraction(answer)
    picked: list[Fraction] = []
    fallback = [gold + d for d in (1, -1, 2, -2, 10, -10, 5, -5)]
    for cand in [*candidates, *fallback]:
        c = Fraction(cand)
        if c == gold or c in picked or decimal_places(c) is None:
            continue
        if c < 0 <= gold and not allow_negative:
            continue
        picked.append(c)
        if len(picked) == 3:
            break
    assert len(picked) == 3, question
    return Problem(question, fmt(gold), [fmt(c) for c in picked])


def with_options(stem: str, options: list[str], correct: int) -> Problem:
    """A multiple-choice problem: the stem followed by lettered options, one per line."""
    assert len(options) == len(LETTERS) == len(set(options))
    lines = [stem] + [f"{letter}) {text}" for letter, text in zip(LETTERS, options, strict=True)]
    answer = LETTERS[correct]
    wrong = [letter for letter in LETTERS if letter != answer]
    return Problem("\n".join(lines), answer, wrong, choices=list(options))


def to_multiple_choice(problem: Problem, rng: random.Random) -> Problem:
    """Turn a numeric problem into a 4-option one: the gold answer among its distractors."""
    options = [problem.answer, *problem.distractors]
    rng.shuffle(options)
    return with_options(problem.question, options, options.index(problem.answer))


# --------------------------------------------------------------------------- arithmetic


def arith_mul_add(rng: random.Random) -> Problem:
    a, b, c = rng.randint(12, 49), rng.randint(11, 39), rng.randint(10, 99)
    answer = a * b + c
    question = rng.choice(
        [
            f"What is {a} * {b} + {c}?",
            f"Calculate {a} * {b} + {c}.",
            f"Compute {a} times {b}, plus {c}.",
        ]
    )
    return numeric(question, answer, [a * (b + c), a * b - c, answer + 10])


def arith_grouped(rng: random.Random) -> Problem:
    a, b, c = rng.randint(5, 40), rng.randint(5, 40), rng.randint(3, 12)
    d = rng.randint(1, (a + b) * c - 1)
    answer = (a + b) * c - d
    assert answer > 0
    question = rng.choice(
        [
            f"Evaluate ({a} + {b}) * {c} - {d}.",
            f"Add {a} and {b}, multiply the sum by {c}, then subtract {d}. What is the result?",
            f"What is the value of ({a} + {b}) * {c} - {d}?",
        ]
    )
    return numeric(question, answer, [a + b * c - d, (a + b) * c + d, (a + b) * (c - d)])


def arith_divide_add(rng: random.Random) -> Problem:
    k, q = rng.randint(3, 15), rng.randint(4, 25)
    n = k * q
    m, p = rng.randint(2, 12), rng.randint(2, 9)
    answer = n // k + m * p
    assert answer * k == n + m * p * k
    question = rng.choice(
        [
            f"What is {n} / {k} + {m} * {p}?",
            f"Divide {n} by {k}, then add the product of {m} and {p}. What do you get?",
            f"Compute {n} divided by {k}, plus {m} times {p}.",
        ]
    )
    return numeric(question, answer, [(q + m) * p, q + m + p, Fraction(n, k + m) + p])


def arith_shopping(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    n, p, q = rng.randint(3, 12), rng.randint(2, 15), rng.randint(1, 20)
    item, extra = rng.choice(
        [("notebooks", "a backpack"), ("pens", "a stapler"), ("apples", "a melon"),
         ("tickets", "a program"), ("candles", "a lighter")]
    )
    answer = n * p + q
    question = (
        f"{name} buys {n} {item} at ${p} each and {extra} for ${q}. "
        f"How many dollars does {name} spend in total?"
    )
    return numeric(question, answer, [n * p, n * (p + q), answer + p])


def arith_change(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    bill = rng.choice([20, 50, 100])
    while True:
        n, p = rng.randint(2, 9), rng.randint(2, 15)
        if n * p < bill:
            break
    answer = bill - n * p
    question = rng.choice(
        [
            f"{name} pays with a ${bill} bill for {n} sandwiches that cost ${p} each. "
            f"How many dollars of change does {name} get back?",
            f"{name} has ${bill} and buys {n} books at ${p} each. "
            f"How many dollars does {name} have left?",
        ]
    )
    return numeric(question, answer, [n * p, bill - p, answer - p])


def arith_sharing(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    k, q, g = rng.randint(3, 9), rng.randint(4, 20), rng.randint(2, 15)
    total = k * q + g
    answer = (total - g) // k
    assert answer * k + g == total
    thing = rng.choice(["marbles", "stickers", "cookies", "cards", "stamps"])
    question = (
        f"{name} has {total} {thing}, gives {g} of them to a neighbor, and then shares the rest "
        f"equally among {k} friends. How many {thing} does each friend get?"
    )
    return numeric(question, answer, [Fraction(total, k), Fraction(total + g, k), answer - 1])


def arith_savings(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    s, w = rng.randint(5, 40), rng.randint(4, 20)
    t = rng.randint(1, s * w - 1)
    answer = s * w - t
    question = rng.choice(
        [
            f"{name} saves ${s} every week for {w} weeks and then spends ${t} on a gift. "
            f"How many dollars does {name} have left?",
            f"A club collects ${s} in dues each week. After {w} weeks it pays ${t} for "
            f"supplies. How many dollars remain?",
        ]
    )
    return numeric(question, answer, [s * w, s * w + t, s * (w - 1) - t])


# --------------------------------------------------------------------------- algebra


def alg_linear(rng: random.Random) -> Problem:
    x, a, b = nonzero(rng, -9, 15), rng.randint(2, 9), nonzero(rng, -20, 20)
    c = a * x + b
    assert a * x + b == c
    equation = f"{term(a, 'x', first=True)}{signed(b)} = {c}"
    question = rng.choice(
        [
            f"Solve for x: {equation}.",
            f"Find x if {equation}.",
            f"What value of x satisfies {equation}?",
        ]
    )
    return numeric(question, x, [Fraction(c + b, a), c - b, -x], allow_negative=True)


def alg_both_sides(rng: random.Random) -> Problem:
    x = nonzero(rng, -8, 12)
    a = rng.randint(3, 9)
    c = rng.randint(1, a - 1)
    b = nonzero(rng, -15, 15)
    d = a * x + b - c * x
    assert a * x + b == c * x + d
    left = f"{term(a, 'x', first=True)}{signed(b)}"
    right = f"{term(c, 'x', first=True)}{signed(d)}"
    question = rng.choice(
        [f"Solve for x: {left} = {right}.", f"If {left} = {right}, what is x?"]
    )
    return numeric(
        question, x, [Fraction(d - b, a + c), Fraction(d + b, a - c), d - b], allow_negative=True
    )


def alg_system(rng: random.Random) -> Problem:
    x, y = rng.randint(-6, 12), rng.randint(-6, 12)
    while True:
        a, b = rng.randint(1, 5), nonzero(rng, -4, 5)
        c, d = rng.randint(1, 5), nonzero(rng, -4, 5)
        if a * d - b * c != 0:
            break
    e, f = a * x + b * y, c * x + d * y
    det = a * d - b * c
    assert Fraction(e * d - b * f, det) == x and Fraction(a * f - e * c, det) == y
    first = f"{term(a, 'x', first=True)}{term(b, 'y')} = {e}"
    second = f"{term(c, 'x', first=True)}{term(d, 'y')} = {f}"
    target, answer, other = rng.choice([("x", x, y), ("y", y, x)])
    question = rng.choice(
        [
            f"Solve the system {first} and {second}. What is {target}?",
            f"Two equations hold at the same time: {first} and {second}. "
            f"What is the value of {target}?",
        ]
    )
    return numeric(question, answer, [other, x + y, -answer], allow_negative=True)


def alg_evaluate(rng: random.Random) -> Problem:
    a, b, c = rng.randint(1, 5), nonzero(rng, -9, 9), rng.randint(-10, 12)
    x = nonzero(rng, -5, 6)
    answer = a * x * x + b * x + c
    expr = f"{term(a, 'x^2', first=True)}{term(b, 'x')}{signed(c) if c else ''}"
    question = rng.choice(
        [
            f"Evaluate {expr} when x = {x}.",
            f"What is the value of {expr} if x = {x}?",
            f"If x = {x}, what does {expr} equal?",
        ]
    )
    wrong = [(a * x) ** 2 + b * x + c, a * x * x - b * x + c, a * 2 * x + b * x + c]
    return numeric(question, answer, wrong, allow_negative=True)


def alg_think_of_number(rng: random.Random) -> Problem:
    while True:
        n, a, b = rng.randint(2, 30), rng.randint(2, 9), rng.randint(1, 40)
        op = rng.choice(["add", "subtract"])
        result = a * n + b if op == "add" else a * n - b
        if result > 0:
            break
    assert (result - b if op == "add" else result + b) == a * n
    step = f"add {b}" if op == "add" else f"subtract {b}"
    question = rng.choice(
        [
            f"I think of a number, multiply it by {a}, and then {step}. The result is {result}. "
            f"What is my number?",
            f"When a number is multiplied by {a} and you then {step}, you get {result}. "
            f"What is the number?",
        ]
    )
    undo_wrong = result + b if op == "add" else result - b
    return numeric(question, n, [Fraction(undo_wrong, a), undo_wrong, n + 1])


def alg_consecutive(rng: random.Random) -> Problem:
    k, n = rng.randint(2, 5), rng.randint(3, 60)
    total = k * n + k * (k - 1) // 2
    assert sum(range(n, n + k)) == total
    count_word = {2: "two", 3: "three", 4: "four", 5: "five"}[k]
    which = rng.choice(["smallest", "largest"])
    answer = n if which == "smallest" else n + k - 1
    question = (
        f"The sum of {count_word} consecutive integers is {total}. "
        f"What is the {which} of these integers?"
    )
    other_end = n + k - 1 if which == "smallest" else n
    return numeric(question, answer, [Fraction(total, k), other_end, answer + 1])


def alg_ages(rng: random.Random) -> Problem:
    young, old = rng.sample(NAMES, 2)
    b, m, y = rng.randint(3, 15), rng.randint(2, 5), rng.randint(2, 10)
    total = (m + 1) * b + 2 * y
    assert (m * b + y) + (b + y) == total
    times = {2: "twice", 3: "three times", 4: "four times", 5: "five times"}[m]
    question = (
        f"{old} is {times} as old as {young}. In {y} years, the sum of their ages will be "
        f"{total}. How old is {young} now?"
    )
    return numeric(question, b, [m * b, b + y, Fraction(total, m + 1)])


# --------------------------------------------------------------------------- number theory


def nt_gcd(rng: random.Random) -> Problem:
    g = rng.randint(2, 30)
    while True:
        p, q = rng.randint(2, 15), rng.randint(2, 15)
        if p != q and math.gcd(p, q) == 1:
            break
    a, b = g * p, g * q
    assert math.gcd(a, b) == g
    question = rng.choice(
        [
            f"What is the greatest common divisor of {a} and {b}?",
            f"Find the greatest common divisor of {a} and {b}.",
            f"What is the largest whole number that divides both {a} and {b} exactly?",
        ]
    )
    smaller_common = g // smallest_prime_factor(g)
    return numeric(question, g, [smaller_common, 2 * g, abs(a - b), min(p, q)])


def nt_lcm(rng: random.Random) -> Problem:
    g = rng.randint(2, 12)
    while True:
        p, q = rng.randint(2, 11), rng.randint(2, 11)
        if p != q and math.gcd(p, q) == 1:
            break
    a, b = g * p, g * q
    answer = g * p * q
    assert answer == math.lcm(a, b)
    question = rng.choice(
        [
            f"What is the least common multiple of {a} and {b}?",
            f"Find the least common multiple of {a} and {b}.",
            f"What is the smallest positive number that is a multiple of both {a} and {b}?",
        ]
    )
    return numeric(question, answer, [a * b, g, 2 * answer])


def nt_remainder(rng: random.Random) -> Problem:
    while True:
        n, d = rng.randint(100, 999), rng.randint(3, 19)
        if n % d:
            break
    answer = n % d
    assert (n // d) * d + answer == n
    question = rng.choice(
        [
            f"What is the remainder when {n} is divided by {d}?",
            f"When {n} is divided by {d}, what is the remainder?",
            f"{n} eggs are packed into cartons of {d}, filling as many cartons as possible. "
            f"How many eggs are left over?",
        ]
    )
    return numeric(question, answer, [n // d, d - answer, answer + 1])


def nt_divisor_count(rng: random.Random) -> Problem:
    n = rng.randint(12, 240)
    answer = divisor_count(n)
    assert answer == len([d for d in range(1, n + 1) if n % d == 0])
    question = rng.choice(
        [
            f"How many positive divisors does {n} have?",
            f"How many positive whole numbers divide {n} exactly, counting 1 and {n}?",
        ]
    )
    return numeric(question, answer, [answer - 2, answer - 1, answer + 1])


def nt_sum_primes(rng: random.Random) -> Problem:
    n = rng.choice([p for p in range(11, 100) if is_prime(p)])
    primes = [p for p in range(2, n) if is_prime(p)]
    answer = sum(primes)
    assert n not in primes and all(n % p for p in primes)
    question = rng.choice(
        [
            f"What is the sum of all prime numbers less than {n}?",
            f"Add up every prime number smaller than {n}. What total do you get?",
        ]
    )
    return numeric(question, answer, [answer + n, answer - 2, answer + 1])


def nt_next_prime(rng: random.Random) -> Problem:
    n = rng.randint(20, 250)
    answer = next_prime(n)
    assert answer > n and is_prime(answer)
    assert not any(is_prime(k) for k in range(n + 1, answer))
    question = rng.choice(
        [
            f"What is the smallest prime number greater than {n}?",
            f"What is the first prime number that comes after {n}?",
        ]
    )
    return numeric(question, answer, [n + 1, prev_prime(n), next_prime(answer), answer + 2])


def nt_count_multiples(rng: random.Random) -> Problem:
    k, n = rng.randint(3, 17), rng.randint(50, 500)
    answer = n // k
    assert answer == sum(1 for m in range(1, n + 1) if m % k == 0)
    question = rng.choice(
        [
            f"How many multiples of {k} are there from 1 to {n}, inclusive?",
            f"How many whole numbers between 1 and {n} (inclusive) are divisible by {k}?",
        ]
    )
    return numeric(question, answer, [answer + 1, answer - 1, n // (k + 1)])


def nt_which_prime(rng: random.Random) -> Problem:
    """Multiple-choice only: one prime among odd composites with no small factor."""
    prime = rng.choice([p for p in range(53, 250) if is_prime(p)])
    tricky = [n for n in range(49, 250, 2) if not is_prime(n) and smallest_prime_factor(n) >= 7]
    options = [prime, *rng.sample(tricky, 3)]
    rng.shuffle(options)
    assert sum(is_prime(n) for n in options) == 1
    stem = rng.choice(
        [
            "Which of the following numbers is prime?",
            "Exactly one of these numbers is prime. Which one?",
        ]
    )
    return with_options(stem, [str(n) for n in options], options.index(prime))


# --------------------------------------------------------------------------- geometry


def geo_rectangle(rng: random.Random) -> Problem:
    length, width = rng.randint(5, 40), rng.randint(2, 25)
    if length == width:
        length += 1
    place = rng.choice(["garden", "room", "poster", "field"])
    unit = "centimeters" if place == "poster" else "meters"
    if rng.random() < 0.5:
        answer = length * width
        question = (
            f"A rectangular {place} is {length} {unit} long and {width} {unit} wide. "
            f"What is its area in square {unit}?"
        )
        return numeric(question, answer, [2 * (length + width), length + width, 2 * answer])
    answer = 2 * (length + width)
    question = rng.choice(
        [
            f"A rectangular {place} is {length} {unit} long and {width} {unit} wide. "
            f"What is its perimeter in {unit}?",
            f"How many {unit} of border are needed to go all the way around a rectangular "
            f"{place} that is {length} {unit} long and {width} {unit} wide?",
        ]
    )
    return numeric(question, answer, [length * width, length + width, 2 * length + width])


def geo_triangle_area(rng: random.Random) -> Problem:
    base, height = rng.randint(3, 30), rng.randint(2, 25)
    answer = Fraction(base * height, 2)
    question = rng.choice(
        [
            f"A triangle has a base of {base} cm and a height of {height} cm. "
            f"What is its area in square centimeters?",
            f"What is the area, in square meters, of a triangle with base {base} m and "
            f"height {height} m?",
        ]
    )
    return numeric(question, answer, [base * height, base + height, answer + base])


def geo_circle(rng: random.Random) -> Problem:
    r = rng.randint(2, 20)
    kind = rng.choice(["area", "circumference", "diameter area"])
    if kind == "circumference":
        answer = 2 * PI * r
        question = (
            f"Using pi = 3.14, what is the circumference of a circle with radius {r} cm, "
            f"in centimeters?"
        )
        return numeric(question, answer, [PI * r, PI * r * r, 2 * PI * r * r])
    answer = PI * r * r
    if kind == "area":
        question = (
            f"Using pi = 3.14, what is the area of a circle with radius {r} m, "
            f"in square meters?"
        )
    else:
        question = (
            f"A circular table has a diameter of {2 * r} dm. Using pi = 3.14, "
            f"what is its area in square decimeters?"
        )
    return numeric(question, answer, [2 * PI * r, PI * (2 * r) ** 2, PI * r])


def is_right_triangle(*sides: int) -> bool:
    x, y, z = sorted(sides)
    return x * x + y * y == z * z


TRIPLES = ((3, 4, 5), (5, 12, 13), (8, 15, 17), (7, 24, 25), (20, 21, 29), (9, 40, 41))


def geo_pythagoras(rng: random.Random) -> Problem:
    base_triple = rng.choice(TRIPLES)
    k = rng.randint(1, 4)
    a, b, c = (k * s for s in base_triple)
    assert a * a + b * b == c * c
    if rng.random() < 0.5:
        question = rng.choice(
            [
                f"A right triangle has legs of length {a} and {b}. How long is its hypotenuse?",
                f"A ladder reaches {b} feet up a wall, and its foot is {a} feet from the wall. "
                f"How long is the ladder in feet?",
            ]
        )
        return numeric(question, c, [a + b, a * a + b * b, c + 1])
    question = (
        f"A right triangle has a hypotenuse of length {c} and one leg of length {a}. "
        f"How long is the other leg?"
    )
    return numeric(question, b, [c - a, c * c - a * a, b + 1])


def geo_box(rng: random.Random) -> Problem:
    length, width, height = rng.randint(2, 20), rng.randint(2, 15), rng.randint(2, 12)
    volume = length * width * height
    surface = 2 * (length * width + length * height + width * height)
    if rng.random() < 0.6:
        question = rng.choice(
            [
                f"A box is {length} cm long, {width} cm wide and {height} cm tall. "
                f"What is its volume in cubic centimeters?",
                f"How many 1 cm cubes fit exactly inside a box measuring {length} cm by "
                f"{width} cm by {height} cm?",
            ]
        )
        return numeric(question, volume, [length * width, surface, length + width + height])
    question = (
        f"A closed box is {length} cm long, {width} cm wide and {height} cm tall. "
        f"What is its total surface area in square centimeters?"
    )
    return numeric(question, surface, [volume, surface // 2, surface - 2 * length * width])


def geo_triangle_angle(rng: random.Random) -> Problem:
    a = rng.randint(20, 100)
    b = rng.randint(15, 160 - a)
    answer = 180 - a - b
    assert a + b + answer == 180 and answer > 0
    question = rng.choice(
        [
            f"Two angles of a triangle measure {a} degrees and {b} degrees. "
            f"How many degrees is the third angle?",
            f"In triangle ABC, angle A is {a} degrees and angle B is {b} degrees. "
            f"What is angle C in degrees?",
        ]
    )
    return numeric(question, answer, [360 - a - b, a + b, 90 - a + b])


def geo_square(rng: random.Random) -> Problem:
    side = rng.randint(3, 30)
    perimeter = 4 * side
    question = rng.choice(
        [
            f"A square has a perimeter of {perimeter} cm. What is its area in square centimeters?",
            f"A square tile has a perimeter of {perimeter} inches. "
            f"What is its area in square inches?",
        ]
    )
    answer = side * side
    return numeric(question, answer, [perimeter * perimeter, side, Fraction(perimeter, 2) ** 2])


def geo_which_right(rng: random.Random) -> Problem:
    """Multiple-choice only: which side lengths form a right triangle?"""
    k = rng.randint(1, 3)
    a, b, c = (k * s for s in rng.choice(TRIPLES))
    sets = [(a, b, c), (a, b, c + 1), (a + 1, b, c), (a, b + 2, c + 1)]
    right = [s for s in sets if is_right_triangle(*s)]
    assert right == [sets[0]]
    rng.shuffle(sets)
    stem = "Which of the following sets of side lengths forms a right triangle?"
    return with_options(stem, [f"{x}, {y}, {z}" for x, y, z in sets], sets.index((a, b, c)))


# --------------------------------------------------------------------------- percentages

PERCENTS = (5, 10, 12, 15, 20, 25, 30, 35, 40, 45, 60, 75, 80, 120, 150)


def pct_of(rng: random.Random) -> Problem:
    p, n = rng.choice(PERCENTS), rng.randint(12, 480)
    answer = Fraction(p * n, 100)
    if rng.random() < 0.65:
        question = rng.choice([f"What is {p}% of {n}?", f"Find {p}% of {n}."])
    else:
        while True:  # a whole number of students
            n, p = 20 * rng.randint(2, 30), rng.choice([p for p in PERCENTS if p < 100])
            answer = Fraction(p * n, 100)
            if answer.denominator == 1:
                break
        question = (
            f"A school has {n} students, and {p}% of them walk to school. "
            f"How many students walk to school?"
        )
    return numeric(question, answer, [Fraction(p * n, 10), n - answer, Fraction(p * n, 1000)])


def pct_change(rng: random.Random) -> Problem:
    p = rng.choice([5, 10, 15, 20, 25, 30, 40, 50, 60, 75])
    direction = rng.choice(["increase", "decrease"])
    old = 20 * rng.randint(2, 40)
    new = old * (100 + p) // 100 if direction == "increase" else old * (100 - p) // 100
    assert Fraction(abs(new - old) * 100, old) == p
    item = rng.choice(["bike", "laptop", "concert ticket", "phone", "monthly train pass"])
    verb = "rose" if direction == "increase" else "fell"
    question = (
        f"The price of a {item} {verb} from ${old} to ${new}. "
        f"By what percent did the price {direction}?"
    )
    return numeric(question, p, [abs(new - old), Fraction(abs(new - old) * 100, new), 100 - p])


def pct_discount(rng: random.Random) -> Problem:
    p = rng.choice([10, 15, 20, 25, 30, 40, 50])
    price = rng.randint(12, 300)
    answer = Fraction(price * (100 - p), 100)
    item = rng.choice(["jacket", "pair of shoes", "lamp", "backpack", "board game"])
    question = rng.choice(
        [
            f"A {item} costs ${price}. It is on sale for {p}% off. "
            f"What is the sale price in dollars?",
            f"A store takes {p}% off a {item} that normally costs ${price}. "
            f"How many dollars does the {item} cost after the discount?",
        ]
    )
    wrong = [Fraction(price * p, 100), Fraction(price * (100 + p), 100), price - p]
    return numeric(question, answer, wrong)


def pct_interest(rng: random.Random) -> Problem:
    principal = 100 * rng.randint(2, 60)
    rate = rng.choice([2, 3, 4, 5, 6, 8])
    years = rng.randint(2, 6)
    interest = Fraction(principal * rate * years, 100)
    one_year = Fraction(principal * rate, 100)
    assert interest == one_year * years
    setup = f"${principal} is invested at {rate}% simple interest per year for {years} years."
    if rng.random() < 0.5:
        question = f"{setup} How many dollars of interest does it earn?"
        return numeric(question, interest, [one_year, principal + interest, interest * 10])
    question = f"{setup} What is the total amount in dollars at the end, including the principal?"
    return numeric(question, principal + interest, [interest, principal + one_year, principal])


def pct_what_percent(rng: random.Random) -> Problem:
    while True:
        p = rng.choice([4, 5, 8, 10, 12, 15, 20, 25, 30, 40, 60, 75, 80])
        whole = 10 * rng.randint(2, 50)
        if whole * p % 100 == 0:
            break
    part = whole * p // 100
    assert part * 100 == whole * p
    question = rng.choice(
        [
            f"{part} is what percent of {whole}?",
            f"A team won {part} of its {whole} games. What percent of its games did it win?",
        ]
    )
    return numeric(question, p, [Fraction(whole * 100, part), part, 100 - p])


def pct_reverse(rng: random.Random) -> Problem:
    while True:
        p = rng.choice([10, 20, 25, 50])
        original = 4 * rng.randint(10, 60)
        if original * p % 100 == 0:
            break
    final = original * (100 + p) // 100
    assert final * 100 == original * (100 + p)
    question = (
        f"After a {p}% price increase, a coat costs ${final}. "
        f"What was its price in dollars before the increase?"
    )
    wrong = [Fraction(final * (100 - p), 100), final - p, Fraction(final * (100 + p), 100)]
    return numeric(question, original, wrong)


# --------------------------------------------------------------------------- units

LENGTH_UNITS = {"kilometers": 1000, "meters": 1, "centimeters": Fraction(1, 100),
                "millimeters": Fraction(1, 1000)}
MASS_UNITS = {"kilograms": 1000, "grams": 1}
VOLUME_UNITS = {"liters": 1000, "milliliters": 1}

LENGTH_PAIRS = (
    ("kilometers", "meters"), ("meters", "centimeters"), ("centimeters", "millimeters"),
    ("meters", "kilometers"), ("centimeters", "meters"), ("millimeters", "centimeters"),
    ("kilometers", "centimeters"),
)


def _convert(rng: random.Random, units: dict[str, Number], src: str, dst: str) -> Problem:
    factor = Fraction(units[src]) / Fraction(units[dst])
    if factor > 1:  # big unit to small unit: a short decimal amount of the big unit
        amount = Fraction(rng.randint(1, 99), rng.choice([1, 1, 2, 4, 10]))
    else:  # small unit to big unit: a whole amount of the small unit
        amount = Fraction(rng.randint(15, 9999))
    answer = amount * factor
    assert answer / factor == amount
    a = fmt(amount)
    question = rng.choice(
        [
            f"How many {dst} are in {a} {src}?",
            f"Convert {a} {src} to {dst}.",
            f"Express {a} {src} in {dst}.",
        ]
    )
    return numeric(question, answer, [answer / 10, answer * 10, amount / factor])


def units_length(rng: random.Random) -> Problem:
    src, dst = rng.choice(LENGTH_PAIRS)
    return _convert(rng, LENGTH_UNITS, src, dst)


def units_mass(rng: random.Random) -> Problem:
    src, dst = rng.choice([("kilograms", "grams"), ("grams", "kilograms")])
    return _convert(rng, MASS_UNITS, src, dst)


def units_volume(rng: random.Random) -> Problem:
    if rng.random() < 0.6:
        src, dst = rng.choice([("liters", "milliliters"), ("milliliters", "liters")])
        return _convert(rng, VOLUME_UNITS, src, dst)
    glass = rng.choice([100, 125, 200, 250, 500])
    glasses = rng.randint(2, 24)
    jug = Fraction(glass * glasses, 1000)
    assert jug * 1000 / glass == glasses
    question = (
        f"A jug holds {fmt(jug)} liters of juice. How many {glass} mL glasses can be "
        f"filled from it exactly?"
    )
    return numeric(question, glasses, [jug * 100 / glass, jug * 10000 / glass, glasses - 1])


def units_time(rng: random.Random) -> Problem:
    if rng.random() < 0.5:
        h, m = rng.randint(1, 9), rng.randint(1, 59)
        answer = 60 * h + m
        question = rng.choice(
            [
                f"How many minutes are in {plural(h, 'hour')} and {plural(m, 'minute')}?",
                f"A movie runs for {plural(h, 'hour')} and {plural(m, 'minute')}. "
                f"How long is it in minutes?",
            ]
        )
        return numeric(question, answer, [100 * h + m, 60 * h, h + 60 * m])
    minutes = 3 * rng.randint(21, 200)
    answer = Fraction(minutes, 60)
    h, m = divmod(minutes, 60)
    question = f"Convert {minutes} minutes to hours, as a decimal number of hours."
    return numeric(question, answer, [Fraction(minutes, 100), h + Fraction(m, 100), minutes * 60])


def units_speed(rng: random.Random) -> Problem:
    speed = 5 * rng.randint(6, 24)
    quarter_hours = rng.randint(3, 20)
    hours = Fraction(quarter_hours, 4)
    distance = speed * hours
    h, m = divmod(quarter_hours * 15, 60)
    duration = " and ".join(
        part for part in (plural(h, "hour") if h else "", plural(m, "minute") if m else "") if part
    )
    kind = rng.choice(["distance", "speed", "time"])
    if kind == "distance":
        question = (
            f"A car travels at a steady {speed} km/h for {duration}. "
            f"How many kilometers does it cover?"
        )
        misread = h + Fraction(m, 100)  # 2 h 30 min read as 2.30 hours
        return numeric(question, distance, [speed * misread, speed * h, speed + hours])
    if kind == "speed":
        question = (
            f"A train covers {fmt(distance)} km in {duration}. "
            f"What is its average speed in km/h?"
        )
        misread = h + Fraction(m, 100)
        forgot_minutes = distance / h if h else distance
        return numeric(question, speed, [distance / misread, forgot_minutes, speed + 5])
    assert distance / speed == hours
    question = (
        f"A cyclist rides {fmt(distance)} km at a steady {speed} km/h. "
        f"How many hours does the ride take?"
    )
    in_minutes = hours * 60  # right amount of time, wrong unit
    return numeric(question, hours, [h + Fraction(m, 100), in_minutes, hours + 1])


def units_seconds(rng: random.Random) -> Problem:
    if rng.random() < 0.5:
        h = rng.randint(2, 12)
        answer = 3600 * h
        question = rng.choice(
            [f"How many seconds are in {h} hours?", f"Convert {h} hours to seconds."]
        )
        return numeric(question, answer, [60 * h, 360 * h, 6000 * h])
    d = rng.randint(2, 30)
    answer = 24 * d
    question = rng.choice(
        [
            f"How many hours are in {d} days?",
            f"A trip lasts exactly {d} days. How many hours is that?",
        ]
    )
    return numeric(question, answer, [12 * d, 60 * d, 24 * d + 24])


def units_laps(rng: random.Random) -> Problem:
    lap = rng.choice([200, 250, 400, 500])
    laps = rng.randint(3, 40)
    km = Fraction(lap * laps, 1000)
    assert km * 1000 / lap == laps
    question = (
        f"A running track is {lap} meters around. How many laps must a runner complete "
        f"to run {fmt(km)} kilometers?"
    )
    return numeric(question, laps, [km * 100 / lap, km * 10000 / lap, laps + 1])


# --------------------------------------------------------------------------- registry

TEMPLATES: dict[str, list[Template]] = {
    "arithmetic": [
        arith_mul_add, arith_grouped, arith_divide_add, arith_shopping,
        arith_change, arith_sharing, arith_savings,
    ],
    "algebra": [
        alg_linear, alg_both_sides, alg_system, alg_evaluate,
        alg_think_of_number, alg_consecutive, alg_ages,
    ],
    "number_theory": [
        nt_gcd, nt_lcm, nt_remainder, nt_divisor_count,
        nt_sum_primes, nt_next_prime, nt_count_multiples,
    ],
    "geometry": [
        geo_rectangle, geo_triangle_area, geo_circle, geo_pythagoras,
        geo_box, geo_triangle_angle, geo_square,
    ],
    "percentages": [
        pct_of, pct_change, pct_discount, pct_interest, pct_what_percent, pct_reverse,
    ],
    "units": [
        units_length, units_mass, units_volume, units_time,
        units_speed, units_seconds, units_laps,
    ],
}

# Templates that only make sense as multiple-choice; numeric templates are also used for
# multiple-choice items (their gold answer shuffled in among their distractors).
CHOICE_ONLY: dict[str, list[Template]] = {
    "number_theory": [nt_which_prime],
    "geometry": [geo_which_right],
}


# --------------------------------------------------------------------------- assembly


def check_item(item: dict) -> None:
    """Assert the format rules every item must follow."""
    answer, distractors, choices = item["answer"], item["distractors"], item["choices"]
    assert len(distractors) == 3 and len(set(distractors)) == 3, item
    if choices is None:
        values = [Fraction(answer), *(Fraction(d) for d in distractors)]
        assert len(set(values)) == 4, item
        assert all(fmt(v) == s for v, s in zip(values, [answer, *distractors], strict=True)), item
    else:
        assert answer in LETTERS and sorted([answer, *distractors]) == list(LETTERS), item
        assert len(choices) == 4 and len(set(choices)) == 4, item
        for letter, text in zip(LETTERS, choices, strict=True):
            assert f"\n{letter}) {text}" in item["question"], item


def generate(seed: int = DEFAULT_SEED) -> list[dict]:
    """Build the whole task set, deterministically for a given seed."""
    rng = random.Random(seed)
    items: list[dict] = []
    seen: set[tuple[str, ...]] = set()
    for domain in DOMAINS:
        numeric_pool = TEMPLATES[domain]
        choice_pool = CHOICE_ONLY.get(domain, []) + numeric_pool
        n_numeric = n_choice = 0
        for index in range(ITEMS_PER_DOMAIN):
            is_choice = index % MC_EVERY == MC_EVERY - 1
            if is_choice:
                template = choice_pool[n_choice % len(choice_pool)]
                n_choice += 1
            else:
                template = numeric_pool[n_numeric % len(numeric_pool)]
                n_numeric += 1
            for _attempt in range(200):
                problem = template(rng)
                # The same template with the same numbers is the same problem, however worded.
                key = (template.__name__, *re.findall(r"\d+(?:\.\d+)?", problem.question))
                if key not in seen:
                    break
            else:
                raise RuntimeError(f"{template.__name__} keeps repeating questions")
            seen.add(key)
            if is_choice and problem.choices is None:
                problem = to_multiple_choice(problem, rng)
            item = {
                "id": f"{domain}-{index + 1:04d}",
                "domain": domain,
                "question": problem.question,
                "answer": problem.answer,
                "choices": problem.choices,
                "distractors": problem.distractors,
            }
            check_item(item)
            items.append(item)
    assert len({item["question"] for item in items}) == len(items)
    return items


def render(items: list[dict]) -> str:
    """The JSONL text of ``items``: one object per line, ``\\n`` endings, final newline."""
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default 7)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output JSONL path")
    args = parser.parse_args(argv)
    items = generate(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(render(items))
    print(f"wrote {len(items)} tasks to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
