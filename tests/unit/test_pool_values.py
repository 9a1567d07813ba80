"""Pool values that used to be accepted silently (issue 10, inputs): infinite prices,
booleans where numbers are expected, and a key given twice; refused with one line through the
CLI (exit 2), naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from colm_graph.cli.main import main

BASE = "models:\n  - name: a\n    provider: sim\n    tier: local\n"


@pytest.mark.parametrize(
    ("extra", "line", "says"),
    [("    price: {input: .inf, output: 1}\n", 5, "price.input (model 'a'): input should be a"
      " finite number, got inf"),
     ("    price: {input: 1, output: .nan}\n", 5, "price.output"),
     ("    max_tokens: true\n", 5, "max_tokens (model 'a'): expected a number, got true"),
     ("    temperature: false\n", 5, "temperature (model 'a'): expected a number, got false"),
     ("    sim: {skills: {arithmetic: true}}\n", 5, "sim.skills"),
     ("    tier: paid\n", 5, "invalid YAML: duplicate key 'tier' (first given at line 4)")],
)
def test_bad_pool_values_are_refused_in_one_line(tmp_path: Path, capsys, extra: str, line: int,
                                                 says: str) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(BASE + extra, encoding="utf-8")
    rc = main(["run", "What is 2 + 2?", "--models", str(pool), "--graph", "single",
               "--role", "solver=a"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1, err
    assert f"{pool}:{line}:" in err[0] and says in err[0], err[0]


def test_a_duplicated_key_in_a_spec_is_refused(tmp_path: Path) -> None:
    from colm_graph import load_graph
    from colm_graph.errors import ColmGraphError

    spec = tmp_path / "g.yaml"
    spec.write_text("name: g\nroles:\n  s: {tier: local}\nnodes:\n  a: {kind: answer, role: s}\n"
                    "  a: {kind: vote}\nedges:\n  - {from: START, to: a}\n"
                    "  - {from: a, to: END}\n", encoding="utf-8")
    with pytest.raises(ColmGraphError, match=r"g.yaml:6: invalid YAML: duplicate key 'a'"):
        load_graph(str(spec))
