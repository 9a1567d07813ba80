"""How simulated models write (``colm_graph.pool.providers.sim.styles``), read back through the
real answer layer: every style states the same value as the gold, "cannot answer" reads as
no answer, a ``think`` reply changes its mind inside the block and its final answer wins,
and every score form reads back to the value written."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import pytest

from colm_graph.core.answers import (
    answers_match,
    extract_answer,
    number_value,
    parse_score,
    read_answer,
    strip_reasoning,
)
from colm_graph.pool.providers.sim.styles import (
    CANNOT,
    MIXED,
    SCORE_FORMS,
    STYLES,
    pick,
    render_guidance,
    render_plan,
    render_score,
    render_solution,
)
from colm_graph.pool.providers.sim.tasks import SimTask, bundled_tasks

TASKS: list[SimTask] = bundled_tasks().tasks
SEEDS = range(5)
PREFIX = "[simulated m] "
"""What the simulator puts before every reply."""


def solution(style: str, answer: str | None, *, question: str = "", seed: int | str = 0,
             decoy: str | None = None) -> str:
    return PREFIX + render_solution(style, answer, question=question, rng=random.Random(seed),
                                    decoy=decoy)


def _first(name: str, cond: Callable[[SimTask], bool]) -> SimTask:
    found = next((t for t in TASKS if cond(t)), None)
    assert found is not None, f"no bundled task for {name}"
    return found


def _num(t: SimTask) -> float | None:
    return None if t.choices else number_value(t.answer)


SAMPLE: dict[str, SimTask] = {
    "thousands": _first("thousands", lambda t: (_num(t) or 0) >= 1000),
    "big": _first("big", lambda t: (_num(t) or 0) >= 100_000),
    "decimal": _first("decimal", lambda t: "." in t.answer and t.domain == "geometry"),
    "money": _first("money", lambda t: "dollars" in t.question and "." in t.answer),
    "money_whole": _first("money_whole", lambda t: "How many dollars" in t.question
                          and "." not in t.answer),
    "area": _first("area", lambda t: "square" in t.question and not t.choices),
    "volume": _first("volume", lambda t: "cubic" in t.question),
    "speed": _first("speed", lambda t: "km/h?" in t.question),
    "degrees": _first("degrees", lambda t: "degrees" in t.question and not t.choices),
    "percent": _first("percent", lambda t: "what percent" in t.question.lower()),
    "negative": _first("negative", lambda t: t.answer.startswith("-")),
    "fraction": _first("fraction", lambda t: t.answer in ("0.75", "2.75", "8.5", "62.5")),
    "three_decimals": _first("three_decimals", lambda t: re.fullmatch(r"\d+\.\d{3}", t.answer)
                             is not None),
    "units": _first("units", lambda t: t.domain == "units" and not t.choices),
    "choice": _first("choice", lambda t: t.choices is not None),
    "algebra": _first("algebra", lambda t: t.domain == "algebra" and not t.choices),
    "number_theory": _first("number_theory", lambda t: t.domain == "number_theory"),
}


def kinds(task: SimTask) -> list[tuple[str, tuple[str, ...] | None]]:
    """The answer types a run may read this task with: always ``auto``, plus its own."""
    own = ("choice", task.choices) if task.choices else ("number", None)
    return [("auto", None), own]


def reads_as(text: str, value: str, task: SimTask) -> bool:
    return all(answers_match(extract_answer(text, kind=k, choices=c), value, kind=k, choices=c)
               for k, c in kinds(task))


# --- solutions ----------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", list(SAMPLE))
def test_every_style_states_the_gold(style: str, name: str) -> None:
    task = SAMPLE[name]
    for seed in SEEDS:
        text = solution(style, task.answer, question=task.question,
                               seed=seed)
        assert reads_as(text, task.answer, task), (style, task.id, text)
        for wrong in task.distractors:  # a wrong value is read as itself, never as the gold
            text = solution(style, wrong, question=task.question,
                                   seed=seed)
            assert reads_as(text, wrong, task), (style, task.id, wrong, text)
            assert not answers_match(extract_answer(text), task.answer), (style, text)


@pytest.mark.parametrize("style", STYLES)
def test_every_style_on_every_bundled_task(style: str) -> None:
    for task in TASKS:
        text = solution(style, task.answer, question=task.question,
                               seed=task.id)
        assert reads_as(text, task.answer, task), (style, task.id, text)


@pytest.mark.parametrize("style", STYLES)
def test_final_statement_comes_last(style: str) -> None:
    """Nothing after the statement that counts states a value (real models end with it)."""
    for task in SAMPLE.values():
        for seed in SEEDS:
            text = solution(style, task.answer, question=task.question,
                                   seed=seed)
            found = read_answer(text)
            assert found is not None
            after = text[found.span[1]:]
            assert not re.search(r"\d", after), (style, text)
            assert "answer" not in after.lower(), (style, text)


def test_styles_write_differently() -> None:
    task = SAMPLE["thousands"]
    texts = {s: solution(s, task.answer, question=task.question, seed=0)
             for s in STYLES}
    assert len(set(texts.values())) == len(STYLES)
    assert texts["terse"].splitlines()[-1] == f"Answer: {task.answer}"
    assert "#### " in texts["gsm8k"] and "<<" in texts["gsm8k"]
    assert "<think>" in texts["think"] and "</think>" in texts["think"]
    assert "Therefore, the final answer is" in texts["verbose"]
    assert len(texts["verbose"]) > 2 * len(texts["terse"])
    boxed = [solution("latex", "7", seed=s) for s in range(12)]
    assert any("\\boxed{7}" in b for b in boxed)
    markdown = [solution("markdown", "7", seed=s) for s in range(12)]
    assert any("**" in m for m in markdown)


def test_formatted_dresses_values_up() -> None:
    def written(name: str, seed: int = 0) -> str:
        task = SAMPLE[name]
        text = solution("formatted", task.answer, question=task.question,
                               seed=seed)
        found = extract_answer(text)
        assert found is not None
        return found

    money = written("money")
    assert money.startswith("$") and re.search(r"\.\d\d$", money), money
    assert written("money_whole").startswith("$")
    assert written("area").endswith("²")
    assert written("volume").endswith("³")
    assert written("speed").endswith("km/h")
    assert written("degrees").endswith("°")
    assert written("percent").endswith("%")
    big = {written("big", s) for s in range(8)}
    assert all("," in b or "{,}" in b for b in big), big
    negatives = {written("negative", s) for s in range(12)}
    assert any(n.startswith("\u2212") for n in negatives), negatives
    letter = written("choice")
    assert letter[0] == SAMPLE["choice"].answer and ")" in letter


def test_latex_writes_fractions_and_separators() -> None:
    fraction, big = SAMPLE["fraction"], SAMPLE["big"]
    texts = [solution("latex", fraction.answer, question=fraction.question,
                             seed=s) for s in range(16)]
    assert any("\\frac{" in t for t in texts)
    assert all(reads_as(t, fraction.answer, fraction) for t in texts)
    texts = [solution("latex", big.answer, question=big.question,
                             seed=s) for s in range(16)]
    assert any("{,}" in t for t in texts)


# --- cannot answer ------------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("question", ["Who painted the ceiling of the Sistine Chapel?",
                                      "How many people lived in Paris in 1850, 1900 and 1950?"])
def test_cannot_answer_reads_as_no_answer(style: str, question: str) -> None:
    for answer in (None, CANNOT):
        for seed in SEEDS:
            text = solution(style, answer, question=question, seed=seed)
            for kind in ("auto", "number", "text"):
                assert extract_answer(text, kind=kind) is None, (style, kind, text)
            guidance = PREFIX + render_guidance(style, "The drafts say 12 and 15.", answer,
                                                random.Random(seed), question=question)
            assert extract_answer(guidance) is None, (style, guidance)
            assert extract_answer(guidance, kind="number") is None, (style, guidance)


def test_cannot_answer_is_written_naturally() -> None:
    texts = {s: solution(s, CANNOT, seed=0) for s in STYLES}
    assert texts["terse"].endswith("Answer: cannot answer")
    assert len(set(texts.values())) == len(STYLES)
    assert sum("cannot answer" in t for t in texts.values()) == 1


# --- think --------------------------------------------------------------------------------


def _think_block(text: str) -> str:
    m = re.search(r"<think>(.*?)</think>", text, re.DOTALL)
    assert m, text
    return m.group(1)


@pytest.mark.parametrize("name", list(SAMPLE))
def test_think_changes_its_mind_and_the_final_answer_wins(name: str) -> None:
    task = SAMPLE[name]
    for seed in SEEDS:
        text = solution("think", task.answer, question=task.question,
                               seed=seed)
        inner = extract_answer(_think_block(text))
        assert inner is not None and not answers_match(inner, task.answer), text
        assert re.search(r"^Answer: ", _think_block(text), re.MULTILINE)
        assert reads_as(text, task.answer, task), text
        after = strip_reasoning(text)
        assert "Answer: " + inner not in after
        # the final answer is in another form than the block's "Answer:" line
        assert not re.search(r"^Answer:", after.strip(), re.MULTILINE), text


def test_think_uses_the_given_decoy() -> None:
    task = SAMPLE["thousands"]
    wrong = task.distractors[0]
    text = solution("think", task.answer, question=task.question, seed=1,
                           decoy=wrong)
    assert answers_match(extract_answer(_think_block(text)), wrong)
    assert answers_match(extract_answer(text, kind="number"), task.answer)
    # a decoy equal to the answer is not a decoy
    same = solution("think", "7", seed=1, decoy="7")
    assert not answers_match(extract_answer(_think_block(same)), "7")
    assert answers_match(extract_answer(same), "7")


# --- guidance and plans -------------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_guidance_states_the_supported_answer_last(style: str) -> None:
    for task in SAMPLE.values():
        d0, d1 = task.distractors[0], task.distractors[1]
        body = (f"Guidance. a says {d0}; b says {d1}. The drafts conflict. None of the drafts"
                " reach the supported answer; recheck each step.")
        for seed in SEEDS:
            text = PREFIX + render_guidance(style, body, task.answer, random.Random(seed),
                                            question=task.question, decoy=d0)
            assert body in text
            assert reads_as(text, task.answer, task), (style, text)


@pytest.mark.parametrize("style", STYLES)
def test_plans_state_no_answer(style: str) -> None:
    for seed in SEEDS:
        plan = render_plan(style, "540", random.Random(seed))
        assert plan.rstrip().endswith("[sim-plan-target: 540]")
        assert extract_answer(plan) is None, plan
        assert "answer" not in plan.lower()


# --- determinism and settings -------------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_renders_are_deterministic_per_seed(style: str) -> None:
    for task in SAMPLE.values():
        for seed in SEEDS:
            def make(s: int = seed, t: SimTask = task) -> str:
                return solution(style, t.answer, question=t.question,
                                       seed=s, decoy=t.distractors[0])
            assert make() == make()
    varied = {solution(style, "1234", question="Add 1000 and 234.",
                              seed=s) for s in range(20)}
    if style not in ("terse", "gsm8k", "verbose"):
        assert len(varied) > 1, style


def test_pick_mixed_draws_every_choice() -> None:
    rng = random.Random(0)
    assert {pick(MIXED, STYLES, rng) for _ in range(200)} == set(STYLES)
    assert {pick(MIXED, SCORE_FORMS, rng) for _ in range(200)} == set(SCORE_FORMS)
    assert pick("latex", STYLES, rng) == "latex"


def test_unknown_style_or_form_raises() -> None:
    with pytest.raises(ValueError, match="unknown style"):
        render_solution("fancy", "1", rng=random.Random(0))
    with pytest.raises(ValueError, match="unknown style"):
        render_guidance("fancy", "body", "1", random.Random(0))
    with pytest.raises(ValueError, match="unknown score form"):
        render_score("fancy", 0.5, random.Random(0))
    with pytest.raises(ValueError, match="unknown score field"):
        render_score("plain", 0.5, random.Random(0), field="mood")


# --- scores -------------------------------------------------------------------------------

VALUES = [0.0, 0.05, 0.2, 0.34, 0.5, 0.66, 0.9, 1.0]


def _score_text(form: str, value: float, field: str) -> str:
    line = render_score(form, value, random.Random(0), field=field)
    return f"[simulated m] Checked the candidate.\n{line}"


@pytest.mark.parametrize("field", ["confidence", "difficulty"])
@pytest.mark.parametrize("form", SCORE_FORMS)
def test_score_forms_read_back(form: str, field: str) -> None:
    for value in VALUES:
        text = _score_text(form, value, field)
        got = parse_score(text, field=field)
        assert got is not None, text
        if form == "word" and field == "confidence":  # a word is a band, not a value
            band = (0.75, 1.0) if value >= 0.75 else (0.4, 0.75) if value >= 0.4 else (0, 0.4)
            assert band[0] <= got <= band[1], (text, got)
        else:
            assert got == pytest.approx(value, abs=0.05), (text, got)


def test_score_forms_write_what_they_say() -> None:
    def line(form: str, value: float, field: str = "confidence") -> str:
        return render_score(form, value, random.Random(0), field=field)

    assert line("plain", 0.9) == "Confidence: 0.9"
    assert line("percent", 0.9) == "Confidence: 90%"
    assert line("bold", 0.9) == "**Confidence:** 0.9"
    assert line("fraction", 0.9) == "Confidence: 9/10"
    assert line("word", 0.9) == "Confidence: high"
    assert line("word", 0.5) == "Confidence: medium"
    assert line("word", 0.2) == "Confidence: low"
    assert line("bare", 0.9) == "0.9"
    assert line("plain", 0.34, "difficulty") == "Difficulty: 3.4"
    assert line("fraction", 0.34, "difficulty") == "Difficulty: 3/10"
    assert line("bold", 0.34, "difficulty") == "**Difficulty:** 3"
    assert line("percent", 0.34, "difficulty") == "Difficulty: 34%"
    assert line("bare", 0.34, "difficulty") == "3.4"
    assert line("plain", 1.7) == "Confidence: 1"  # clipped to [0, 1]
    assert line("plain", -0.3, "difficulty") == "Difficulty: 0"
