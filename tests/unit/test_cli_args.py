"""``colm-graph`` arguments: bad ones give exit 2 and one line naming the flag; good ones run
the default (simulated) pool and print text or one JSON object whose totals add up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from colm_graph.cli.main import main
from colm_graph.pool import ModelPool

QUESTION = "What is 17 * 23 + 48?"
CALL_KEYS = ("model", "tier", "role", "round", "input_tokens", "output_tokens", "usd")
TOTAL_KEYS = ("usd", "paid_usd", "local_usd", "paid_calls", "local_calls")
LOCAL = ["sim-arith", "sim-algebra", "sim-geometry", "sim-numbers"]


# --- bad arguments ----------------------------------------------------------------

# (id, argv after "run" or the whole argv, substrings the error must contain)
BAD_ARGS: list[tuple[str, list[str], tuple[str, ...]]] = [
    ("top-k-not-int", ["run", "q", "--top-k", "x"], ("--top-k", "expected an integer", "'x'")),
    ("top-k-zero", ["run", "q", "--top-k", "0"], ("--top-k", "from 1 to", "got 0")),
    ("top-k-negative", ["run", "q", "--top-k", "-1"], ("--top-k", "from 1 to", "got -1")),
    ("top-k-too-big", ["run", "q", "--top-k", "1000"], ("--top-k", "got 1000")),
    ("rounds-negative", ["run", "q", "--rounds", "-1"], ("--rounds", "from 0 to", "got -1")),
    ("rounds-too-many", ["run", "q", "--rounds", "99"], ("--rounds", "from 0 to", "got 99")),
    ("rounds-not-int", ["run", "q", "--rounds", "abc"], ("--rounds", "expected an integer",
                                                         "'abc'")),
    ("server-unknown", ["run", "q", "--server", "nope"], ("--server", "unknown model 'nope'",
                                                          "sim-large")),
    ("home-unknown", ["run", "q", "--home", "nope"], ("--home", "unknown model 'nope'",
                                                      "sim-arith")),
    ("clients-unknown", ["run", "q", "--clients", "sim-arith,nope"],
     ("--clients", "unknown model 'nope'")),
    ("clients-only-commas", ["run", "q", "--clients", ","], ("--clients", "','")),
    ("clients-empty", ["run", "q", "--clients", ""], ("--clients", "comma-separated")),
    ("selector-unknown", ["run", "q", "--selector", "magic"], ("--selector", "'magic'",
                                                               "lexical")),
    ("output-home-without-home", ["run", "q", "--output", "home"], ("--output home",
                                                                    "--home")),
    ("output-unknown", ["run", "q", "--output", "best"], ("--output", "'best'")),
    ("unknown-flag", ["run", "q", "--frobnicate"], ("unrecognized arguments", "--frobnicate")),
    ("unknown-command", ["walk", "q"], ("'walk'",)),
    ("missing-question", ["run"], ("required", "question")),
    ("missing-question-with-flags", ["run", "--json", "--top-k", "2"], ("required",
                                                                         "question")),
    ("empty-question", ["run", ""], ("QUESTION", "non-empty")),
    ("whitespace-question", ["run", "  \t\n  "], ("QUESTION", "non-empty")),
    ("huge-question", ["run", "7" * 25_000], ("QUESTION", "25000", "at most 20000")),
]


def _assert_one_line_error(code: int, out: str, err: str, expected: tuple[str, ...]) -> str:
    assert code == 2, (code, err)
    assert out == ""
    assert err.startswith("colm-graph: error: "), err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for part in expected:
        assert part in err, f"{part!r} not in {err!r}"
    return err


@pytest.mark.parametrize("argv, expected", [(a, e) for _, a, e in BAD_ARGS],
                         ids=[i for i, _, _ in BAD_ARGS])
def test_bad_arguments(argv: list[str], expected: tuple[str, ...],
                       capsys: pytest.CaptureFixture[str]) -> None:
    code = main(argv)
    out, err = capsys.readouterr()
    _assert_one_line_error(code, out, err, expected)


def test_huge_question_not_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    main(["run", "7" * 25_000])
    _, err = capsys.readouterr()
    assert len(err) < 200, err


def test_models_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "q", "--models", str(tmp_path)])
    out, err = capsys.readouterr()
    _assert_one_line_error(code, out, err, (str(tmp_path), "directory"))


def test_models_file_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope" / "pool.yaml"
    code = main(["run", "q", "--models", str(missing)])
    out, err = capsys.readouterr()
    _assert_one_line_error(code, out, err, (str(missing), "not found"))


def test_models_file_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pool.yaml"
    path.write_bytes(b"models:\n  - name: \xff\xfe\n")
    code = main(["run", "q", "--models", str(path)])
    out, err = capsys.readouterr()
    _assert_one_line_error(code, out, err, (str(path), "UTF-8"))


def test_range_limits_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    """The edges of the ranges are valid (so the range checks are not off by one)."""
    for argv in (["--top-k", "1"], ["--rounds", "0"], ["--rounds", "20"], ["--top-k", "64"]):
        assert main(["run", QUESTION, "--json", *argv]) == 0, argv
        out, err = capsys.readouterr()
        assert err == ""
        assert json.loads(out)["answers"]


def test_no_command_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([])
    out, err = capsys.readouterr()
    assert code == 2
    assert "usage: colm-graph" in out + err
    assert "run" in out + err


def _subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "colm_graph.cli", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def test_real_process_exit_codes(tmp_path: Path) -> None:
    proc = _subprocess(cwd=tmp_path)
    assert proc.returncode == 2
    assert "usage: colm-graph" in proc.stdout + proc.stderr

    proc = _subprocess("run", "q", "--top-k", "0", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "--top-k" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- good runs (default simulated pool) ---------------------------------------------


def _run_json(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code = main(["run", QUESTION, "--json", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    data = json.loads(out)  # the whole of stdout is ONE JSON value
    assert isinstance(data, dict)
    return data


def _check_summary(data: dict[str, Any]) -> None:
    pool = ModelPool.default()
    for key in ("answer", "answers", "rounds", "ledger"):
        assert key in data, key
    assert isinstance(data["answers"], dict) and data["answers"]
    assert set(data["answers"]) <= set(LOCAL)
    assert isinstance(data["rounds"], int) and not isinstance(data["rounds"], bool)
    assert data["rounds"] >= 0

    calls = data["ledger"]["calls"]
    totals = data["ledger"]["totals"]
    assert calls, "a run makes at least one call"
    for call in calls:
        for key in CALL_KEYS:
            assert key in call, (key, call)
        entry = pool.entry(call["model"])
        assert call["tier"] == entry.tier
        assert call["role"] in ("client", "server", "selector")
        assert 0 <= call["round"] <= data["rounds"]
        assert call["input_tokens"] > 0 and call["output_tokens"] > 0
        expected_usd = (call["input_tokens"] * entry.price.input
                        + call["output_tokens"] * entry.price.output) / 1_000_000
        assert call["usd"] == pytest.approx(expected_usd, abs=1e-12)

    paid = [c for c in calls if c["tier"] == "paid"]
    local = [c for c in calls if c["tier"] == "local"]
    for key in TOTAL_KEYS:
        assert key in totals, key
    assert totals["paid_calls"] == len(paid)
    assert totals["local_calls"] == len(local)
    assert totals["paid_calls"] + totals["local_calls"] == len(calls)
    assert totals["usd"] == pytest.approx(sum(c["usd"] for c in calls), abs=1e-9)
    assert totals["paid_usd"] == pytest.approx(sum(c["usd"] for c in paid), abs=1e-9)
    assert totals["local_usd"] == pytest.approx(sum(c["usd"] for c in local), abs=1e-9)
    assert totals["usd"] == pytest.approx(totals["paid_usd"] + totals["local_usd"], abs=1e-9)
    # Every client that answered made a local call.
    assert set(data["answers"]) <= {c["model"] for c in local}


def test_json_default_run(capsys: pytest.CaptureFixture[str]) -> None:
    data = _run_json(capsys)
    _check_summary(data)
    assert len(data["answers"]) == 2  # default --top-k 2
    assert data["answer"] in data["answers"].values()
    assert data["rounds"] <= 2


def test_json_guidance_is_paid(capsys: pytest.CaptureFixture[str]) -> None:
    data = _run_json(capsys, "--no-skip-guidance")
    _check_summary(data)
    assert data["rounds"] >= 1
    server_calls = [c for c in data["ledger"]["calls"] if c["role"] == "server"]
    assert server_calls and all(c["model"] == "sim-large" for c in server_calls)
    assert data["ledger"]["totals"]["paid_calls"] >= 1
    assert data["ledger"]["totals"]["paid_usd"] > 0


def test_json_top_k_3(capsys: pytest.CaptureFixture[str]) -> None:
    data = _run_json(capsys, "--top-k", "3")
    _check_summary(data)
    assert len(data["answers"]) == 3


def test_json_rounds_0_makes_no_paid_call(capsys: pytest.CaptureFixture[str]) -> None:
    data = _run_json(capsys, "--rounds", "0", "--no-skip-guidance")
    _check_summary(data)
    assert data["rounds"] == 0
    assert data["ledger"]["totals"]["paid_calls"] == 0
    assert data["ledger"]["totals"]["paid_usd"] == 0
    assert all(c["tier"] == "local" for c in data["ledger"]["calls"])
    assert len(data["answers"]) == 2


def test_json_clients(capsys: pytest.CaptureFixture[str]) -> None:
    data = _run_json(capsys, "--clients", "sim-arith,sim-numbers")
    _check_summary(data)
    assert set(data["answers"]) == {"sim-arith", "sim-numbers"}
    local_models = {c["model"] for c in data["ledger"]["calls"] if c["tier"] == "local"}
    assert local_models == {"sim-arith", "sim-numbers"}


def test_json_home(capsys: pytest.CaptureFixture[str]) -> None:
    # sim-geometry is not what the lexical selector picks for this question on its own.
    assert "sim-geometry" not in _run_json(capsys)["answers"]
    data = _run_json(capsys, "--home", "sim-geometry")
    _check_summary(data)
    assert "sim-geometry" in data["answers"]
    assert len(data["answers"]) == 2
    assert data["answer"] == data["answers"]["sim-geometry"]


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", QUESTION])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    assert "Answer:" in out
    assert "simulated" in out
    assert "Cost:" in out
    assert "sim-arith" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)
