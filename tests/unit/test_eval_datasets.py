"""Eval datasets (``colm_graph.evaluation.datasets``) and scorers
(``colm_graph.evaluation.scoring``): every accepted JSONL shape, every malformed file, and
how answers are compared with gold answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from colm_graph.errors import ColmGraphError
from colm_graph.evaluation import Item, Score, load_dataset, score_answer


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """One line per row: dicts/lists are JSON-encoded, strings written as they are."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_one(tmp_path: Path, row: Any) -> Item:
    (item,) = load_dataset(write_jsonl(tmp_path / "data.jsonl", [row]))
    return item


# --- accepted shapes ---------------------------------------------------------------------


def test_our_shape_keeps_every_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "ours.jsonl", [
        {"id": "q1", "question": "What is 6 times 7?", "answer": "42", "domain": "arithmetic"},
        {"id": "q2", "question": "Name the red planet.", "answer": "Mars"},
        {"id": 7, "question": "Half of 9?", "answer": 4.5},
    ])
    a, b, c = load_dataset(path)
    assert a == Item(id="q1", question="What is 6 times 7?", answer="42", kind="numeric",
                     domain="arithmetic", choices=None, image=None)
    assert (b.id, b.answer, b.kind, b.domain) == ("q2", "Mars", "text", None)
    assert (c.id, c.answer, c.kind) == ("7", "4.5", "numeric")  # ids and numbers as text


def test_gsm8k_gold_follows_the_hashes_without_thousands_separators(tmp_path: Path) -> None:
    item = load_one(tmp_path, {
        "question": "A shop sells 617 boxes a day. How many in 2 days?",
        "answer": "It sells 617 * 2 = <<617*2=1234>>1234 boxes.\n#### 1,234",
    })
    assert item.answer == "1234"
    assert item.kind == "numeric"
    assert item.id == "1"  # no id: the line number
    assert score_answer("1234", item) == Score(True, False)
    assert score_answer("1,234", item).correct
    assert not score_answer("617", item).correct


def test_math_boxed_fraction_scores_equal_to_its_decimal(tmp_path: Path) -> None:
    item = load_one(tmp_path, {
        "problem": "Solve $2x = 7$.",
        "solution": "Dividing by 2 gives $x = \\boxed{\\frac{7}{2}}$.",
    })
    assert item.question == "Solve $2x = 7$."
    assert item.answer == "\\frac{7}{2}"
    assert item.kind == "numeric"
    assert score_answer("3.5", item) == Score(True, False)
    assert score_answer("7/2", item).correct
    assert score_answer("\\frac{7}{2}", item).correct
    assert not score_answer("3.6", item).correct
    assert not score_answer("2/7", item).correct


def test_math_gold_is_the_last_boxed_answer(tmp_path: Path) -> None:
    item = load_one(tmp_path, {"problem": "p", "solution": "First \\boxed{1}, finally \\boxed{2}."})
    assert item.answer == "2"


def test_multiple_choice_by_letter_appends_the_options(tmp_path: Path) -> None:
    item = load_one(tmp_path, {"id": "mc", "question": "Capital of France?",
                               "choices": ["London", "Paris", "Rome"], "answer": "b"})
    assert item.kind == "choice"
    assert item.answer == "B"
    assert item.choices == ("London", "Paris", "Rome")
    assert item.question == "Capital of France?\nA) London\nB) Paris\nC) Rome"


def test_multiple_choice_by_index(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mc.jsonl", [
        {"question": "Largest?", "choices": [3, 9, 5], "answer": 1},
        {"question": "First?", "choices": ["x", "y"], "answer": 0},
        {"question": "Last?", "choices": ["a", "b", "c", "d"], "answer": 3},
    ])
    items = load_dataset(path)
    assert [i.answer for i in items] == ["B", "A", "D"]
    assert items[0].choices == ("3", "9", "5")  # options become text
    assert items[0].question == "Largest?\nA) 3\nB) 9\nC) 5"


def test_multiple_choice_options_already_in_the_question_are_not_repeated(
        tmp_path: Path) -> None:
    question = "Capital of France?\nA) London\nB) Paris\nC) Rome"
    item = load_one(tmp_path, {"question": question, "choices": ["London", "Paris", "Rome"],
                               "answer": "B"})
    assert item.question == question
    assert item.question.count("Paris") == 1


def test_relative_images_are_relative_to_the_dataset_file(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    data = tmp_path / "sets"
    data.mkdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the dataset's folder
    (data / "img").mkdir()
    (data / "img" / "cat.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "abs.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    absolute = str(tmp_path / "abs.png")
    path = write_jsonl(data / "vision.jsonl", [
        {"id": "1", "question": "What animal?", "answer": "cat", "image": "img/cat.png"},
        {"id": "2", "question": "What colour?", "answer": "red", "image": absolute},
        {"id": "3", "question": "No picture", "answer": "none needed"},
    ])
    one, two, three = load_dataset(path)
    assert Path(one.image or "") == data / "img" / "cat.png"
    assert two.image == absolute
    assert three.image is None
    # a missing image is refused when the dataset is loaded, naming file:line
    bad = write_jsonl(data / "bad.jsonl", [
        {"id": "1", "question": "q", "answer": "a", "image": "img/dog.png"}])
    with pytest.raises(ColmGraphError, match=r"bad\.jsonl:1: image .*dog\.png.* not found"):
        load_dataset(bad)


def test_bundled_default_has_300_items() -> None:
    items = load_dataset()
    assert len(items) == 300
    assert load_dataset("colm_tasks") == items
    assert len({i.id for i in items}) == 300
    for item in items:
        assert item.kind in ("numeric", "choice", "text")
        assert item.question.strip() and item.answer.strip()
        assert item.domain
        if item.kind == "choice":
            assert item.choices is not None
            assert item.answer in "ABCDEFGHIJ"[: len(item.choices)]
        # every gold answer scores as correct against itself
        assert score_answer(item.answer, item) == Score(True, False), item.id


def test_limit_takes_the_first_items(tmp_path: Path) -> None:
    assert load_dataset(limit=5) == load_dataset()[:5]
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"id": "a", "question": "q", "answer": "1"},
        {"id": "b", "question": "q", "answer": "2"},
    ])
    assert [i.id for i in load_dataset(path, limit=1)] == ["a"]
    assert [i.id for i in load_dataset(path, limit=10)] == ["a", "b"]


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(ColmGraphError, match="limit"):
        load_dataset(limit=limit)


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    path = tmp_path / "gaps.jsonl"
    path.write_text('\n{"question": "q", "answer": "1"}\n\n   \n{"question": "r", "answer": "2"}\n')
    assert [i.id for i in load_dataset(path)] == ["2", "5"]  # default ids are line numbers


# --- malformed files ---------------------------------------------------------------------

GOOD = {"id": "ok", "question": "What is 1 + 1?", "answer": "2"}

# (name, lines after one good line, text the message must contain, line it must name)
BAD_LINES = [
    ("bad json", ['{"question": "q", "answer": '], "invalid JSON", 2),
    ("not an object", [[1, 2, 3]], "expected a JSON object, got list", 2),
    ("a bare string", ['"just text"'], "expected a JSON object, got str", 2),
    ("missing question", [{"id": "x", "answer": "3"}], "'question'", 2),
    ("blank question", [{"id": "x", "question": "  ", "answer": "3"}], "'question'", 2),
    ("missing answer", [{"id": "x", "question": "q"}], "'answer'", 2),
    ("empty answer", [{"id": "x", "question": "q", "answer": " "}], "'answer'", 2),
    ("boolean answer", [{"id": "x", "question": "q", "answer": True}], "'answer'", 2),
    ("solution without boxed",
     [{"problem": "p", "solution": "the answer is 4"}], "\\boxed", 2),
    ("mc index out of range",
     [{"question": "q", "choices": ["a", "b", "c"], "answer": 3}], "out of range", 2),
    ("mc negative index",
     [{"question": "q", "choices": ["a", "b", "c"], "answer": -1}], "out of range", 2),
    ("mc letter beyond the choices",
     [{"question": "q", "choices": ["a", "b", "c"], "answer": "D"}], "A-C", 2),
    ("mc answer not a letter",
     [{"question": "q", "choices": ["a", "b"], "answer": "maybe"}], "A-B", 2),
    ("choices not a list",
     [{"question": "q", "choices": "a, b, c", "answer": "A"}], "'choices'", 2),
    ("one choice only", [{"question": "q", "choices": ["a"], "answer": "A"}], "'choices'", 2),
    ("eleven choices",
     [{"question": "q", "choices": [str(i) for i in range(11)], "answer": "A"}],
     "'choices'", 2),
    ("image not a string",
     [{"question": "q", "answer": "a", "image": ["x.png"]}], "'image'", 2),
    ("duplicate id", [{"id": "ok", "question": "another", "answer": "3"}],
     "duplicate id 'ok'", 2),
    ("error after blank lines", ["", "  ", "{oops"], "invalid JSON", 4),
]


@pytest.mark.parametrize(("lines", "needle", "lineno"),
                         [pytest.param(lines, needle, n, id=name)
                          for name, lines, needle, n in BAD_LINES])
def test_malformed_line_names_file_and_line(tmp_path: Path, lines: list[Any], needle: str,
                                            lineno: int) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [GOOD, *lines])
    with pytest.raises(ColmGraphError) as info:
        load_dataset(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{lineno}: "), message
    assert needle in message


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(ColmGraphError) as info:
        load_dataset(path)
    assert str(info.value) == f"{path}: no items"


def test_file_of_blank_lines_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_text("\n   \n\n")
    with pytest.raises(ColmGraphError, match="no items"):
        load_dataset(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(ColmGraphError) as info:
        load_dataset(path)
    message = str(info.value)
    assert message.startswith(f"{path}: dataset not found")
    assert "colm_tasks" in message  # says which names are bundled
    assert "\n" not in message


def test_unknown_bundled_name_is_a_missing_file() -> None:
    with pytest.raises(ColmGraphError, match="no_such_set: dataset not found"):
        load_dataset("no_such_set")


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ColmGraphError) as info:
        load_dataset(tmp_path)
    assert str(info.value) == f"{tmp_path}: expected a JSONL or Parquet file, got a directory"


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"question": "caf\xe9?", "answer": "1"}\n'.encode("latin-1"))
    with pytest.raises(ColmGraphError, match="not UTF-8"):
        load_dataset(path)


# --- scorers -----------------------------------------------------------------------------


def numeric(gold: str) -> Item:
    return Item(id="n", question="q", answer=gold, kind="numeric")


@pytest.mark.parametrize(("gold", "answer"), [
    ("1000", "1,000"), ("1000", "1000.0"), ("1,000", "1000"), ("1000", "1e3"),
    ("1000", "$1,000"), ("0.5", "1/2"), ("1/2", "0.5"), ("0.5", ".5"), ("-3", "-3.0"),
    ("12", "12 apples"),
])
def test_numbers_are_compared_by_value(gold: str, answer: str) -> None:
    assert score_answer(answer, numeric(gold)) == Score(True, False)


@pytest.mark.parametrize(("gold", "answer"), [
    ("1000", "100"), ("1000", "1,001"), ("0.5", "1/3"), ("-3", "3"), ("12", "twelve"),
])
def test_different_numbers_are_wrong(gold: str, answer: str) -> None:
    assert score_answer(answer, numeric(gold)) == Score(False, False)


def test_numeric_kind_comes_from_the_gold(tmp_path: Path) -> None:
    item = load_one(tmp_path, {"question": "How many?", "answer": "1,000"})
    assert item.kind == "numeric"
    assert score_answer("1000.0", item).correct


MC = Item(id="mc", question="Capital of France?", answer="B", kind="choice",
          choices=("London", "Paris", "Rome"))


@pytest.mark.parametrize("answer", ["B", "b", "(B)", "B)", "B) Paris", "Paris", "paris."])
def test_choice_letter_or_option_text_is_right(answer: str) -> None:
    assert score_answer(answer, MC) == Score(True, False)


@pytest.mark.parametrize("answer", ["A", "C", "London", "Rome", "Berlin", "D"])
def test_choice_other_letter_or_text_is_wrong(answer: str) -> None:
    assert score_answer(answer, MC) == Score(False, False)


def test_choice_single_character_option_text_maps_to_its_letter() -> None:
    item = Item(id="mc", question="2 + 2?", answer="B", kind="choice", choices=("3", "4", "5"))
    assert score_answer("4", item).correct
    assert score_answer("4.0", item).correct
    assert score_answer("B", item).correct
    assert not score_answer("3", item).correct
    assert not score_answer("A", item).correct


def test_choice_loaded_from_file_scores_option_text(tmp_path: Path) -> None:
    item = load_one(tmp_path, {"question": "Largest?", "choices": [3, 19, 5], "answer": 1})
    assert score_answer("19", item).correct
    assert score_answer("B", item).correct
    assert not score_answer("5", item).correct


TEXT = Item(id="t", question="Tallest tower in Paris?", answer="The Eiffel Tower", kind="text")


@pytest.mark.parametrize("answer", ["eiffel tower", "Eiffel Tower.", "the EIFFEL tower",
                                    "  Eiffel   Tower  ", "Eiffel-Tower"])
def test_text_is_compared_normalised(answer: str) -> None:
    assert score_answer(answer, TEXT) == Score(True, False)


@pytest.mark.parametrize("answer", ["Louvre", "Eiffel", "Tower Eiffel"])
def test_other_text_is_wrong(answer: str) -> None:
    assert score_answer(answer, TEXT) == Score(False, False)


@pytest.mark.parametrize("item", [numeric("42"), MC, TEXT], ids=["numeric", "choice", "text"])
@pytest.mark.parametrize("answer", [None, "", "   ", "."])
def test_no_answer_is_counted_apart(item: Item, answer: str | None) -> None:
    score = score_answer(answer, item)
    assert score == Score(correct=False, no_answer=True)


def test_a_wrong_answer_is_not_a_no_answer() -> None:
    assert score_answer("41", numeric("42")) == Score(correct=False, no_answer=False)
