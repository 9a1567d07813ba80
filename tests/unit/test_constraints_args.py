"""Run constraints at the entry points, the parts that need no model: bad ``--deadline``,
``--max-upload-bytes`` and dataset fields are one-line errors (exit 2 from the CLI), items
carry their own ``deadline_s`` and ``private``, a resumed eval keeps the constraints it was
started with, and the text line a constrained run prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from colm_graph.cli.main import main
from colm_graph.cli.run import constraints_line
from colm_graph.errors import ColmGraphError
from colm_graph.evaluation import load_dataset

BAD_FLAGS: list[tuple[str, str, str]] = [
    ("--deadline", "0", "argument --deadline: expected a positive number of seconds, got '0'"),
    ("--deadline", "-1", "argument --deadline: expected a positive number of seconds,"
                         " got '-1'"),
    ("--deadline", "soon", "argument --deadline: expected a positive number of seconds,"
                           " got 'soon'"),
    ("--deadline", "inf", "argument --deadline: expected a positive number of seconds,"
                          " got 'inf'"),
    ("--deadline", "nan", "argument --deadline: expected a positive number of seconds,"
                          " got 'nan'"),
    ("--max-upload-bytes", "-1", "argument --max-upload-bytes: expected an integer of at"
                                 " least 0, got -1"),
    ("--max-upload-bytes", "1.5", "argument --max-upload-bytes: expected an integer,"
                                  " got '1.5'"),
]


@pytest.mark.parametrize("command", ["run", "eval"])
@pytest.mark.parametrize(("flag", "value", "message"), BAD_FLAGS)
def test_bad_constraint_flags_are_one_line_and_exit_2(
        command: str, flag: str, value: str, message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "What is 2 + 2?"] if command == "run" else \
        ["eval", "--out", str(tmp_path / "out")]
    assert main([*argv, f"{flag}={value}"]) == 2
    got = capsys.readouterr()
    assert got.out == ""
    assert got.err == f"colm-graph: error: colm-graph {command}: {message}\n"
    assert not (tmp_path / "out").exists()


def write(path: Path, *rows: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def row(**fields: object) -> dict[str, object]:
    return {"id": "a", "question": "What is 2 + 2?", "answer": "4", **fields}


def test_items_carry_their_own_deadline_and_privacy(tmp_path: Path) -> None:
    data = write(tmp_path / "d.jsonl", row(), row(id="b", deadline_s=2, private=True),
                 row(id="c", private=False, deadline_s=0.25))
    got = [(it.id, it.deadline_s, it.private) for it in load_dataset(data)]
    assert got == [("a", None, None), ("b", 2.0, True), ("c", 0.25, False)]


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("deadline_s", 0, "'deadline_s' must be a positive number of seconds, got 0"),
    ("deadline_s", -0.5, "'deadline_s' must be a positive number of seconds, got -0.5"),
    ("deadline_s", "soon", "'deadline_s' must be a positive number of seconds, got 'soon'"),
    ("deadline_s", True, "'deadline_s' must be a positive number of seconds, got True"),
    ("private", "yes", "'private' must be true or false, got 'yes'"),
    ("private", 1, "'private' must be true or false, got 1"),
])
def test_bad_item_constraints_name_the_line_and_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: object,
        expected: str) -> None:
    data = write(tmp_path / "d.jsonl", row(), row(id="b", **{field: value}))
    with pytest.raises(ColmGraphError) as caught:
        load_dataset(data)
    assert str(caught.value) == f"{data}:2: {expected}"
    assert main(["eval", "--dataset", str(data), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"colm-graph: error: {data}:2: {expected}\n"


def test_resume_refuses_other_constraints(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The simulated pool: a first part with ``--private --deadline 30``, recorded in
    run.json; a resume without them is refused, one with them goes on."""
    out = tmp_path / "out"
    argv = ["eval", "--graphs", "single", "--limit", "2", "--out", str(out), "--quiet",
            "--workers", "1"]
    assert main([*argv, "--private", "--deadline", "30"]) == 0
    meta = json.loads((out / "run.json").read_text())
    assert (meta["private"], meta["deadline_s"], meta["private_detect"],
            meta["max_upload_bytes"]) == (True, 30.0, False, None)
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [r["private"] for r in rows] == [True, True]
    capsys.readouterr()
    assert main([*argv, "--resume", "--deadline", "30"]) == 2
    assert capsys.readouterr().err == (f"colm-graph: error: --resume: {out} was started with"
                                       " another private (True, now False)\n")
    assert main([*argv, "--resume", "--deadline", "30", "--private"]) == 0


@pytest.mark.parametrize(("constraints", "line"), [
    ({"private": True}, "constraints: private"),
    ({"private": False, "time_left_s": 0.0124, "deadline_hit": True},
     "constraints: deadline hit, 0.012 s left"),
    ({"private": True, "time_left_s": -0.03, "deadline_hit": True, "upload_left_bytes": 1200},
     "constraints: private; deadline hit, 0.000 s left; upload left 1200 bytes"),
    ({"private": False, "time_left_s": 1.5, "deadline_hit": False},
     "constraints: deadline met, 1.500 s left"),
])
def test_the_text_line_of_a_constrained_run(constraints: dict[str, object], line: str) -> None:
    assert constraints_line(constraints) == line


def test_eval_detect_private_and_an_items_own_private_false(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--detect-private`` (the simulated pool): a question with an e-mail address is
    private, unless its item says ``private: false``; one without is not."""
    mail = "Mail jane.doe@example.com: what is 2 + 2?"
    data = write(tmp_path / "d.jsonl", row(id="mail", question=mail),
                 row(id="said", question=mail, private=False), row(id="plain"))
    out = tmp_path / "out"
    assert main(["eval", "--graphs", "single", "--dataset", str(data), "--out", str(out),
                 "--quiet", "--workers", "1", "--detect-private"]) == 0, \
        capsys.readouterr().err
    rows = {r["id"]: r for r in map(json.loads,
                                    (out / "results.jsonl").read_text().splitlines())}
    assert {i: (r["private"], r["paid_calls"] == 0) for i, r in rows.items()} == {
        "mail": (True, True), "said": (False, False), "plain": (False, False)}
    assert json.loads((out / "run.json").read_text())["private_detect"] is True
