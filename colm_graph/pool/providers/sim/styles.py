"""How the simulated models write: answer styles and score forms (pure functions).

The simulator decides *what* a model answers (canonical values: ``"1234"``, ``"-7"``,
``"145.5"``, ``"C"``); this module decides *how* the reply writes it, the way real models
do, so that every reader of a simulated reply goes through real answer extraction. The
answer's value never depends on the style, only its writing; the last explicit statement
of a reply is always the final answer, and nothing after it states another value.

Answer styles (:data:`STYLES`; ``mixed`` picks one per call):

``terse``
    one line of working, then ``Answer: 439`` (the bundled prompts' format).
``markdown``
    a bold heading and bullet steps, then ``**Answer:** 439``, "The answer is **439**.",
    an ``### Answer`` heading with the value under it, or ``**Final answer: 1,234**``.
``latex``
    steps with ``$...$`` maths, then ``$\\boxed{439}$`` (thousands as ``1{,}234``,
    fractions as ``\\frac{3}{4}``, ``\\%``, ``\\$``, ``\\text{ cm}^2``) or Minerva's
    "Final Answer: The final answer is $439$. I hope it is correct."
``gsm8k``
    working lines with ``<<17*23=391>>`` calculator annotations, then ``#### 439``.
``think``
    a ``<think>`` block that first reaches a *different* value, writes ``Answer: <that>``
    inside the block, then corrects itself; after ``</think>`` the final answer in another
    form ("The final answer is 439.", ``**Answer:** 439``, "So the answer is 439.").
``verbose``
    long prose restating the question's numbers and an intermediate result, ending
    "Therefore, the final answer is 439." (sometimes with the question's unit words).
``formatted``
    ``Answer:`` with the value dressed up: thousands separators (``1,234``, ``$1{,}234$``),
    currency when the question is about dollars (``$42.50``), units when it asks for a
    length, area, volume, time, mass, speed or angle (``12 cm²``, ``15 km``, ``35 km/h``,
    ``60°``), ``%`` when it asks "what percent", a unicode minus (``−7``), and a choice as
    its letter and option (``C) 97``).

"Cannot answer" is written per style as a reply that reads as no answer: ``Answer: cannot
answer`` (terse), ``**Answer:** cannot be determined`` (markdown), ``#### unknown``
(gsm8k), ``Final answer: n/a`` (formatted), and declining prose without an answer
statement elsewhere ("I can't determine this from the information given.").

Score forms (:data:`SCORE_FORMS`; ``mixed`` picks one per call), for a verifier's
confidence (0-1) and a router's difficulty (written on the prompt's 0-10 scale):

========== ======================= ==========================
form       confidence 0.9          difficulty 0.34
========== ======================= ==========================
plain      ``Confidence: 0.9``     ``Difficulty: 3.4``
percent    ``Confidence: 90%``     ``Difficulty: 34%``
bold       ``**Confidence:** 0.9`` ``**Difficulty:** 3``
fraction   ``Confidence: 9/10``    ``Difficulty: 3/10``
word       ``Confidence: high``    ``Difficulty: 3 (moderate)``
bare       ``0.9`` on its own line ``3.4`` on its own line
========== ======================= ==========================

(``word``: high from 0.75, medium from 0.4, else low.) All of them read back with
:func:`colm_graph.core.answers.parse_score` to the value written, within rounding (0.05).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation

__all__ = [
    "CANNOT", "MIXED", "SCORE_FORMS", "STYLES", "check_setting", "pick", "render_guidance",
    "render_plan",
    "render_score", "render_solution",
]

STYLES: tuple[str, ...] = ("terse", "markdown", "latex", "gsm8k", "think", "verbose",
                           "formatted")
"""Answer styles; a setting may also be ``mixed`` (one picked per call)."""
SCORE_FORMS: tuple[str, ...] = ("plain", "percent", "bold", "fraction", "word", "bare")
"""How a score is written; a setting may also be ``mixed``."""
MIXED = "mixed"


def check_setting(field: str, value: str) -> str:
    """``value`` if it names a style (``field`` ``style``) or a score form (``score_style``),
    or ``mixed``; else ``ValueError`` naming the allowed values."""
    known = (*(STYLES if field == "style" else SCORE_FORMS), MIXED)
    if value not in known:
        raise ValueError(f"{field} must be one of {', '.join(known)}; got {value!r}")
    return value
CANNOT = "cannot answer"

_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_QUESTION_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")
_OPTION = re.compile(r"^[ \t]*\(?([A-J])\)[ \t]*([^\n]*\S)", re.MULTILINE)
_UNITS = {
    "millimeters": "mm", "centimeters": "cm", "decimeters": "dm", "meters": "m",
    "kilometers": "km", "inches": "in", "feet": "ft", "grams": "g", "kilograms": "kg",
    "milliliters": "mL", "liters": "L", "seconds": "s", "minutes": "min", "hours": "h",
    "days": "days", "degrees": "°",
}


def pick(setting: str, choices: Sequence[str], rng: random.Random) -> str:
    """``setting`` itself, or one of ``choices`` drawn from ``rng`` when it is ``mixed``."""
    return rng.choice(list(choices)) if setting == MIXED else setting


# -- reading the question -----------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    """What the question says about how its answer is written."""

    money: bool = False
    percent: bool = False
    unit: str | None = None
    """Symbol of the answer's unit (``cm²``, ``km/h``, ``°``), if the question names one."""
    unit_words: str | None = None
    """The question's own words for that unit (``square meters``)."""
    options: tuple[tuple[str, str], ...] = ()
    numbers: tuple[str, ...] = ()
    text: str = ""


def _unit(word: str) -> str | None:
    return _UNITS.get(word.lower())


def _context(question: str) -> _Context:
    return replace(_read_context(question), text=question)


def _read_context(question: str) -> _Context:
    q = question.lower()
    options = tuple((m.group(1), m.group(2)) for m in _OPTION.finditer(question))
    body = question
    if options:  # numbers of the stem only, not of the options
        first = _OPTION.search(question)
        body = question[:first.start()] if first else question
    numbers = tuple(_QUESTION_NUMBER.findall(body))
    if options:
        return _Context(options=options, numbers=numbers)
    if re.search(r"\bwhat percent", q):
        return _Context(percent=True, unit_words="percent", numbers=numbers)
    if re.search(r"\bhow many dollars\b|\bin dollars\b", q):
        return _Context(money=True, unit_words="dollars", numbers=numbers)
    m = re.search(r"\bin (square|cubic) (\w+)", q)
    if m and _unit(m.group(2)):
        power = "²" if m.group(1) == "square" else "³"
        return _Context(unit=f"{_unit(m.group(2))}{power}",
                        unit_words=f"{m.group(1)} {m.group(2)}", numbers=numbers)
    if re.search(r"\bin km/h\b", q):
        return _Context(unit="km/h", unit_words="km/h", numbers=numbers)
    m = re.search(r"\b(?:to|in) ([a-z]+)\s*[.?,]", q)
    if m and _unit(m.group(1)):
        return _Context(unit=_unit(m.group(1)), unit_words=m.group(1), numbers=numbers)
    m = re.search(r"\bhow many ([a-z]+)\b", q)
    if m and _unit(m.group(1)):
        return _Context(unit=_unit(m.group(1)), unit_words=m.group(1), numbers=numbers)
    return _Context(numbers=numbers)


# -- writing values -----------------------------------------------------------------------


def _decimal(answer: str) -> Decimal | None:
    if not _NUMBER.match(answer):
        return None
    try:
        return Decimal(answer)
    except InvalidOperation:
        return None


def _plain(d: Decimal) -> str:
    """A decimal without exponent or trailing zeros (``Decimal("1E+2")`` -> ``100``)."""
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _grouped(d: Decimal, sep: str = ",") -> str:
    """``d`` with thousands separators (``1,017.36``; ``sep`` may be ``{,}``)."""
    text = _plain(d)
    sign = "-" if text.startswith("-") else ""
    whole, _, frac = text.lstrip("-").partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    return sign + sep.join(groups) + (f".{frac}" if frac else "")


def _fraction(d: Decimal) -> tuple[int, int] | None:
    """``(p, q)`` with ``d == p / q`` for a small denominator, when ``d`` is not whole."""
    if d == d.to_integral_value():
        return None
    for q in (2, 4, 5, 8):
        p = d * q
        if p == p.to_integral_value():
            return int(p), q
    return None


def _money(d: Decimal) -> str:
    """``$1,017.36``, ``$145.50``, ``$75`` (cents written when there are any)."""
    text = _grouped(d)
    if d != d.to_integral_value() and d * 100 == (d * 100).to_integral_value():
        text = _grouped(d.quantize(Decimal("0.01"))) if "." not in text else text
        whole, _, cents = text.partition(".")
        text = f"{whole}.{cents:0<2}"
    return "-$" + text[1:] if text.startswith("-") else "$" + text


def _formatted(answer: str, ctx: _Context, rng: random.Random) -> str:
    """The ``formatted`` style's writing of a value (same value, dressed up)."""
    if ctx.options and len(answer) == 1 and answer.isalpha():
        text = dict(ctx.options).get(answer)
        return f"{answer}) {text}" if text else f"({answer})"
    d = _decimal(answer)
    if d is None:
        return answer
    if ctx.money:
        return _money(d)
    if ctx.percent:
        return _grouped(d) + "%"
    if ctx.unit is not None:
        sep = "" if ctx.unit == "°" else " "
        return f"{_grouped(d)}{sep}{ctx.unit}"
    if abs(d) >= 1000 and rng.random() < 0.5:
        return f"${_grouped(d, '{,}')}$"
    text = _grouped(d)
    if text.startswith("-") and rng.random() < 0.5:
        text = "\u2212" + text[1:]
    return text


def _latex(answer: str, ctx: _Context, rng: random.Random) -> str:
    """The ``latex`` style's writing of a value, for inside math mode."""
    d = _decimal(answer)
    if d is None:
        return answer
    frac = _fraction(d)
    if frac is not None and not (ctx.money or ctx.percent) and rng.random() < 0.5:
        p, q = frac
        return f"{'-' if p < 0 else ''}\\frac{{{abs(p)}}}{{{q}}}"
    text = _grouped(d, "{,}") if abs(d) >= 1000 and rng.random() < 0.5 else _plain(d)
    if ctx.money and rng.random() < 0.5:
        return "\\$" + text
    if ctx.percent and rng.random() < 0.5:
        return text + "\\%"
    if ctx.unit is not None and ctx.unit[-1] in "²³" and rng.random() < 0.5:
        return f"{text}\\text{{ {ctx.unit[:-1]}}}^{'2' if ctx.unit[-1] == '²' else '3'}"
    return text


def _prose(answer: str, ctx: _Context, rng: random.Random) -> str:
    """The ``verbose`` style's writing: the value, sometimes with the question's unit."""
    d = _decimal(answer)
    if d is None or ctx.unit_words is None or rng.random() < 0.5:
        return answer
    if ctx.money:
        return _money(d)
    return f"{_plain(d)} {ctx.unit_words}"


def _decoy(answer: str, ctx: _Context, rng: random.Random) -> str | None:
    """A value different from ``answer``, for a first attempt that gets it wrong."""
    if ctx.options and len(answer) == 1 and answer.isalpha():
        others = [letter for letter, _ in ctx.options if letter != answer]
        return rng.choice(others) if others else None
    d = _decimal(answer)
    if d is None:
        return None
    return _plain(d + rng.choice([Decimal(-10), Decimal(-2), Decimal(-1), Decimal(1),
                                  Decimal(2), Decimal(10)]))


# -- working ------------------------------------------------------------------------------


_OPERATIONS = (
    ("*", re.compile(r"times|multipl|[*×]|\beach\b|\barea\b|volume|product|circumference|"
                     r"perimeter|%|percent|interest", re.IGNORECASE)),
    ("/", re.compile(r"divid|\bshares?\b|speed|average|\bper\b|[/÷]", re.IGNORECASE)),
    ("+", re.compile(r"\bplus\b|\badd|\bsum\b|\btotal\b|\+", re.IGNORECASE)),
)


def _operation(ctx: _Context) -> tuple[str, str, str, str] | None:
    """``(a, op, b, result)``: one true calculation on the question's first two numbers,
    with the operation the question mentions first (none when it names none)."""
    if len(ctx.numbers) < 2:
        return None
    a, b = Decimal(ctx.numbers[0]), Decimal(ctx.numbers[1])
    if max(abs(a), abs(b)) > 10**6:
        return None
    found = [(m.start(), op) for op, pattern in _OPERATIONS
             if (m := pattern.search(ctx.text)) is not None]
    if not found:
        return None
    op = min(found)[1]
    if op == "*":
        result = a * b
    elif op == "+":
        result = a + b
    else:
        if b == 0 or (a / b).quantize(Decimal("0.000001")) != a / b:
            return None
        result = a / b
    return _plain(a), op, _plain(b), _plain(result)


def _listing(numbers: Sequence[str]) -> str:
    if len(numbers) == 1:
        return numbers[0]
    return ", ".join(numbers[:-1]) + " and " + numbers[-1]


def _default_steps(ctx: _Context) -> list[str]:
    if ctx.options:
        return ["Checked each option against the question."]
    return ["Worked through the question."]


def _sentences(steps: Sequence[str] | None, ctx: _Context) -> list[str]:
    return [s.strip() for s in (steps if steps else _default_steps(ctx)) if s.strip()]


def _given(ctx: _Context) -> list[str]:
    """A sentence restating the question's numbers (none when it has none)."""
    return [f"The question gives {_listing(ctx.numbers[:4])}."] if ctx.numbers else []


# -- solutions ----------------------------------------------------------------------------


_CANNOT = {
    "terse": "Worked through the question.\nAnswer: cannot answer",
    "markdown": ("**Reasoning**\n- The question is outside what I can work out.\n\n"
                 "**Answer:** cannot be determined"),
    "latex": "There is no expression here that I can evaluate, so I cannot determine a value.",
    "gsm8k": "There is not enough information to work this out.\n#### unknown",
    "think": ("<think>\nI don't recognise this question, and there is nothing to compute."
              "\n</think>\n\nI can't determine this from the information given."),
    "verbose": ("Let me read the question carefully and look for quantities I could work"
                " with. I do not recognise what it asks, and there is nothing in it that I"
                " can compute, so I am unable to answer this question with any confidence."),
}
"""How each style declines a question it cannot work out (others: ``n/a``)."""


def _cannot(style: str) -> str:
    return _CANNOT.get(style, "Checked the question.\nFinal answer: n/a")


def _final(style: str, written: str, rng: random.Random) -> str:
    """The closing statement of a reply in ``style`` (the value already written)."""
    if style == "markdown":
        return rng.choice([f"**Answer:** {written}", f"The answer is **{written}**.",
                           f"### Answer\n{written}", f"**Final answer: {written}**"])
    if style == "latex":
        return rng.choice([f"$\\boxed{{{written}}}$",
                           f"The final answer is $\\boxed{{{written}}}$.",
                           f"\\[\\boxed{{{written}}}\\]",
                           f"Final Answer: The final answer is ${written}$. I hope it is"
                           " correct."])
    if style == "gsm8k":
        return f"#### {written}"
    if style == "think":
        return rng.choice([f"The final answer is {written}.", f"**Answer:** {written}",
                           f"So the answer is {written}."])
    if style == "verbose":
        return f"Therefore, the final answer is {written}."
    if style == "formatted":
        return rng.choice([f"Answer: {written}", f"**Answer:** {written}",
                           f"Final answer: {written}"])
    return f"Answer: {written}"


def _written(style: str, answer: str, ctx: _Context, rng: random.Random) -> str:
    if style == "formatted":
        return _formatted(answer, ctx, rng)
    if style == "latex":
        return _latex(answer, ctx, rng)
    if style == "verbose":
        return _prose(answer, ctx, rng)
    if style == "markdown":
        d = _decimal(answer)
        if d is not None and abs(d) >= 1000 and rng.random() < 0.5:
            return _grouped(d)
    return answer


def _calculation(style: str, ctx: _Context) -> str | None:
    op = _operation(ctx)
    if op is None:
        return None
    a, sign, b, result = op
    if style == "latex":
        latex = {"+": "+", "*": "\\times", "/": "\\div"}[sign]
        return f"${a} {latex} {b} = {result}$"
    if style == "gsm8k":
        return f"{a}{sign}{b} = <<{a}{sign}{b}={result}>>{result}"
    return f"{a} {dict([('+', '+'), ('*', '×'), ('/', '÷')])[sign]} {b} = {result}"


def render_solution(style: str, answer: str | None, *, question: str = "",
                    rng: random.Random, steps: Sequence[str] | None = None,
                    decoy: str | None = None) -> str:
    """A reply stating ``answer`` (canonical; ``None`` or ``"cannot answer"``: declines)
    in ``style``, after the reasoning ``steps`` (sentences; default: the question's
    numbers). ``decoy`` is the wrong value a ``think`` reply first reaches (default: one
    near ``answer``). Deterministic for ``rng``'s state."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    ctx = _context(question)
    lines = _sentences(steps, ctx)
    if answer is None or answer.strip().lower() == CANNOT:
        return _cannot(style)
    written = _written(style, answer, ctx, rng)
    final = _final(style, written, rng)
    calc = _calculation(style, ctx)
    if style == "terse":
        return f"{lines[-1]}\n{final}"
    if style == "markdown":
        bullets = "\n".join(f"- {s}" for s in _given(ctx) + ([f"First, {calc}."] if calc
                                                             else []) + lines)
        return f"**Solution**\n{bullets}\n\n{final}"
    if style == "latex":
        work = " ".join(_given(ctx) + lines)
        if calc:
            work += f" For instance, {calc}."
        return f"{work}\n\n{final}"
    if style == "gsm8k":
        working = _given(ctx) + ([calc] if calc else []) + lines
        return "\n".join(working) + f"\nCarrying the steps through gives {answer}.\n{final}"
    if style == "think":
        wrong = decoy if decoy is not None and decoy != answer else _decoy(answer, ctx, rng)
        inner = [" ".join(_given(ctx))] if ctx.numbers else ["Let me work through it."]
        if calc:
            inner.append(f"First, {calc}.")
        if wrong is not None:
            inner.append(f"That gives {wrong}.\nAnswer: {wrong}")
            inner.append(rng.choice([
                "Wait, that's not right. Let me recheck the last step.",
                "Hmm, let me double-check that; I think I slipped on a step.",
                "Actually, I misread a step. Redoing it carefully.",
            ]))
        inner.append(f"Redoing it carefully gives {answer}." if wrong is not None
                     else f"Working it through gives {answer}.")
        # the reasoning in the block; what the reply shows: its steps, then the answer
        return "<think>\n" + "\n".join(inner) + "\n</think>\n\n" + " ".join(lines) + \
            "\n" + final
    if style == "verbose":
        parts = []
        if ctx.numbers:
            parts.append(f"Let me restate the problem: the question involves the numbers"
                         f" {_listing(ctx.numbers[:5])}.")
        else:
            parts.append("Let me restate the problem in my own words before solving it.")
        parts.extend(lines)
        if calc:
            parts.append(f"As an intermediate step, {calc}, and I keep that in mind while"
                         " working through the remaining steps.")
        parts.append(f"Putting everything together and checking each step once more, I"
                     f" arrive at {answer}.")
        return " ".join(parts) + "\n\n" + final
    # formatted
    work = " ".join(_given(ctx) + ([f"({calc}.)"] if calc else []) + lines)
    return f"Working: {work}\n{final}"


def render_guidance(style: str, body: str, answer: str | None, rng: random.Random, *,
                    question: str = "", decoy: str | None = None) -> str:
    """Server guidance in ``style``: the analysis ``body`` (plain sentences, no answer
    statement), then the best-supported ``answer`` stated last (``decoy``: as for
    :func:`render_solution`)."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    if answer is None or answer.strip().lower() == CANNOT:
        return f"{body}\n\n{_cannot(style)}"
    if style == "markdown":
        written = _written(style, answer, _context(question), rng)
        return f"## Guidance\n{body}\n\n**Best-supported answer:** {written}"
    return render_solution(style, answer, question=question, rng=rng, steps=[body],
                           decoy=decoy)


def render_plan(style: str, target: str, rng: random.Random) -> str:
    """A plan without a final answer statement; it carries ``[sim-plan-target: X]`` (the
    simulated executors read it) at the end."""
    steps = ["Identify the quantities.", "Work out each step in order.", "Check the result."]
    marker = f"[sim-plan-target: {target}]"
    if style in ("markdown", "formatted"):
        return "Plan:\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1)) + \
            f" {marker}"
    if style == "think":
        return ("<think>\nThe plan should not solve it, only outline it.\n</think>\n\nPlan: "
                + " ".join(f"{i}. {s}" for i, s in enumerate(steps, 1)) + f" {marker}")
    return "Plan: " + " ".join(f"{i}. {s}" for i, s in enumerate(steps, 1)) + f" {marker}"


# -- scores -------------------------------------------------------------------------------


def _short(value: float, digits: int = 2) -> str:
    text = f"{round(value, digits):.{digits}f}".rstrip("0").rstrip(".")
    return text or "0"


def render_score(form: str, value: float, rng: random.Random,
                 field: str = "confidence") -> str:
    """A score line for ``field`` (``confidence`` or ``difficulty``), ``value`` in [0, 1];
    difficulty is written on the 0-10 scale the prompt asks for. ``bare`` is the value
    alone (the caller puts a sentence before it)."""
    if form not in SCORE_FORMS:
        raise ValueError(f"unknown score form {form!r}; expected one of"
                         f" {', '.join(SCORE_FORMS)}")
    if field not in ("confidence", "difficulty"):
        raise ValueError(f"unknown score field {field!r}")
    value = min(1.0, max(0.0, value))
    label = field.capitalize()
    if form == "percent":
        return f"{label}: {round(100 * value)}%"
    if form == "fraction":
        return f"{label}: {round(10 * value)}/10"
    if field == "confidence":
        if form == "bold":
            return f"**{label}:** {_short(value)}"
        if form == "word":
            word = "high" if value >= 0.75 else "medium" if value >= 0.4 else "low"
            return f"{label}: {word}"
        if form == "bare":
            return _short(value)
        return f"{label}: {_short(value)}"
    rating = 10 * value
    if form == "bold":
        return f"**{label}:** {round(rating)}"
    if form == "word":
        word = "easy" if rating < 4 else "moderate" if rating < 7 else "hard"
        return f"{label}: {round(rating)} ({word})"
    if form == "bare":
        return _short(rating, 1)
    return f"{label}: {_short(rating, 1)}"
