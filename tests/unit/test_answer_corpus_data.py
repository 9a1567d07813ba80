"""The answer corpus of issue 9 (``tests/data/answer_corpus.jsonl``) is well formed: enough
cases, every model family, legal verdicts, and traps that really are traps. Running it
through the eval path is ``tests/integration/test_answer_corpus.py``."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
CORPUS = DATA / "answer_corpus.jsonl"
FAMILIES = {"gpt4", "llama", "qwen_math", "deepseek_r1", "terse", "mmlu"}
KINDS = {"numeric", "math", "choice", "text"}
EXPECTED = {"correct", "wrong", "no_answer"}
REQUIRED = {"id", "family", "question", "gold", "kind", "reply", "expected", "note"}
OPTIONAL = {"choices", "reasoning_content", "finish_reason"}


@pytest.fixture(scope="module")
def cases() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def test_corpus_size_and_coverage(cases: list[dict[str, Any]]) -> None:
    assert len(cases) >= 150
    families = Counter(c["family"] for c in cases)
    assert set(families) == FAMILIES
    assert min(families.values()) >= 25, families
    expected = Counter(c["expected"] for c in cases)
    assert expected["wrong"] >= 40 and expected["no_answer"] >= 15, expected
    kinds = Counter(c["kind"] for c in cases)
    assert kinds["choice"] >= 20 and kinds["math"] >= 20, kinds
    latex = [c for c in cases if c["kind"] == "math" and "\\" in c["gold"]]
    assert len(latex) >= 20, "math items with a LaTeX gold"


def test_corpus_fields_are_legal(cases: list[dict[str, Any]]) -> None:
    ids = [c["id"] for c in cases]
    assert len(set(ids)) == len(ids), [i for i, n in Counter(ids).items() if n > 1]
    for c in cases:
        assert REQUIRED <= set(c) <= REQUIRED | OPTIONAL, c["id"]
        assert c["family"] in FAMILIES and c["kind"] in KINDS, c["id"]
        assert c["expected"] in EXPECTED, c["id"]
        assert c["question"].strip() == c["question"] and c["question"], c["id"]
        assert isinstance(c["gold"], str) and c["gold"].strip(), c["id"]
        assert isinstance(c["reply"], str) and c["note"].strip(), c["id"]
        if c["kind"] == "choice":
            assert 2 <= len(c["choices"]) <= 10, c["id"]
            assert c["gold"] in "ABCDEFGHIJ"[: len(c["choices"])], c["id"]
        else:
            assert "choices" not in c, c["id"]
        if "finish_reason" in c:
            assert c["finish_reason"] in {"stop", "length"}, c["id"]
            assert c["finish_reason"] == "stop" or c["expected"] == "no_answer", c["id"]


def test_questions_identify_their_case(cases: list[dict[str, Any]]) -> None:
    """The fake server finds a case by its question inside the prompt: no question may be
    part of another one."""
    questions = [c["question"] for c in cases]
    clashes = [(a, b) for a in questions for b in questions if a != b and a in b]
    assert not clashes, clashes
    assert len(set(questions)) == len(questions)


def _contains_gold(text: str, case: dict[str, Any]) -> bool:
    gold = case["gold"]
    if case["kind"] == "choice":
        return re.search(rf"(?<![A-Za-z]){gold}(?![A-Za-z])", text) is not None
    return gold in text


def test_gold_stated_earlier_traps_hold_the_gold(cases: list[dict[str, Any]]) -> None:
    traps = [c for c in cases if "gold stated earlier" in c["note"]]
    assert len(traps) >= 15
    for c in traps:
        assert c["expected"] == "wrong", c["id"]
        assert _contains_gold(c["reply"], c), c["id"]
    thought = [c for c in cases if "gold reached in reasoning_content" in c["note"]]
    assert thought
    for c in thought:
        assert c["expected"] == "wrong", c["id"]
        assert _contains_gold(c["reasoning_content"], c), c["id"]


def test_every_family_has_traps_and_no_answers(cases: list[dict[str, Any]]) -> None:
    for family in FAMILIES:
        verdicts = Counter(c["expected"] for c in cases if c["family"] == family)
        assert verdicts["wrong"] >= 5 and verdicts["no_answer"] >= 2, (family, verdicts)


def test_generator_reproduces_the_data_file(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_answer_corpus",
                                                  DATA / "make_answer_corpus.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "OUT", tmp_path / "corpus.jsonl")
    module.main()
    assert (tmp_path / "corpus.jsonl").read_bytes() == CORPUS.read_bytes()
