"""Answer extraction, normalisation and agreement (``colm_graph.core.answers``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from colm_graph.core.answers import (
    Agreement,
    agreement,
    answers_match,
    extract_answer,
    normalize_answer,
)
from colm_graph.pool.providers.sim.tasks import bundled_tasks

# --- extract_answer -----------------------------------------------------------------


def test_extract_last_answer_line_wins() -> None:
    text = "First try.\nAnswer: 12\nOn reflection that was wrong.\nAnswer: 14\n"
    assert extract_answer(text) == "14"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Reasoning.\nAnswer: 42", "42"),
        ("Reasoning.\n**Answer:** 42", "42"),
        ("Reasoning.\n**Answer: 42**", "42"),
        ("Reasoning.\nFinal answer: 7", "7"),
        ("Reasoning.\nFINAL ANSWER: Paris.", "Paris"),
        ("Reasoning.\nanswer : B", "B"),
        ("  > Answer: `17`", "17"),
        ("So the result is \\boxed{3}.", "3"),
        ("We get \\boxed{\\frac{1}{2}} in the end.", "\\frac{1}{2}"),
        ("\\boxed{1} then \\boxed{{a}{b}}", "{a}{b}"),
        ("Answer: \\boxed{\\dfrac{3}{4}}", "\\dfrac{3}{4}"),
    ],
)
def test_extract_answer_forms(text: str, expected: str) -> None:
    assert extract_answer(text) == expected


def test_answer_line_beats_boxed() -> None:
    assert extract_answer("\\boxed{1}\nAnswer: 2") == "2"


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "I think it is 42 but I am not sure.",
        "Answer: cannot answer",
        "Answer: Cannot answer.",
        "Answer:",
        "Answer: unknown",
        "Answer: N/A",
        "Answer: 5\nAnswer: cannot answer",
        "unbalanced \\boxed{1 + {2}",
    ],
)
def test_extract_no_answer(text: str | None) -> None:
    assert extract_answer(text) is None


@given(st.text())
def test_extract_answer_never_raises(text: str) -> None:
    result = extract_answer(text)
    assert result is None or isinstance(result, str)


@given(st.text(), st.text(alphabet=st.characters(exclude_categories=("Cc", "Zl", "Zp")),
                          min_size=1).map(str.strip).filter(bool))
def test_extract_answer_finds_appended_answer(prefix: str, answer: str) -> None:
    text = f"{prefix}\nAnswer: {answer}"
    got = extract_answer(text)
    # Whatever came before, the final line decides (modulo the trimming of markup).
    if got is not None:
        assert got in answer


# --- normalize_answer ----------------------------------------------------------------


@pytest.mark.parametrize("same", [["1,000", "1000.0", "1e3", "$1,000", "1000", "1000 dollars"],
                                  ["3/4", "0.75", ".75", "\\frac{3}{4}", "\\dfrac{3}{4}"],
                                  ["\\frac{1}{2}", "0.5", "1/2", "5e-1"],
                                  ["(B)", "B)", "b", "B", "B.", "(b)"],
                                  ["15 cm", "15", "15.0", "15 cm."],
                                  ["25%", "25", "25 percent"],
                                  ["-7", "\u22127", "-7.0"]])
def test_normalize_equivalences(same: list[str]) -> None:
    normed = {normalize_answer(a) for a in same}
    assert len(normed) == 1, normed
    assert None not in normed


def test_normalize_distinguishes() -> None:
    assert normalize_answer("0.75") != normalize_answer("0.7")
    assert normalize_answer("1,000") != normalize_answer("100")
    assert normalize_answer("A") != normalize_answer("B")
    assert normalize_answer("-3") != normalize_answer("3")


def test_normalize_number_values() -> None:
    assert float(normalize_answer("1,000") or "nan") == 1000
    assert float(normalize_answer("3/4") or "nan") == 0.75
    assert float(normalize_answer("\\frac{1}{2}") or "nan") == 0.5


def test_normalize_free_text() -> None:
    assert normalize_answer("The Eiffel Tower!") == "eiffel tower"
    assert normalize_answer("  An apple, a pear.  ") == "apple pear"
    assert normalize_answer("Paris") == normalize_answer("paris.")
    assert normalize_answer("the") is None  # only an article: nothing left


def test_normalize_none_and_empty() -> None:
    assert normalize_answer(None) is None
    assert normalize_answer("") is None
    assert normalize_answer("   ") is None


@given(st.text())
def test_normalize_never_raises(text: str) -> None:
    result = normalize_answer(text)
    assert result is None or isinstance(result, str)


@pytest.mark.parametrize("text", ["1" + "0" * 400 + "/3", "1" * 5000 + "/3",
                                  "\\frac{" + "9" * 400 + "}{7}", "1" * 5000, "1e999"])
def test_normalize_huge_numbers_do_not_raise(text: str) -> None:
    result = normalize_answer(text)
    assert result is None or isinstance(result, str)


def test_normalize_is_idempotent_on_gold_answers() -> None:
    for task in bundled_tasks().tasks:
        once = normalize_answer(task.answer)
        assert once is not None
        assert normalize_answer(once) == once, task.id


# --- answers_match -------------------------------------------------------------------


def test_answers_match() -> None:
    assert answers_match("1,000", "1e3")
    assert answers_match("(C)", "c")
    assert answers_match("3/4", "0.75")
    assert not answers_match("3", "4")
    assert not answers_match(None, None)
    assert not answers_match(None, "3")
    assert not answers_match("3", None)
    assert not answers_match("", "")


def test_gold_answers_match_themselves_not_distractors() -> None:
    for task in bundled_tasks().tasks:
        assert answers_match(task.answer, f" {task.answer}. "), task.id
        for d in task.distractors:
            assert not answers_match(task.answer, d), task.id


# --- agreement -----------------------------------------------------------------------


def test_agreement_majority_and_share() -> None:
    ag = agreement(["12", "12.0", "13", "1.2e1"])
    assert ag == Agreement(majority=normalize_answer("12"), share=3 / 4, count=4,
                           unanimous=False, groups=2)


def test_agreement_no_answers_count_in_denominator() -> None:
    ag = agreement(["5", None, "5", None, "6"])
    assert ag.majority == normalize_answer("5")
    assert ag.share == pytest.approx(2 / 5)
    assert ag.count == 5
    assert not ag.unanimous


def test_agreement_nobody_answered() -> None:
    assert agreement([None, None]) == Agreement(None, 0.0, 2, False)
    assert agreement([]) == Agreement(None, 0.0, 0, False)


def test_agreement_unanimous() -> None:
    assert agreement(["B", "(b)", "B)"]).unanimous
    assert agreement(["B", "(b)", "B)"]).share == 1.0
    assert not agreement(["B"]).unanimous  # one answer is not a consensus
    assert not agreement(["B", "B", None]).unanimous  # a missing answer breaks it
    assert not agreement(["B", "C"]).unanimous


def test_agreement_reports_ties_instead_of_hiding_them() -> None:
    assert agreement(["7", "8"]).tied == ("7", "8")
    assert agreement(["8", "7"]).tied == ("8", "7")
    assert agreement([None, "x", "y", "y", "x"]).tied == ("x", "y")
    assert agreement(["7", "8", "8", "7"]).share == 0.5
    assert agreement(["7", "7", "8"]).tied == ()


def test_agreement_tie_broken_by_order() -> None:
    assert agreement(["7", "8"], order=["8", "7"]).majority == "8"
    assert agreement(["7", "8"], order=["8", "7"]).tied == ()
    # order only breaks ties: a strict majority still wins
    assert agreement(["7", "7", "8"], order=["8", "7"]).majority == "7"


@given(st.lists(st.one_of(st.none(), st.sampled_from(["1", "1.0", "2", "B", "(b)", "cat"])),
                max_size=8))
def test_agreement_properties(answers: list[str | None]) -> None:
    ag = agreement(answers)
    assert ag.count == len(answers)
    assert 0.0 <= ag.share <= 1.0
    normed = [normalize_answer(a) for a in answers]
    if ag.majority is None:
        assert all(n is None for n in normed)
        assert ag.share == 0.0
    else:
        best = normed.count(ag.majority)
        assert ag.share == best / len(answers)
        assert all(normed.count(n) <= best for n in normed if n is not None)
        assert (len(ag.tied) > 1) == (sum(normed.count(n) == best for n in set(normed)
                                          if n is not None) > 1)
    assert ag.unanimous == (len(answers) >= 2 and None not in normed and len(set(normed)) == 1)
