"""The CLI over every variant: --graph, --param, --role, --image, --stream, --max-paid-usd."""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib

import pytest

from colm_graph import bundled_graphs, ledger_totals
from colm_graph.cli.main import main

QUESTION = "Find the greatest common divisor of 198 and 36."


def run_json(capsys, *argv: str) -> dict:
    assert main(["run", *argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + \
        chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("graph", bundled_graphs())
def test_every_shipped_variant_runs_from_the_cli(capsys, tmp_path, graph):
    args = [QUESTION, "--graph", graph]
    if graph == "colm_vlm":
        img = tmp_path / "x.png"
        img.write_bytes(tiny_png())
        args += ["--image", str(img)]
    out = run_json(capsys, *args)
    assert out["graph"] == graph and out["path"][-1] == "finish"
    assert out["answer"] is not None and out["simulated"] is True
    totals = ledger_totals(out["ledger"]["calls"])
    assert totals == out["ledger"]["totals"]


def test_graph_by_path_with_params_and_roles(capsys, tmp_path):
    spec = tmp_path / "mine.yaml"
    spec.write_text(
        "name: mine\nparameters: {n: 2}\nroles: {solver: {tier: local, count: 1}}\n"
        "nodes:\n  ask: {kind: answer, role: solver, samples: $n}\n  done: {kind: finish}\n"
        "edges:\n  - {from: START, to: ask}\n  - {from: ask, to: done}\n"
        "  - {from: done, to: END}\n")
    out = run_json(capsys, QUESTION, "--graph", str(spec), "--param", "n=4",
                   "--role", "solver=sim-numbers")
    calls = out["ledger"]["calls"]
    assert len(calls) == 4 and {c["model"] for c in calls} == {"sim-numbers"}


def test_stream_shows_nodes_as_they_finish(capsys):
    assert main(["run", QUESTION, "--graph", "cope", "--stream"]) == 0
    text = capsys.readouterr().out
    streamed = [line for line in text.splitlines() if line.startswith("[")]
    assert streamed[0].startswith("[plan1]")
    assert sum(line.startswith("[execute1]") for line in streamed) == 3  # one per sample
    assert streamed[-1].startswith("[finish]")
    assert text.index("[finish]") < text.index("Graph: cope")  # events before the summary


def test_stream_with_json_keeps_stdout_one_object(capsys):
    assert main(["run", QUESTION, "--stream", "--json"]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)
    assert "[select]" in captured.err


def test_budget_flag_degrades_to_local(capsys):
    out = run_json(capsys, QUESTION, "--graph", "single", "--max-paid-usd", "0")
    assert out["degraded"] is True and out["ledger"]["totals"]["paid_calls"] == 0
    assert "budget" in out["degraded_reasons"][0]
    assert out["answer"] is not None


@pytest.mark.parametrize("argv, needle", [
    (["--graph", "cope", "--top-k", "3"], "--top-k"),
    (["--graph", "nope"], "nope"),
    (["--graph", "/no/such/spec.yaml"], "spec.yaml"),
    (["--param", "nosuch=1"], "--param nosuch"),
    (["--param", "rounds=two"], "--param rounds"),
    (["--param", "rounds"], "--param"),
    (["--role", "server=nope"], "--role server"),
    (["--role", "nosuch=sim-large"], "--role nosuch"),
    (["--graph", "cope", "--home", "sim-arith"], "--home"),
    (["--max-paid-usd", "-1"], "--max-paid-usd"),
    (["--max-paid-usd", "lots"], "--max-paid-usd"),
    (["--image", "/no/such.png"], "--image"),
])
def test_bad_flags_are_one_line_errors(capsys, argv, needle):
    assert main(["run", QUESTION, *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("colm-graph: error:") and needle in err


def test_image_must_be_an_image(capsys, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("not an image")
    assert main(["run", QUESTION, "--graph", "colm_vlm", "--image", str(fake)]) == 2
    assert "not a PNG" in capsys.readouterr().err


def test_image_reaches_the_clients_as_a_data_url(capsys, tmp_path):
    img = tmp_path / "x.png"
    img.write_bytes(tiny_png())
    from colm_graph.cli.run import image_data_url

    url = image_data_url(img)
    assert url == "data:image/png;base64," + base64.b64encode(tiny_png()).decode()


def test_calibrate_then_route_hits_the_target_share(capsys, tmp_path):
    from colm_graph.pool.providers.sim.tasks import bundled_tasks

    tasks = bundled_tasks().tasks
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(json.dumps({"question": t.question, "label": 1}) + "\n"
                                for t in tasks[:120]))
    assert main(["calibrate", str(labelled), "--target-share", "0.25", "--json"]) == 0
    cal = json.loads(capsys.readouterr().out)
    assert abs(cal["achieved_share"] - 0.25) <= 1 / 120
    paid = 0
    for t in tasks[:40]:
        out = run_json(capsys, t.question, "--graph", "route", "--param",
                       f"threshold={cal['threshold']}")
        paid += out["ledger"]["totals"]["paid_calls"]
    assert 0.05 <= paid / 40 <= 0.5  # same distribution, so near the calibrated 25%


@pytest.mark.parametrize("argv, needle", [
    (["/no/such.jsonl", "--target-share", "0.3"], "such.jsonl"),
    (["x.jsonl", "--target-share", "1.5"], "--target-share"),
    (["x.jsonl"], "--target-share"),
])
def test_calibrate_errors(capsys, argv, needle):
    assert main(["calibrate", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err


def test_trace_file_is_written(capsys, tmp_path):
    page = tmp_path / "run.html"
    out = run_json(capsys, QUESTION, "--graph", "cope", "--trace", str(page))
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") or html.lstrip().lower().startswith("<!doctype")
    assert out["answer"] in html and "Stage 1" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", html)  # nothing fetched
