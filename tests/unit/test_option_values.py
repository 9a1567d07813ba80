"""Option values and parameter ranges (issue 9, part 7): a misspelt option value or an
out-of-range parameter is refused with one line - naming file, line and the allowed values in
a spec; naming the flag with ``--param``, ``--rounds``, ``--sweep``; naming the parameter or
the argument from Python (``load_graph(params=...)``, the ``create_*_graph`` factories)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from colm_graph import (
    ConfigError,
    create_cascade_graph,
    create_colm_graph,
    create_colm_vlm_graph,
    create_cope_graph,
    create_debate_graph,
    create_moa_graph,
    create_route_graph,
    create_self_consistency_graph,
    create_single_graph,
)
from colm_graph.cli.main import main
from colm_graph.errors import ColmGraphError
from colm_graph.evaluation import resolve_graphs
from colm_graph.nodes import KINDS, NodeKind, Option
from colm_graph.pool import ModelPool
from colm_graph.spec import SpecError, bundled_graphs, load_graph, load_spec
from colm_graph.spec.validate import (
    IMPLICIT_PARAMS,
    PARAMETERS,
    PREDICATE_ARGS,
    bind_params,
    param_constraints,
    param_error,
)

ROOT = Path(__file__).resolve().parents[2]
GRAPHS = ROOT / "graphs"
NODES = ROOT / "colm_graph" / "nodes"


def _one_line(exc: BaseException) -> str:
    message = str(exc)
    assert isinstance(exc, ColmGraphError), type(exc)
    assert "\n" not in message and "Traceback" not in message, message
    return message


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one stderr line of a refused command (exit 2, nothing on stdout)."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert out == ""
    assert err.startswith("colm-graph: error: ") and err.endswith("\n"), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err[len("colm-graph: error: "):-1]


def _line_of(text: str, needle: str) -> int:
    """1-based line of the one occurrence of ``needle`` in ``text``."""
    assert text.count(needle) == 1, needle
    return text[:text.index(needle)].count("\n") + 1


def _edited(tmp_path: Path, graph: str, old: str, new: str) -> tuple[Path, str]:
    text = (GRAPHS / f"{graph}.yaml").read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    path = tmp_path / f"{graph}_edited.yaml"
    path.write_text(text, encoding="utf-8")
    return path, text


# -- the cases of the issue ---------------------------------------------------------------
# (graph, parameter, bad value as typed, the reason every door gives)
ISSUE_PARAMS = [
    ("cascade", "verifier", "selfcheck",
     "expected one of agreement, self_check, got 'selfcheck'"),
    ("colm", "output", "hom", "expected one of auto, home, majority, got 'hom'"),
    ("colm", "rounds", "-1", "expected an integer from 0 to 20, got -1"),
    ("debate", "rounds", "-1", "expected an integer from 0 to 20, got -1"),
    ("route", "threshold", "1.5", "expected a number from 0 to 1, got 1.5"),
    ("cope", "threshold", "1.5", "expected a number from 0 to 1, got 1.5"),
    ("cascade", "threshold", "1.5", "expected a number from 0 to 1, got 1.5"),
]
ISSUE_IDS = [f"{g}-{p}={v}" for g, p, v, _ in ISSUE_PARAMS]


def test_spec_misspelt_option_value_names_file_line_and_values(tmp_path: Path) -> None:
    path, text = _edited(tmp_path, "colm", "options: {context: guidance}",
                         "options: {context: guidence}")
    line = _line_of(text, "guidence")
    expected = (f"{path}:{line}: nodes.revise.options.context: expected one of guidance,"
                " peers, got 'guidence'")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert _one_line(info.value) == expected
    with pytest.raises(SpecError) as info:
        load_graph(path)
    assert _one_line(info.value) == expected


def test_spec_misspelt_option_value_from_the_cli(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path, text = _edited(tmp_path, "colm", "options: {context: guidance}",
                         "options: {context: guidence}")
    err = _cli_error(["run", "q", "--graph", str(path)], capsys)
    assert err.startswith(f"{path}:{_line_of(text, 'guidence')}: nodes.revise.options.context:")
    assert err.endswith("expected one of guidance, peers, got 'guidence'")


@pytest.mark.parametrize("graph,param,raw,reason", ISSUE_PARAMS, ids=ISSUE_IDS)
def test_spec_default_out_of_range_names_file_and_line(tmp_path: Path, graph: str, param: str,
                                                       raw: str, reason: str) -> None:
    text = (GRAPHS / f"{graph}.yaml").read_text(encoding="utf-8")
    m = re.search(rf"^  {param}: .*$", text, re.MULTILINE)
    assert m, param
    path, text = _edited(tmp_path, graph, m.group(0), f"  {param}: {raw}")
    line = _line_of(text, f"  {param}: {raw}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert _one_line(info.value) == f"{path}:{line}: parameters.{param}: {reason}"


@pytest.mark.parametrize("graph,param,raw,reason", ISSUE_PARAMS, ids=ISSUE_IDS)
def test_cli_param_is_refused_in_one_line(capsys: pytest.CaptureFixture[str], graph: str,
                                          param: str, raw: str, reason: str) -> None:
    err = _cli_error(["run", "q", "--graph", graph, "--param", f"{param}={raw}"], capsys)
    assert err == f"--param {param}: {reason}"


@pytest.mark.parametrize("graph,param,raw,reason", ISSUE_PARAMS, ids=ISSUE_IDS)
def test_python_params_are_refused_in_one_line(graph: str, param: str, raw: str,
                                               reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_graph(graph, params={param: yaml.safe_load(raw)})
    assert _one_line(info.value) == f"parameter {param!r}: {reason}"


FACTORY_CASES = [
    (lambda: create_cascade_graph(verifier="selfcheck"),
     "verifier: expected one of agreement, self_check, got 'selfcheck'"),
    (lambda: create_colm_graph(output="hom"),  # type: ignore[arg-type]
     "output: expected one of auto, home, majority, got 'hom'"),
    (lambda: create_colm_graph(rounds=-1), "rounds: expected an integer from 0 to 20, got -1"),
    (lambda: create_colm_graph(top_k=0), "top_k: expected an integer from 1 to 64, got 0"),
    (lambda: create_colm_graph(top_k=2.0),  # type: ignore[arg-type]
     "top_k: expected an integer from 1 to 64, got 2.0"),
    (lambda: create_colm_vlm_graph(rounds=21),
     "rounds: expected an integer from 0 to 20, got 21"),
    (lambda: create_route_graph(threshold=1.5),
     "threshold: expected a number from 0 to 1, got 1.5"),
    (lambda: create_cope_graph(threshold=-0.1),
     "threshold: expected a number from 0 to 1, got -0.1"),
    (lambda: create_cope_graph(samples=None),  # type: ignore[arg-type]
     "samples: expected an integer from 1 to 64, got None"),
    (lambda: create_cascade_graph(samples=True),
     "samples: expected an integer from 1 to 64, got True"),
    (lambda: create_moa_graph(refine_layers=-1),
     "refine_layers: expected an integer from 0 to 20, got -1"),
    (lambda: create_debate_graph(n_agents=0),
     "n_agents: expected an integer from 1 to 64, got 0"),
    (lambda: create_self_consistency_graph(samples=65),
     "samples: expected an integer from 1 to 64, got 65"),
    (lambda: create_single_graph(max_paid_usd=-1),
     "max_paid_usd: expected a number of at least 0 or null, got -1"),
]


@pytest.mark.parametrize("make,message", FACTORY_CASES,
                         ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in
                              enumerate(FACTORY_CASES)])
def test_factories_refuse_with_the_same_reason(make: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert _one_line(info.value) == message


def test_factories_accept_boundaries_and_integers_for_numbers() -> None:
    create_route_graph(threshold=1)
    create_route_graph(threshold=0)
    create_cascade_graph(verifier="self_check", threshold=1, samples=64)
    create_colm_graph(top_k=64, rounds=20, output="majority")
    create_colm_graph(top_k=1, rounds=0)
    create_debate_graph(n_agents=64, rounds=0)
    create_single_graph(max_paid_usd=0)


def test_cli_flags_and_bad_yaml_types(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli_error(["run", "q", "--param", "rounds=2.0"], capsys) == \
        "--param rounds: expected an integer from 0 to 20, got 2.0"
    assert _cli_error(["run", "q", "--param", "top_k=true"], capsys) == \
        "--param top_k: expected an integer from 1 to 64, got True"
    assert _cli_error(["run", "q", "--param", "skip_guidance_when_agreed=maybe"], capsys) == \
        "--param skip_guidance_when_agreed: expected true or false, got 'maybe'"
    assert _cli_error(["run", "q", "--param", "answer_type=numbr"], capsys) == \
        "--param answer_type: expected one of auto, number, choice, math, text, got 'numbr'"
    assert _cli_error(["run", "q", "--graph", "route", "--param", "threshold=.nan"],
                      capsys) == "--param threshold: expected a number from 0 to 1, got nan"
    assert _cli_error(["run", "q", "--graph", "route", "--param", "scorer=heuristik"],
                      capsys).startswith("--param scorer: expected one of heuristic, llm")
    # a flag goes through the same check as --param
    assert _cli_error(["run", "q", "--graph", "cope", "--rounds", "2"], capsys).startswith(
        "--rounds: graph 'cope' has no such parameter (parameters: answer_type,")


def test_cli_integer_for_a_number_parameter_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """YAML reads ``threshold=1`` as the integer 1: a number parameter takes it."""
    assert main(["run", "What is 2 + 2?", "--graph", "route", "--param", "threshold=1",
                 "--json"]) == 0, capsys.readouterr().err
    capsys.readouterr()


def test_eval_sweep_refused_before_anything_runs(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval"
    err = _cli_error(["eval", "--graphs", "single", "--sweep", "route.threshold=0.3,1.5",
                      "--out", str(out), "--limit", "1", "--quiet"], capsys)
    assert err == "--sweep route.threshold: expected a number from 0 to 1, got 1.5"
    assert not out.exists()
    err = _cli_error(["eval", "--graphs", "single", "--sweep", "cascade.verifier=selfcheck",
                      "--out", str(out), "--quiet"], capsys)
    assert err == "--sweep cascade.verifier: expected one of agreement, self_check, got" \
        " 'selfcheck'"
    err = _cli_error(["eval", "--graphs", "single", "--sweep", "route.thresold=0.3",
                      "--out", str(out), "--quiet"], capsys)
    assert err.startswith("--sweep route.thresold: graph 'route' has no such parameter")
    assert not out.exists()


def test_resolve_graphs_checks_sweep_values() -> None:
    pool = ModelPool.default()
    entries = resolve_graphs(["single"], pool, ["route.threshold=0,1,0.5"])
    assert [e.params for e in entries[1:]] == [{"threshold": 0}, {"threshold": 1},
                                               {"threshold": 0.5}]
    with pytest.raises(ConfigError) as info:
        resolve_graphs(["single"], pool, ["colm.rounds=1,-1"])
    assert _one_line(info.value) == "--sweep colm.rounds: expected an integer from 0 to 20," \
        " got -1"


# -- every shipped spec x every parameter ----------------------------------------------------
def _shipped_params() -> list[tuple[str, str]]:
    out = []
    for graph in bundled_graphs():
        spec = load_spec(graph)
        out += [(graph, name) for name in {**IMPLICIT_PARAMS, **spec.parameters}]
    return out


SHIPPED = _shipped_params()
SHIPPED_IDS = [f"{g}.{p}" for g, p in SHIPPED]


def _bad_values(option: Option) -> list[Any]:
    if option.kind == "enum":
        bad = [option.values[0][:-1] + "x", option.values[0].upper(), 1, True, ""]
    elif option.kind in ("int", "float"):
        bad = [True, False, "x", [1]]
        step = 1 if option.kind == "int" else 0.001
        if option.low is not None:
            bad.append(option.low - step)
        if option.high is not None:
            bad.append(option.high + step)
        if option.kind == "int":
            bad.append(float(option.low if option.low is not None else 0) + 1.0)
        else:
            bad += [math.nan, math.inf]
    elif option.kind == "bool":
        bad = ["yes", 1, 0, "true"]
    elif option.kind == "str":
        bad = [5, True, "", "  "]
    else:  # pragma: no cover - no such parameter in the shipped specs
        bad = []
    return bad if option.nullable else [*bad, None]


def _good_values(option: Option, default: Any) -> list[Any]:
    good = [default]
    if option.kind == "enum":
        good += list(option.values)
    elif option.kind in ("int", "float"):
        good += [b for b in (option.low, option.high) if b is not None]
        if option.kind == "float":
            good += [float(b) for b in (option.low, option.high) if b is not None]
            good += [int(b) for b in (option.low, option.high) if b is not None]
    elif option.kind == "bool":
        good += [True, False]
    elif option.kind == "str":
        good += ["sim-arith"]
    if option.nullable:
        good.append(None)
    return good


def test_every_shipped_parameter_has_allowed_values() -> None:
    for graph, name in SHIPPED:
        assert name in param_constraints(load_spec(graph)), f"{graph}.{name} is unchecked"


@pytest.mark.parametrize("graph,name", SHIPPED, ids=SHIPPED_IDS)
def test_shipped_parameter_refuses_bad_values(graph: str, name: str) -> None:
    spec = load_spec(graph)
    option = param_constraints(spec)[name]
    bad = _bad_values(option)
    assert bad
    for value in bad:
        with pytest.raises(ConfigError) as info:
            bind_params(spec, {name: value})
        message = _one_line(info.value)
        assert message.startswith(f"parameter {name!r}: expected {option.describe()}, got "), \
            message
    with pytest.raises(ConfigError) as info:
        load_graph(graph, params={name: bad[-1]})
    assert _one_line(info.value).startswith(f"parameter {name!r}: expected ")


@pytest.mark.parametrize("graph,name", SHIPPED, ids=SHIPPED_IDS)
def test_shipped_parameter_accepts_default_and_boundaries(graph: str, name: str) -> None:
    spec = load_spec(graph)
    option = param_constraints(spec)[name]
    default = {**IMPLICIT_PARAMS, **spec.parameters}[name]
    for value in _good_values(option, default):
        assert param_error(spec, name, value) is None, (name, value)
        assert bind_params(spec, {name: value})[name] == value or value is None
    if option.kind in ("int", "float"):  # the boundaries also build
        for value in (option.low, option.high):
            if value is not None:
                load_graph(graph, params={name: value})


@pytest.mark.parametrize("graph,name", [s for s in SHIPPED if s[1] not in IMPLICIT_PARAMS],
                         ids=[i for s, i in zip(SHIPPED, SHIPPED_IDS, strict=True)
                              if s[1] not in IMPLICIT_PARAMS])
def test_shipped_default_out_of_range_is_refused_at_load(tmp_path: Path, graph: str,
                                                         name: str) -> None:
    spec = load_spec(graph)
    option = param_constraints(spec)[name]
    bad = _bad_values(option)[0]
    text = (GRAPHS / f"{graph}.yaml").read_text(encoding="utf-8")
    m = re.search(rf"^  {name}: .*$", text, re.MULTILINE)
    assert m
    shown = yaml.safe_dump(bad, default_flow_style=True).strip().removesuffix("...").strip()
    path, text = _edited(tmp_path, graph, m.group(0), f"  {name}: {shown}")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    line = _line_of(text, f"  {name}: {shown}\n")
    assert _one_line(info.value).startswith(f"{path}:{line}: parameters.{name}: expected")


# -- literal values in a spec -----------------------------------------------------------------
LITERALS = [
    # (graph, old, new, place, reason)
    ("cascade", "options: {method: $verifier}", "options: {method: selfcheck}",
     "nodes.verify.options.method", "expected one of agreement, self_check, got 'selfcheck'"),
    ("cascade", "options: {output: majority}", "options: {output: majorty}",
     "nodes.finish.options.output", "expected one of auto, home, majority, got 'majorty'"),
    ("colm_vlm", "include_self: true", "include_self: yes please",
     "nodes.refine.options.include_self", "expected true or false, got 'yes please'"),
    ("cascade", "options: {method: $verifier}", "options: {method: $verifier, unknown: 1.5}",
     "nodes.verify.options.unknown", "expected a number from 0 to 1, got 1.5"),
    ("route", "score: {kind: score, role: router}",
     "score: {kind: score, role: router, options: {unknown: -1}}",
     "nodes.score.options.unknown", "expected a number from 0 to 1, got -1"),
    ("cope", "plan1: {kind: plan, role: small_planner, stage: 1}",
     "plan1: {kind: plan, role: small_planner, stage: 1, options: {fresh: 1}}",
     "nodes.plan1.options.fresh", "expected true or false, got 1"),
    ("colm", "options: {top_k: $top_k}", "options: {top_k: 0}",
     "nodes.select.options.top_k", "expected an integer from 1 to 64, got 0"),
    ("colm", "options: {top_k: $top_k}", "options: {top_k: $top_k, asks: servr}",
     "nodes.select.options.asks", "expected one of client, server, got 'servr'"),
    ("colm", "degrade: {kind: degrade}", "degrade: {kind: degrade, options: {reason: 3}}",
     "nodes.degrade.options.reason", "expected a non-empty string, got 3"),
    ("self_consistency", "samples: $samples}\n  fallback_answer",
     "samples: 0}\n  fallback_answer", "nodes.answer.samples",
     "expected an integer from 1 to 64, got 0"),
    ("cope", "role: small_executor, stage: 1,", "role: small_executor, stage: 65,",
     "nodes.execute1.stage", "expected an integer from 0 to 64, got 65"),
    ("debate", "count: $agents", "count: 0", "roles.agent.count",
     "expected an integer from 1 to 64, got 0"),
    ("colm", "{rounds_at_least: 1}", "{rounds_at_least: -1}",
     "edges[3].branches[1].when.all[1].any[0].rounds_at_least",
     "expected an integer from 0 to 20, got -1"),
    ("route", "when: {score_above: $threshold}", "when: {score_above: 1.5}",
     "edges[1].branches[1].when.score_above", "expected a number from 0 to 1, got 1.5"),
    ("cope", "agreement_at_least: $threshold}\n        to: finish\n      - when:\n"
     "          not:\n            all: [paid_reachable, {budget_left_usd_above: 0},"
     " residency_ok,\n                  {fits_deadline: [large_planner, small_executor]}]",
     "agreement_at_least: 2}\n        to: finish\n      - when:\n"
     "          not:\n            all: [paid_reachable, {budget_left_usd_above: 0},"
     " residency_ok,\n                  {fits_deadline: [large_planner, small_executor]}]",
     "edges[3].branches[0].when.agreement_at_least", "expected a number from 0 to 1, got 2"),
    ("single", "budget_left_usd_above: 0", "budget_left_usd_above: -0.5",
     "edges[0].branches[0].when.not.all[1].budget_left_usd_above",
     "expected a number of at least 0, got -0.5"),
]


@pytest.mark.parametrize("graph,old,new,place,reason", LITERALS,
                         ids=[f"{c[0]}:{c[3]}" for c in LITERALS])
def test_literal_values_are_checked_at_load(tmp_path: Path, graph: str, old: str, new: str,
                                            place: str, reason: str) -> None:
    path, text = _edited(tmp_path, graph, old, new)
    line = text[:text.index(new)].count("\n") + 1 + new[:len(new) - len(new.lstrip())].count(
        "\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = _one_line(info.value)
    assert message.startswith(f"{path}:"), message
    got_line = int(message.split(":")[1])
    assert got_line == line or got_line in range(line, line + new.count("\n") + 1), message
    assert message.endswith(f": {place}: {reason}"), message


def test_every_enum_option_refuses_a_misspelling(tmp_path: Path) -> None:
    for kind_name, kind in KINDS.items():
        for key, option in kind.options.items():
            if option.kind != "enum":
                continue
            role = "  w: {tier: local}\n" if kind.role != "none" else ""
            node_role = ", role: w" if kind.role != "none" else ""
            text = (f"name: probe\nroles:\n{role or '  {}'}\nnodes:\n"
                    f"  n: {{kind: {kind_name}{node_role},"
                    f" options: {{{key}: {option.values[0]}x}}}}\n"
                    "edges:\n  - {from: START, to: n}\n  - {from: n, to: END}\n")
            text = text.replace("roles:\n  {}\n", "")
            path = tmp_path / f"{kind_name}_{key}.yaml"
            path.write_text(text, encoding="utf-8")
            with pytest.raises(SpecError) as info:
                load_spec(path)
            message = _one_line(info.value)
            line = _line_of(text, f"{option.values[0]}x")
            assert message == (f"{path}:{line}: nodes.n.options.{key}: expected one of"
                               f" {', '.join(option.values)}, got '{option.values[0]}x'")


# -- where a parameter is used ----------------------------------------------------------------
USER = """\
name: mine
parameters:
  n: 2
  k: 2
  how: agreement
roles:
  w: {tier: local, count: 1}
nodes:
  ask: {kind: answer, role: w, samples: $k}
  tally: {kind: vote}
  check: {kind: verify, role: w, options: {method: $how}}
  finish: {kind: finish}
edges:
  - {from: START, to: ask}
  - {from: ask, to: tally}
  - from: tally
    branches:
      - when: {rounds_at_least: $n}
        to: finish
    default: check
  - {from: check, to: finish}
  - {from: finish, to: END}
"""


def _user(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_user_parameters_take_the_constraints_of_their_uses(tmp_path: Path) -> None:
    spec = load_spec(_user(tmp_path, USER))
    table = param_constraints(spec)
    assert table["n"] == Option("int", low=0, high=20)
    assert table["k"] == Option("int", low=1, high=64)
    assert table["how"].values == ("agreement", "self_check")
    assert param_error(spec, "how", "selfcheck") == \
        "expected one of agreement, self_check, got 'selfcheck'"
    assert param_error(spec, "n", 21) == "expected an integer from 0 to 20, got 21"
    assert param_error(spec, "k", 0) == "expected an integer from 1 to 64, got 0"


def test_compatible_uses_narrow_the_range(tmp_path: Path) -> None:
    text = USER.replace("{rounds_at_least: $n}", "{rounds_at_least: $k}")
    spec = load_spec(_user(tmp_path, text))
    assert param_constraints(spec)["k"] == Option("int", low=1, high=20)
    with pytest.raises(ConfigError, match=r"^parameter 'k': expected an integer from 1 to 20,"
                       " got 21$"):
        load_graph(spec, params={"k": 21})


@pytest.mark.parametrize("old,new,needle,why", [
    ("{rounds_at_least: $n}", "{all: [{rounds_at_least: $n}, {agreement_below: $n}]}",
     "agreement_below", "parameter $n must be a number from 0 to 1 here, but at"
     " edges[2].branches[0].when.all[0].rounds_at_least it must be an integer from 0 to 20"),
    ("options: {method: $how}}\n  finish: {kind: finish}",
     "options: {method: $how}}\n  finish: {kind: finish, options: {output: $how}}",
     "output: $how", "parameter $how must be one of auto, home, majority here, but at"
     " nodes.check.options.method it must be one of agreement, self_check"),
    ("samples: $k}", "samples: $n}", "samples: $n",
     None),  # n: 0 to 20 and 1 to 64 agree on 1 to 20
    ("  n: 2\n", "  threshold: 0.5\n  n: 2\n", None, None),
    ("{rounds_at_least: $n}", "{rounds_at_least: $threshold}", "$threshold}",
     "parameter $threshold must be an integer from 0 to 20 here, but the well-known parameter"
     " 'threshold' is a number from 0 to 1"),
], ids=["share-and-rounds", "two-enums", "compatible-ints", "no-conflict", "well-known"])
def test_uses_that_disagree_are_refused_at_load(tmp_path: Path, old: str, new: str,
                                               needle: str | None, why: str | None) -> None:
    text = USER.replace(old, new)
    if "$threshold" in text:
        text = text.replace("  n: 2\n", "  n: 2\n  threshold: 1\n")
    path = _user(tmp_path, text)
    if why is None:
        load_spec(path)
        return
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = _one_line(info.value)
    assert message.startswith(f"{path}:{_line_of(text, needle)}: "), message
    assert message.endswith(why), message


def test_spec_default_checked_against_its_use(tmp_path: Path) -> None:
    text = USER.replace("  how: agreement\n", "  how: agrement\n")
    with pytest.raises(SpecError) as info:
        load_spec(_user(tmp_path, text))
    assert _one_line(info.value) == (f"{tmp_path / 'mine.yaml'}:5: parameters.how: expected"
                                     " one of agreement, self_check, got 'agrement'")


def test_unused_parameter_keeps_the_type_of_its_default(tmp_path: Path) -> None:
    spec = load_spec(_user(tmp_path, USER.replace("  n: 2\n", "  n: 2\n  free: 0.5\n")))
    assert "free" not in param_constraints(spec)
    assert param_error(spec, "free", 3) is None
    assert param_error(spec, "free", "x") == "expected a number, got 'x'"


def test_role_option_takes_the_spec_roles(tmp_path: Path) -> None:
    text = USER.replace("roles:\n", "roles:\n  asker: {tier: local}\n").replace(
        "  n: 2\n", "  n: 2\n  who: asker\n").replace(
        "ask: {kind: answer, role: w, samples: $k}",
        "pick: {kind: select, role: w, options: {asks: $who}}\n"
        "  ask: {kind: answer, role: w, over: selected, samples: $k}").replace(
        "{from: START, to: ask}", "{from: START, to: pick}\n  - {from: pick, to: ask}")
    spec = load_spec(_user(tmp_path, text))
    assert param_error(spec, "who", "w") is None
    assert param_error(spec, "who", "server") == "expected one of asker, w, got 'server'"


# -- the registry -----------------------------------------------------------------------------
def test_every_option_read_by_node_code_is_declared() -> None:
    read = set()
    for path in NODES.glob("*.py"):
        read |= set(re.findall(r"ctx\.option\(\s*\"([a-z_]+)\"", path.read_text("utf-8")))
    declared = {key for kind in KINDS.values() for key in kind.options}
    assert read <= declared, read - declared
    assert {"top_k", "asks", "context", "include_self", "method", "unknown", "fresh",
            "output", "reason"} <= declared
    for kind in KINDS.values():
        for option in kind.options.values():
            assert isinstance(option, Option) and option.kind != "any"


def test_node_kind_options_read_as_names() -> None:
    assert "method" in KINDS["verify"].options
    assert sorted(KINDS["revise"].options) == ["context", "include_self"]
    assert KINDS["finish"].option_names == frozenset({"output"})
    legacy = NodeKind(lambda state: {}, options=frozenset({"x"}))
    assert "x" in legacy.options and legacy.options["x"].check(object()) is None


def test_tables_cover_the_issue() -> None:
    assert PARAMETERS["rounds"] == Option("int", low=0, high=20)
    assert PARAMETERS["threshold"] == Option("float", low=0, high=1)
    assert PARAMETERS["answer_type"].values == ("auto", "number", "choice", "math", "text")
    assert IMPLICIT_PARAMS["answer_type"] == "auto"
    assert PREDICATE_ARGS["rounds_at_least"].high == 20
    assert PREDICATE_ARGS["flag"] == Option("bool")


# -- the value type ---------------------------------------------------------------------------
def test_option_value_rules() -> None:
    number = Option("float", low=0, high=1)
    assert number.check(1) is None and number.check(0.5) is None
    assert number.check(True) == "expected a number from 0 to 1, got True"
    assert number.check(math.inf) is not None
    integer = Option("int", low=0)
    assert integer.check(2.0) == "expected an integer of at least 0, got 2.0"
    assert integer.check(10 ** 40) is None
    assert Option("bool").check(0) == "expected true or false, got 0"
    assert Option("float", low=0, nullable=True).check(None) is None
    long = Option("enum", ("a", "b")).check("x" * 5000)
    assert long is not None and len(long) < 120 and "5002 characters" in long
    huge = Option("int", low=0, high=5).check(10 ** 5000)
    assert huge is not None and len(huge) < 120
    assert Option("int", low=1, high=64).merge(Option("int", low=0, high=20)) == \
        Option("int", low=1, high=20)
    assert Option("int", low=0, high=1).merge(Option("float", low=0, high=1)) is None
    assert Option("int", low=5, high=9).merge(Option("int", low=0, high=2)) is None
    assert Option("enum", ("a", "b")).merge(Option("str")) == Option("enum", ("a", "b"))
