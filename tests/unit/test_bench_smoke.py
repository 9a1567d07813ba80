"""Smoke test of the benchmark script: it runs, and reports every section with numbers.

Timings are never asserted: only that the figures are there and are numbers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("orchestration", "eval_throughput", "footprint", "local_models", "colm_run",
            "eval_workers", "serve_workers", "provider", "issue15")


def _numbers(value: Any) -> list[float]:
    """Every int/float (not bool) anywhere in a JSON value."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []


def _number(report: dict[str, Any], *path: str) -> float:
    value: Any = report
    for key in path:
        assert isinstance(value, dict) and key in value, f"missing {'.'.join(path)}"
        value = value[key]
    assert isinstance(value, int | float) and not isinstance(value, bool), (path, value)
    assert math.isfinite(value), (path, value)
    return float(value)


@pytest.mark.slow
def test_bench_quick_writes_every_section_with_numeric_figures(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(ROOT / "evals" / "bench.py"), "--quick",
                          "--json", str(out)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=280)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "machine:" in run.stdout
    report = json.loads(out.read_text())
    assert report["quick"] is True
    for section in SECTIONS:
        assert section in report, section
    for section in SECTIONS[:3]:
        assert _numbers(report[section]), f"{section} has no numeric figures"

    for graph in ("colm", "cope"):
        for mode in ("ainvoke", "invoke"):
            for key in ("ratio_median", "wall_ms_median", "critical_path_ms_median"):
                _number(report, "orchestration", "graphs", graph, mode, key)
    _number(report, "orchestration", "worst_ratio")
    for key in ("ratio_to_ideal", "ratio_to_sequential", "ideal_items_per_s"):
        _number(report, "eval_throughput", key)
    for layer in ("raw_httpx", "chat_openai_ainvoke", "eval_single_graph", "sequential_invoke"):
        _number(report, "eval_throughput", "layers", layer, "items_per_s")
    _number(report, "footprint", "import", "import_s_median")
    assert isinstance(report["footprint"]["import"]["torch_imported"], bool)
    _number(report, "footprint", "memory", "peak_rss_mb")
    _number(report, "footprint", "memory", "results_lines")
    for section in ("orchestration", "eval_throughput"):
        assert report[section]["status"] in ("PASS", "MISS")

    local = report["local_models"]
    assert isinstance(local, dict)
    assert _numbers(local) or isinstance(local.get("skipped"), str), local

    # issue 15: each figure measured, or "n/a" where the option does not exist yet
    gather = report["orchestration"]["graphs"]["colm_gather"]
    assert isinstance(gather.get("n/a"), str) or _numbers(gather["ainvoke"]), gather
    for label in ("graph_send", "plain_asyncio"):
        for key in ("cpu_ms_per_run", "super_steps", "tasks"):
            _number(report, "colm_run", label, key)
    _number(report, "colm_run", "graph_send", "cpu_over_plain")
    assert report["colm_run"]["graph_send"]["tasks"] >= 14
    workers = report["eval_workers"]
    assert isinstance(workers["workers_supported"], bool)
    _number(report, "eval_workers", "results", "single", "50ms", "workers_1", "ratio_to_ideal")
    assert isinstance(report["serve_workers"].get("skipped"), str)  # not run with --quick
    provider = report["provider"]
    assert "error" not in provider, provider
    for mode in ("json", "stream"):
        for client in ("raw_httpx", "thin", "chat_openai"):
            assert _number({"p": provider["per_call"][0]}, "p", mode, client,
                           "client_cpu_ms_per_call") > 0
    for key in ("provider_share_max", "provider_share_thin", "graph_over_plain_chat_openai"):
        _number(report, "provider", "colm_run", "ratios", key)
    assert report["provider"]["colm_run"]["graph_calls_per_run"] == 14
    assert "== issue 15" in run.stdout and _numbers(report["issue15"])


@pytest.mark.slow
def test_bench_serve_reports_every_worker_count(tmp_path):
    out = tmp_path / "serve.json"
    run = subprocess.run([sys.executable, str(ROOT / "evals" / "bench_serve.py"),
                          "--workers", "1,2", "--clients", "4", "--seconds", "1",
                          "--warmup", "0.5", "--graphs", "single", "--json", str(out)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=280)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [ln.split() for ln in run.stdout.splitlines() if ln.startswith("single")]
    assert [r[1] for r in rows] == ["1", "2"] and rows[0][5] == "1.00"
    report = json.loads(out.read_text())
    for n in ("1", "2"):
        figures = report["results"]["single"][n]
        assert figures["requests"] > 0 and figures["errors"] == 0
        assert 0 < figures["p50_s"] <= figures["p99_s"]


def test_the_stream_bench_runs_and_prints_its_figures() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "evals" / "bench_stream.py"),
                           "--chunks", "3", "--delay", "0.01", "--repeats", "1"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()
            if line.startswith(("single ", "route "))]
    assert [r[0] for r in rows] == ["single", "route"]
    for r in rows:  # first delta, stream end, not streamed (seconds), first / whole
        first, end, whole = (float(x.rstrip("s")) for x in r[1:4])
        assert 0 < first <= end and whole > 0 and math.isfinite(float(r[4]))
