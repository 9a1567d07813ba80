"""Reading answers the way real models write them (issue 9): extraction, equivalence, scores,
bounded symbolic comparison, and what the protocols decide from them."""

from __future__ import annotations

import time

import pytest

from colm_graph import ModelPool, ledger_totals, load_graph
from colm_graph.core.answers import (
    agreement,
    equivalent,
    extract_answer,
    normalize_answer,
    parse_score,
    read_answer,
    strip_reasoning,
)
from tests.support.fakes import ScriptedChatModel


# --- extraction ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Let me add them up. The answer is **439**.", "439"),
        ("17 * 23 = 391, plus 48.\nTherefore, the final answer is 439.", "439"),
        ("Natalia sold 48/2 = 24 clips in May.\n48 + 24 = 72\n#### 72", "72"),
        ("We compute step by step.\n\n### Answer\n3", "3"),
        ("Final Answer: The final answer is $72$. I hope it is correct.", "72"),
        ("<think>First guess.\nAnswer: 400\nWait, 17*23 is 391, not 352.</think>\n"
         "So the total is $\\boxed{439}$.", "439"),
        ("Answer: 439 (computed above)", "439"),
        ("The final answer is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("Adding it all: **Answer: C**", "C"),
        ("The correct option is D.", "D"),
        ('{"reasoning": "sum the parts", "answer": "17"}', "17"),
        ("```json\n{\"reasoning\": \"...\", \"answer\": \"5\"}\n```", "5"),
        ("reasoning the template opened</think>\nThe answer is 9.", "9"),
        ("The answer is 3.5, since the halves add up.", "3.5"),
        ("It costs $42.50 in total, so the answer is $42.50.", "$42.50"),
        ("Answer: \\boxed{1{,}234}", "1{,}234"),
    ],
)
def test_final_statement_in_the_ways_real_models_write_it(text: str, expected: str) -> None:
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "<think>Let me think. 17 * 23 = 391. Answer: 391 so far, then add",  # cut off mid-way
        "I cannot determine this without more information.",
        "Answer: cannot answer",
        "",
        "<think>Answer: 5</think>",
    ],
)
def test_reasoning_and_refusals_state_no_answer(text: str) -> None:
    assert extract_answer(text) is None
    assert extract_answer(text, kind="number") is None


def test_the_final_statement_wins_over_the_gold_value_stated_earlier() -> None:
    text = "First, 400 + 39 = 439. Then we subtract the 10 returned: the answer is 429."
    assert extract_answer(text) == "429"
    think = "<think>439 looks right. Answer: 439</think>\nOn reflection, **Answer: 438**"
    assert extract_answer(think) == "438"


def test_last_number_fallback_only_for_numeric_answers() -> None:
    text = "Adding the three parts gives 12, then doubling gives 24"
    assert extract_answer(text) is None
    assert extract_answer(text, kind="number") == "24"


def test_choice_fallbacks_letter_line_and_option_text() -> None:
    assert extract_answer("Thinking about each option...\n(B)", kind="choice") == "B"
    assert extract_answer("It must be the mitochondria.", kind="choice",
                          choices=["nucleus", "mitochondria", "ribosome"]) == "mitochondria"


def test_the_span_points_at_the_text_that_was_read() -> None:
    text = "Work here.\nThe answer is **439**."
    found = read_answer(text)
    assert found is not None and found.how == "phrase"
    assert "439" in text[found.span[0]:found.span[1]]


def test_strip_reasoning_keeps_positions() -> None:
    text = "<think>x</think>final"
    assert len(strip_reasoning(text)) == len(text)
    assert strip_reasoning(text).strip() == "final"


# --- equivalence -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [("1{,}234", "1234"), ("1,234", "1234"), ("$42.50", "42.5"), ("\\$42.50", "42.5"),
     ("12 cm²", "12"), ("x = 5", "5"), ("439 (computed above)", "439"), ("−7", "-7"),
     ("\\dfrac{\\sqrt3}{2}", "\\frac{\\sqrt{3}}{2}"), ("3/4", "0.75"), ("25%", "25"),
     ("25%", "0.25"), ("x^2+2x+1", "(x+1)^2"), ("2\\sqrt{2}", "\\sqrt{8}"),
     ("15 km", "15"), ("45^\\circ", "45"), ("1\\,234", "1234"), ("USD 1,000", "1000")],
)
def test_equivalent_writings_are_equal(a: str, b: str) -> None:
    assert equivalent(a, b)
    assert equivalent(b, a)


@pytest.mark.parametrize(("a", "b"), [("439", "429"), ("1,234", "123"), ("x^2", "2x"),
                                      ("\\frac{1}{2}", "\\frac{1}{3}"), ("-7", "7")])
def test_different_answers_differ(a: str, b: str) -> None:
    assert not equivalent(a, b)


def test_choice_answers_by_letter_or_option_text() -> None:
    choices = ["Paris", "Rome", "Madrid"]
    for written in ("(B)", "B)", "b", "Option B", "Rome", "B) Rome"):
        assert equivalent("B", written, kind="choice", choices=choices), written
    assert not equivalent("B", "Paris", kind="choice", choices=choices)
    assert normalize_answer("Madrid", "choice", choices) == "C"


def test_agreement_groups_equivalent_writings() -> None:
    ag = agreement(["1,234", "$1{,}234$", "1234.0", "1200"])
    assert ag.share == 0.75 and ag.groups == 2 and not ag.tied


@pytest.mark.parametrize("hostile", ["9^{9^{9^{9}}}", "10^{10^{10}}", "(" * 500 + "1" + ")" * 500,
                                     "\\frac{" * 200 + "1" + "}{2}" * 200, "99999999!",
                                     "2^{99999999999}"])
def test_symbolic_comparison_is_bounded_in_time(hostile: str) -> None:
    start = time.monotonic()
    assert not equivalent(hostile, "3")
    assert time.monotonic() - start < 10


# --- scores ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "field", "value"),
    [("Confidence: 15%", "confidence", 0.15), ("Confidence: 90%", "confidence", 0.9),
     ("**Confidence:** 0.9", "confidence", 0.9), ("**Confidence:** 90%", "confidence", 0.9),
     ("Looks right.\n**0.9**", "confidence", 0.9), ("Confidence: 9/10", "confidence", 0.9),
     ("Confidence: high", "confidence", 0.85), ("Confidence: low", "confidence", 0.25),
     ('{"reasoning": "ok", "confidence": 0.8}', "confidence", 0.8),
     ("**Difficulty:** 3", "difficulty", 0.3), ("Difficulty: 3/5", "difficulty", 0.6),
     ("Difficulty: 7 out of 10", "difficulty", 0.7), ("Difficulty: 40%", "difficulty", 0.4)],
)
def test_scores_in_the_forms_models_write(text: str, field: str, value: float) -> None:
    assert parse_score(text, field=field) == pytest.approx(value)


@pytest.mark.parametrize("text", ["The candidate seems fine.", "", "Confidence: 150%",
                                  "<think>Confidence: 0.9</think>", "Confidence: -0.2"])
def test_unreadable_scores_are_unknown(text: str) -> None:
    assert parse_score(text) is None


# --- what the cascade decides from a verifier's writing -----------------------------------
def _cascade_pool(verifier_reply: str) -> tuple[ModelPool, ScriptedChatModel]:
    pool = ModelPool()
    pool.add("small", ScriptedChatModel(reply="The answer is **12**."), tier="local")
    pool.add("checker", ScriptedChatModel(reply=f"The working is sound.\n{verifier_reply}"),
             tier="local")
    paid = ScriptedChatModel(reply="Answer: 12")
    pool.add("big", paid, tier="paid", price={"input": 1.0, "output": 2.0})
    return pool, paid


@pytest.mark.parametrize(("reply", "escalates"),
                         [("Confidence: 15%", True), ("**Confidence:** 90%", False),
                          ("Confidence: high", False), ("I would not bet on it.", True)])
def test_cascade_escalates_on_what_the_verifier_wrote(reply: str, escalates: bool) -> None:
    pool, paid = _cascade_pool(reply)
    graph = load_graph("cascade", pool=pool, params={"verifier": "self_check", "samples": 1},
                       roles={"local": "small", "verifier": "checker", "paid": "big"})
    out = graph.invoke({"question": "What is 3 * 4?"})
    assert (ledger_totals(out["ledger"])["paid_calls"] == 1) is escalates
    assert len(paid.calls) == int(escalates)
    assert out["score_unknown"] is (reply == "I would not bet on it.")


# --- hostile text: every reader is linear-ish, none backtracks without bound --------------
_N = 50_000
HOSTILE = {
    "spaces": " " * _N + "y\nAnswer: 5", "long_think": "<think>\n" + "x " * (_N // 2) + "</think>",
    "phrases": "the answer is " * (_N // 14), "boxes": "\\boxed{" * (_N // 7), "braces": "{" * _N,
    "parens": "(" * _N, "answer_lines": "Answer: \n" * (_N // 9), "bold": "**a** " * (_N // 6),
    "hashes": "####  " * (_N // 6), "think_tags": "<think></think>" * (_N // 15),
    "labels": "confidence: " * (_N // 12), "numbers": "1," * (_N // 2), "dollars": "$" * _N,
    "tabs": "\t \t" * (_N // 3) + "answer", "copulas": "the x is " * (_N // 9),
    "heading": "### Answer\n" + " " * _N, "unclosed": "<think>" * (_N // 7),
    "remarks": "5 " + "(abc) " * (_N // 6),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_is_read_in_bounded_time(name: str) -> None:
    text = HOSTILE[name]
    start = time.monotonic()
    for kind in ("auto", "number", "choice", "text"):
        extract_answer(text, kind=kind, choices=["a", "b"])
    parse_score(text)
    parse_score(text, field="difficulty")
    normalize_answer(text)
    equivalent(text, "5")
    # generous: catastrophic backtracking on 50,000 characters takes minutes, not seconds
    assert time.monotonic() - start < 20


def test_the_trace_shows_unknown_scores_and_ties(tmp_path) -> None:
    from colm_graph import create_colm_graph
    from colm_graph.viz.trace import write_trace

    pool, _ = _cascade_pool("I would not bet on it.")
    params = {"verifier": "self_check", "samples": 1}
    out = load_graph("cascade", pool=pool, params=params,
                     roles={"local": "small", "verifier": "checker", "paid": "big"}).invoke(
        {"question": "What is 3 * 4?"})
    page = write_trace(tmp_path / "cascade.html", result=out, spec="cascade", pool=pool,
                       params=params).read_text()
    assert "No readable score in this reply" in page

    tie_pool = ModelPool()
    tie_pool.add("a", ScriptedChatModel(reply="Answer: 8"), tier="local")
    tie_pool.add("b", ScriptedChatModel(reply="Answer: 9"), tier="local")
    tie_pool.add("big", ScriptedChatModel(reply="Answer: 9"), tier="paid")
    out = create_colm_graph(pool=tie_pool, rounds=1).invoke({"question": "q"})
    page = write_trace(tmp_path / "colm.html", result=out, spec="colm", pool=tie_pool
                       ).read_text()
    assert "server&#x27;s latest answer" in page or "server's latest answer" in page
