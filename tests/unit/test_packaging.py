"""What users install: import cost, the shipped spec, and a non-editable wheel."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

import colm_graph
from colm_graph import create_colm_graph

ROOT = Path(__file__).resolve().parents[2]


def test_import_pulls_in_no_heavy_or_client_modules():
    code = ("import sys, colm_graph; heavy = [m for m in ('torch', 'transformers', "
            "'langchain_openai', 'langchain_huggingface', 'openai') if m in sys.modules];"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == ""


def test_public_api_is_listed():
    for name in colm_graph.__all__:
        assert hasattr(colm_graph, name), name


def test_factory_and_spec_build_the_same_graph():
    from colm_graph import load_graph

    spec = yaml.safe_load((ROOT / "graphs" / "colm.yaml").read_text())
    by_factory = create_colm_graph().get_graph().draw_mermaid(with_styles=False)
    by_spec = load_graph("colm").get_graph().draw_mermaid(with_styles=False)
    assert by_factory == by_spec
    defaults = inspect.signature(create_colm_graph).parameters
    for key, value in spec["parameters"].items():
        if key in defaults and key != "selector":
            assert defaults[key].default == value, key


@pytest.mark.slow
def test_wheel_ships_prompts_graphs_and_tasks_and_runs_outside_the_repo(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(ROOT)], check=True, timeout=300,
                   capture_output=True)
    wheel = next(dist.glob("colm_graph-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    for required in ("colm_graph/_bundled/graphs/colm.yaml",
                     "colm_graph/_bundled/prompts/server_guide.md",
                     "colm_graph/_bundled/datasets/colm_tasks.jsonl",
                     "colm_graph/pool/default_pool.yaml", "colm_graph/py.typed"):
        assert required in names, required
    assert not any(n.startswith("tests/") for n in names)
    # run from the unpacked wheel, far from the source tree
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    code = ("import colm_graph, colm_graph.core.prompts as p; "
            "assert '_bundled' in str(p.load_prompts().directory), p.load_prompts().directory; "
            "from colm_graph.cli.main import main; raise SystemExit(main(['run', "
            "'What is 17 * 23 + 48?', '--json']))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert '"answer"' in out.stdout and '"simulated": true' in out.stdout


def test_import_is_lazy_and_every_export_resolves():
    code = ("import sys, colm_graph; assert 'langgraph' not in sys.modules;"
            " assert 'langchain_core' not in sys.modules;"
            " [getattr(colm_graph, n) for n in colm_graph.__all__];"
            " assert 'langgraph' in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    with pytest.raises(AttributeError):
        colm_graph.no_such_name  # noqa: B018


def test_no_eval_exec_or_pickle_in_the_package():
    import re

    bad = re.compile(r"(?<![\w.])(eval|exec)\(|\bimport pickle\b|\bpickle\.|yaml\.unsafe_load"
                     r"|yaml\.full_load|Loader=yaml\.(Full|Unsafe)?Loader\b")
    hits = []
    for path in (ROOT / "colm_graph").rglob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if bad.search(line.split("#")[0]):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert hits == []
    loader = (ROOT / "colm_graph" / "core" / "yamlfile.py").read_text(encoding="utf-8")
    assert "class _Loader(yaml.SafeLoader)" in loader
