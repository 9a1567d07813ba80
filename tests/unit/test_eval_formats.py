"""Public benchmark formats read by their field names from JSONL and Parquet
(``colm_graph.evaluation.formats``), and seeded, stratified samples of a dataset
(``load_dataset(sample=...)``, ``colm-graph eval --sample``)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from colm_graph.cli.main import main
from colm_graph.errors import ColmGraphError
from colm_graph.evaluation import Item, load_dataset, score_answer
from colm_graph.evaluation.datasets import sample_items


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_gsm8k_and_math500_rows(tmp_path: Path) -> None:
    gsm, math500 = load_dataset(jsonl(tmp_path / "d.jsonl", [
        {"question": "Tom has 3 bags of 12 apples. How many?",
         "answer": "Each bag has 12.\n3 * 12 = <<3*12=36>>36\n#### 36"},
        {"problem": "Simplify $\\frac{6}{8}$.", "solution": "Divide: $\\boxed{\\frac34}$.",
         "answer": "\\frac{3}{4}", "subject": "Prealgebra", "level": 2,
         "unique_id": "test/prealgebra/1.json"}]))
    assert (gsm.answer, gsm.kind, gsm.domain) == ("36", "numeric", None)
    assert (math500.answer, math500.domain) == ("\\frac{3}{4}", "Prealgebra")
    assert score_answer("0.75", math500).correct


def test_mmlu_rows_take_the_subject_as_domain(tmp_path: Path) -> None:
    (item,) = load_dataset(jsonl(tmp_path / "mmlu.jsonl", [
        {"question": "Which gas do plants take in?", "subject": "high_school_biology",
         "choices": ["Oxygen", "Carbon dioxide", "Helium", "Neon"], "answer": 1}]))
    assert (item.answer, item.kind, item.domain) == ("B", "choice", "high_school_biology")
    assert "B) Carbon dioxide" in item.question


@pytest.mark.parametrize(("labels", "key", "gold"), [
    (["A", "B", "C", "D"], "C", "C"), (["1", "2", "3", "4"], "2", "B")])
def test_arc_choices_with_labels(tmp_path: Path, labels: list[str], key: str,
                                 gold: str) -> None:
    (item,) = load_dataset(jsonl(tmp_path / "arc.jsonl", [
        {"id": "Mercury_1", "question": "What melts ice fastest?", "answerKey": key,
         "choices": {"text": ["shade", "salt", "sun", "wind"], "label": labels}}]))
    assert (item.id, item.answer, item.choices) == ("Mercury_1", gold,
                                                    ("shade", "salt", "sun", "wind"))


def test_arc_answer_key_outside_the_labels_is_refused(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "arc.jsonl", [
        {"question": "Q?", "answerKey": "E",
         "choices": {"text": ["a", "b"], "label": ["A", "B"]}}])
    with pytest.raises(ColmGraphError, match=r"arc.jsonl:1: answer key 'E' is not one of"):
        load_dataset(path)


GPQA = {"Record ID": "rec7", "Question": "Which particle mediates the strong force?",
        "Correct Answer": "Gluon", "Incorrect Answer 1": "Photon",
        "Incorrect Answer 2": "W boson", "Incorrect Answer 3": "Graviton",
        "High-level domain": "Physics"}


def test_gpqa_options_are_shuffled_with_the_seed(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "gpqa.jsonl", [GPQA])
    orders = {}
    for seed in range(8):
        (item,) = load_dataset(path, seed=seed)
        assert item.choices is not None and sorted(item.choices) == sorted(
            ["Gluon", "Photon", "W boson", "Graviton"])
        assert item.choices["ABCD".index(item.answer)] == "Gluon"
        assert (item.id, item.domain, item.kind) == ("rec7", "Physics", "choice")
        orders[seed] = item.choices
    assert load_dataset(path, seed=3)[0].choices == orders[3]  # the same seed, the same order
    assert len(set(orders.values())) > 1
    assert len({o.index("Gluon") for o in orders.values()}) > 1  # the gold is not always A


def test_gpqa_without_wrong_answers_is_refused(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "gpqa.jsonl", [{"Question": "Q?", "Correct Answer": "x"}])
    with pytest.raises(ColmGraphError, match="gpqa.jsonl:1: a GPQA row needs"):
        load_dataset(path)


def test_parquet_files_read_like_jsonl(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows: list[dict[str, Any]] = [
            {"question": "What is 2 + 3?", "answer": "#### 5", "domain": "arithmetic",
             "choices": None},  # a Parquet table has one schema: a null where not given
            {"question": "Pick the prime.", "choices": ["4", "6", "7"], "answer": "C",
             "domain": "numbers"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    from_parquet = load_dataset(tmp_path / "d.parquet")
    from_jsonl = load_dataset(jsonl(tmp_path / "d.jsonl", rows))
    assert from_parquet == from_jsonl and from_parquet[1].answer == "C"
    arc = [{"question": "Q?", "answerKey": "B",
            "choices": {"text": ["x", "y"], "label": ["A", "B"]}}]
    pq.write_table(pa.Table.from_pylist(arc), tmp_path / "arc.parquet")
    assert load_dataset(tmp_path / "arc.parquet")[0].answer == "B"


def test_a_broken_parquet_file_is_one_clear_line(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    bad = tmp_path / "d.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(ColmGraphError, match=r"d.parquet: not a readable Parquet file: "):
        load_dataset(bad)
    rows = tmp_path / "rows.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.Table.from_pylist([{"question": "Q?", "answer": None}]), rows)
    with pytest.raises(ColmGraphError, match=r"rows.parquet: row 1: expected an 'answer'"):
        load_dataset(rows)


# -- samples ----------------------------------------------------------------------------------
def _items(sizes: dict[str | None, int]) -> list[Item]:
    out, n = [], 0
    for domain, size in sizes.items():
        for _ in range(size):
            out.append(Item(id=f"i{n}", question=f"q{n}", answer="1", kind="numeric",
                            domain=domain))
            n += 1
    return out


def test_a_sample_keeps_each_domain_share() -> None:
    items = _items({"arithmetic": 50, "algebra": 30, "geometry": 20})
    got = sample_items(items, 10, seed=4)
    assert Counter(it.domain for it in got) == {"arithmetic": 5, "algebra": 3, "geometry": 2}
    assert [it.id for it in got] == sorted((it.id for it in got), key=lambda s: int(s[1:]))
    assert sample_items(items, 10, seed=4) == got  # seeded
    assert sample_items(items, 10, seed=5) != got


def test_a_sample_rounds_by_largest_remainder_and_keeps_small_domains() -> None:
    items = _items({"a": 45, "b": 45, "c": 10})
    # quotas 3.15, 3.15, 0.7 for 7 items: c has the largest remainder
    assert Counter(it.domain for it in sample_items(items, 7, 0)) == {"a": 3, "b": 3, "c": 1}
    tiny = _items({"a": 97, "b": 2, None: 1})
    got = Counter(it.domain for it in sample_items(tiny, 4, 0))
    assert got["b"] == 1 and got[None] == 1 and sum(got.values()) == 4


def test_a_sample_without_domains_or_larger_than_the_set() -> None:
    items = _items({None: 30})
    got = sample_items(items, 12, seed=1)
    assert len(got) == 12 and len({it.id for it in got}) == 12
    assert sample_items(items, 40, seed=1) == items


def test_the_bundled_set_sampled_by_the_cli(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ev"
    code = main(["eval", "--graphs", "small_only", "--sample", "30", "--seed", "2",
                 "--out", str(out), "--quiet"])
    assert code == 0
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    ids = {r["id"] for r in rows}
    want = {it.id for it in load_dataset("colm_tasks", sample=30, seed=2)}
    assert ids == want and len(ids) == 30
    assert len({r["domain"] for r in rows}) == len({it.domain for it in load_dataset()})
    assert json.loads((out / "run.json").read_text())["sample"] == 30
    capsys.readouterr()
    code = main(["eval", "--graphs", "small_only", "--sample", "5", "--limit", "5",
                 "--out", str(tmp_path / "x"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and err.count("\n") == 0 and "limit and sample" in err
