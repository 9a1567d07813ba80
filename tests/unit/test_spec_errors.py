"""Malformed graph specs are refused with one-line ``SpecError`` messages that name the file,
the line of the problem, the place in the spec and what was expected; binding a valid spec to
a pool with bad roles or parameters is refused with one-line ``ConfigError`` messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from colm_graph.cli.main import main
from colm_graph.errors import ColmGraphError, ConfigError
from colm_graph.pool import ModelPool
from colm_graph.spec import SpecError, load_graph, load_spec

# A valid spec; every case below changes one thing in it. Line numbers, for reference:
#  1 name / 3 parameters / 7 roles / 8 worker / 9 judge / 10 nodes / 11 draft / 12 tally /
# 13 settle / 14 finish / 15 edges / 16 START->draft / 17 draft->tally / 18 from: tally /
# 19 branches / 20 when / 21 to: settle / 22 default / 23 settle->finish / 24 finish->END
BASE = """\
name: probe
description: a probe graph
parameters:
  t: 0.5
  samples: 2
  rounds: 2
roles:
  worker: {tier: local}
  judge: {tier: paid, count: 1}
nodes:
  draft: {kind: answer, role: worker, samples: $samples}
  tally: {kind: vote}
  settle: {kind: aggregate, role: judge}
  finish: {kind: finish}
edges:
  - {from: START, to: draft}
  - {from: draft, to: tally}
  - from: tally
    branches:
      - when: {agreement_below: $t}
        to: settle
    default: finish
  - {from: settle, to: finish}
  - {from: finish, to: END}
"""

WHEN = "      - when: {agreement_below: $t}\n"


def edit(old: str, new: str) -> str:
    """BASE with the one occurrence of ``old`` replaced by ``new``."""
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def when(condition: str) -> str:
    """BASE with the branch condition (line 20) replaced."""
    return edit(WHEN, f"      - when: {condition}\n")


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    line: int
    """The line the message must point at (``path:LINE:``)."""
    place: str | None
    """The spec path the message must name (``nodes.tally.kind``), if any."""
    expected: tuple[str, ...]
    """Substrings saying what was expected."""


BRANCH = "edges[2].branches[0].when"

CASES = [
    # -- the file -----------------------------------------------------------------------
    Case("invalid-yaml", edit("  tally: {kind: vote}\n", "  tally: kind: vote\n"), 12, None,
         ("invalid YAML", "mapping values are not allowed")),
    Case("invalid-yaml-tab", edit("  t: 0.5\n", "\tt: 0.5\n"), 4, None, ("invalid YAML",)),
    Case("not-a-mapping", "- name: probe\n- nodes: {}\n", 1, None,
         ("expected a mapping with name, nodes and edges", "got list")),
    Case("scalar-document", "just some text\n", 1, None,
         ("expected a mapping with name, nodes and edges", "got str")),
    Case("empty-file", "# nothing but a comment\n", 1, None,
         ("expected a mapping with name, nodes and edges", "empty file")),
    Case("missing-name", edit("name: probe\n", ""), 1, None,
         ("missing required field 'name'",)),
    Case("missing-nodes", edit(BASE[BASE.index("nodes:"):BASE.index("edges:")], ""), 1, None,
         ("missing required field 'nodes'",)),
    Case("missing-edges", BASE[:BASE.index("edges:")], 1, None,
         ("missing required field 'edges'",)),
    Case("empty-nodes", edit(BASE[BASE.index("nodes:"):BASE.index("edges:")], "nodes: {}\n"),
         10, "nodes", ("at least 1 item",)),
    Case("empty-edges", BASE[:BASE.index("edges:")] + "edges: []\n", 15, "edges",
         ("at least 1 item",)),
    Case("unknown-top-level-key", edit("description: a probe graph\n",
                                       "description: a probe graph\nversion: 2\n"), 3,
         "version", ("unknown field 'version'",
                     "expected one of: description, edges, name, nodes, parameters, roles")),
    Case("bad-graph-name", edit("name: probe\n", "name: my probe graph\n"), 1, "name",
         ("letters, digits", "'my probe graph'")),
    Case("parameter-name-with-dash", edit("  rounds: 2\n", "  rounds: 2\n  max-rounds: 3\n"),
         7, "parameters.max-rounds", ("'max-rounds' is not a valid name", "letters, digits")),
    Case("parameter-value-a-mapping", edit("  rounds: 2\n", "  rounds: {max: 2}\n"), 6,
         "parameters.rounds", ("expected true or false or an integer or a number or a string",
                               "{'max': 2}")),
    # -- nodes --------------------------------------------------------------------------
    Case("node-named-START", edit("  finish: {kind: finish}\n",
                                  "  finish: {kind: finish}\n  START: {kind: vote}\n"),
         15, "nodes.START", ("'START' is reserved",)),
    Case("node-name-with-dash", edit("  tally: {kind: vote}\n", "  my-tally: {kind: vote}\n"),
         12, "nodes.my-tally", ("not a valid name",)),
    Case("node-not-a-mapping", edit("  tally: {kind: vote}\n", "  tally: vote\n"), 12,
         "nodes.tally", ("valid dictionary", "'vote'")),
    Case("unknown-node-key", edit("  tally: {kind: vote}\n",
                                  "  tally:\n    kind: vote\n    colour: blue\n"),
         14, "nodes.tally.colour", ("unknown field 'colour'", "expected one of:", "kind",
                                    "options", "role", "samples")),
    Case("missing-node-kind", edit("  tally: {kind: vote}\n", "  tally: {stage: 1}\n"), 12,
         "nodes.tally", ("missing required field 'kind'",)),
    Case("unknown-node-kind", edit("  tally: {kind: vote}\n", "  tally: {kind: tally}\n"), 12,
         "nodes.tally.kind", ("unknown node kind 'tally'", "expected one of:", "vote",
                              "aggregate")),
    Case("kind-needs-a-role", edit("{kind: answer, role: worker, samples: $samples}",
                                   "{kind: answer, samples: $samples}"), 11, "nodes.draft",
         ("node kind 'answer' needs a 'role'",)),
    Case("role-on-a-kind-without-one", edit("  tally: {kind: vote}\n",
                                            "  tally: {kind: vote, role: worker}\n"), 12,
         "nodes.tally.role", ("node kind 'vote' calls no model and takes no 'role'",)),
    Case("undeclared-role", edit("role: worker, samples", "role: writer, samples"), 11,
         "nodes.draft.role", ("unknown role 'writer'", "roles: worker, judge")),
    Case("over-on-a-non-fan-out-kind", edit("{kind: aggregate, role: judge}",
                                            "{kind: aggregate, role: judge, over: selected}"),
         13, "nodes.settle.over", ("node kind 'aggregate' does not fan out",)),
    Case("bad-over-value", edit("samples: $samples}", "samples: $samples, over: everyone}"),
         11, "nodes.draft.over", ("expected 'role' or 'selected'", "'everyone'")),
    Case("unknown-option", edit("  finish: {kind: finish}\n",
                                "  finish:\n    kind: finish\n    options:\n      style: short\n"),
         17, "nodes.finish.options.style", ("unknown option 'style' for kind 'finish'",
                                            "allowed: output")),
    Case("option-on-a-kind-without-options",
         edit("  tally: {kind: vote}\n", "  tally: {kind: vote, options: {top_k: 2}}\n"), 12,
         "nodes.tally.options.top_k", ("unknown option 'top_k'", "allowed: none")),
    Case("unknown-prompt", edit("{kind: aggregate, role: judge}",
                                "{kind: aggregate, role: judge, prompt: aggregate}"), 13,
         "nodes.settle.prompt", ("unknown prompt 'aggregate'", "expected one of:",
                                 "aggregator")),
    Case("samples-not-an-integer", edit("samples: $samples}", "samples: 1.5}"), 11,
         "nodes.draft.samples", ("expected an integer or a string", "got 1.5")),
    Case("unknown-param-in-samples", edit("samples: $samples}", "samples: $n_samples}"), 11,
         "nodes.draft.samples", ("unknown parameter $n_samples",)),
    Case("unknown-param-in-stage", edit("  tally: {kind: vote}\n",
                                        "  tally: {kind: vote, stage: $stage}\n"), 12,
         "nodes.tally.stage", ("unknown parameter $stage",)),
    Case("unknown-param-in-options", edit("  finish: {kind: finish}\n",
                                          "  finish: {kind: finish, options: {output: $out}}\n"),
         14, "nodes.finish.options", ("unknown parameter $out",)),
    # -- roles --------------------------------------------------------------------------
    Case("role-with-tier-and-model", edit("judge: {tier: paid, count: 1}",
                                          "judge: {tier: paid, model: sim-large}"), 9,
         "roles.judge", ("exactly one of 'tier', 'model' or 'models'", "got tier, model")),
    Case("role-with-no-source", edit("judge: {tier: paid, count: 1}", "judge: {count: 1}"), 9,
         "roles.judge", ("exactly one of 'tier', 'model' or 'models'",)),
    Case("role-with-empty-models", edit("judge: {tier: paid, count: 1}", "judge: {models: []}"),
         9, "roles.judge", ("'models' must name at least one model",)),
    Case("bad-tier", edit("judge: {tier: paid, count: 1}", "judge: {tier: premium, count: 1}"),
         9, "roles.judge.tier", ("'local'", "'paid'", "'any'", "'premium'")),
    Case("unknown-role-key", edit("judge: {tier: paid, count: 1}",
                                  "judge: {tier: paid, size: 1}"), 9, "roles.judge.size",
         ("unknown field 'size'", "count", "model", "models", "tier")),
    Case("unknown-param-in-role-count", edit("worker: {tier: local}",
                                             "worker: {tier: local, count: $agents}"), 8,
         "roles.worker.count", ("unknown parameter $agents",)),
    # -- edges --------------------------------------------------------------------------
    Case("edge-without-from", edit("  - {from: draft, to: tally}\n", "  - {to: tally}\n"), 17,
         "edges[1]", ("missing required field 'from'",)),
    Case("edge-from-unknown-node", edit("{from: draft, to: tally}", "{from: drafts, to: tally}"),
         17, "edges[1].from", ("unknown node 'drafts'", "nodes: draft, tally, settle, finish")),
    Case("edge-to-unknown-node", edit("{from: settle, to: finish}", "{from: settle, to: fin}"),
         23, "edges[3].to", ("unknown node 'fin'",)),
    Case("edge-to-START", edit("{from: finish, to: END}", "{from: finish, to: START}"), 24,
         "edges[4].to", ("no edge may lead to START",)),
    Case("branch-to-unknown-node", edit("        to: settle\n", "        to: judge\n"), 21,
         "edges[2].branches[0].to", ("unknown node 'judge'",)),
    Case("default-to-unknown-node", edit("    default: finish\n", "    default: done\n"), 22,
         "edges[2].default", ("unknown node 'done'",)),
    Case("conditional-edge-without-default", edit("    default: finish\n", ""), 18, "edges[2]",
         ("a conditional edge needs a 'default' target",)),
    Case("edge-with-to-and-branches",
         edit("  - from: tally\n", "  - from: tally\n    to: finish\n"), 18,
         "edges[2]", ("either 'to' or 'branches' with 'default', not both",)),
    Case("edge-with-neither-to-nor-branches",
         edit("{from: settle, to: finish}", "{from: settle}"), 23, "edges[3]",
         ("an edge needs 'to', or 'branches' and 'default'",)),
    Case("two-outgoing-edges",
         edit("  - {from: draft, to: tally}\n",
              "  - {from: draft, to: tally}\n  - {from: draft, to: finish}\n"), 18,
         "edges[2].from", ("node 'draft' already has an outgoing edge (edges[1])",
                           "use branches")),
    Case("no-edge-from-START", edit("  - {from: START, to: draft}\n", ""), 15, "edges",
         ("no edge leaves START",)),
    Case("unreachable-node", edit("  finish: {kind: finish}\n",
                                  "  finish: {kind: finish}\n  spare: {kind: vote}\n"),
         15, "nodes.spare", ("node 'spare' is unreachable from START",)),
    Case("node-without-outgoing-edge", edit("  - {from: settle, to: finish}\n", ""), 13,
         "nodes.settle", ("can never reach END from node 'settle'", "has no outgoing edge")),
    Case("loop-without-exit",
         edit("  finish: {kind: finish}\n", "  finish: {kind: finish}\n  review: {kind: vote}\n")
         .replace("  - {from: settle, to: finish}\n",
                  "  - {from: settle, to: review}\n  - {from: review, to: settle}\n"),
         13, "nodes.settle", ("can never reach END from node 'settle'",
                              "loops without an exit")),
    # -- conditions ---------------------------------------------------------------------
    Case("unknown-predicate", when("{agreement_under: $t}"), 20, BRANCH,
         ("unknown predicate 'agreement_under'", "expected one of:", "agreement_below")),
    Case("unknown-bare-predicate", when("consensus"), 20, BRANCH,
         ("unknown predicate 'consensus'", "agreed")),
    Case("predicate-missing-argument", when("agreement_below"), 20, BRANCH,
         ("predicate 'agreement_below' needs an argument", "{agreement_below: VALUE}")),
    Case("predicate-number-given-a-word", when("{agreement_below: high}"), 20, BRANCH,
         ("predicate 'agreement_below' needs a number", "'high'")),
    Case("predicate-int-given-a-fraction", when("{rounds_left: 1.5}"), 20, BRANCH,
         ("predicate 'rounds_left' needs an integer", "1.5")),
    Case("predicate-bool-given-a-number", when("{flag: 3}"), 20, BRANCH,
         ("predicate 'flag' needs true or false", "got 3")),
    Case("argument-to-no-arg-predicate", when("{agreed: 1}"), 20, BRANCH,
         ("predicate 'agreed' takes no argument",)),
    Case("predicate-role-not-a-name", when("{paid_reachable: 3}"), 20, BRANCH,
         ("predicate 'paid_reachable' needs a role name", "got 3")),
    Case("predicate-unknown-role", when("{paid_reachable: critic}"), 20, BRANCH,
         ("predicate 'paid_reachable': unknown role 'critic'", "roles: worker, judge")),
    Case("unknown-param-in-predicate", when("{agreement_below: $threshold}"), 20, BRANCH,
         ("unknown parameter '$threshold' in predicate 'agreement_below'",)),
    Case("param-of-wrong-type-in-predicate",
         edit("  t: 0.5\n", "  t: high\n"), 4, "parameters.t",
         ("expected a number from 0 to 1", "got 'high'")),
    Case("condition-with-two-keys", when("{agreement_below: 0.5, rounds_left: 2}"), 20, BRANCH,
         ("a condition is a predicate name or a mapping with exactly one key",)),
    Case("all-with-empty-list", when("{all: []}"), 20, BRANCH,
         ("'all' needs a non-empty list of conditions",)),
    Case("any-not-a-list", when("{any: agreed}"), 20, BRANCH,
         ("'any' needs a non-empty list of conditions",)),
    Case("nested-bad-argument", when("{not: {any: [agreed, {score_above: x}]}}"), 20, BRANCH,
         ("predicate 'score_above' needs a number", "'x'")),
    Case("condition-a-list", when("[agreed, {rounds_left: 2}]"), 20, BRANCH,
         ("expected a string or a mapping", "['agreed'")),
]
CASE_IDS = [c.id for c in CASES]


def _write(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / f"{case.id}.yaml"
    path.write_text(case.text, encoding="utf-8")
    return path


def _check_message(message: str, path: Path, case: Case) -> None:
    assert "\n" not in message and "\r" not in message, message
    assert "Traceback" not in message, message
    assert message.startswith(f"{path}:{case.line}:"), \
        f"expected {path}:{case.line}: at the start of {message!r}"
    if case.place is not None:
        assert f":{case.line}: {case.place}:" in message, message
    for part in case.expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_enough_cases() -> None:
    assert len(CASES) >= 35
    assert len(set(CASE_IDS)) == len(CASE_IDS)


def test_base_spec_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "probe.yaml"
    path.write_text(BASE, encoding="utf-8")
    spec = load_spec(path)
    assert list(spec.nodes) == ["draft", "tally", "settle", "finish"]
    load_graph(path)  # and it builds with the default pool


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_malformed_spec_is_refused_in_one_line(case: Case, tmp_path: Path) -> None:
    path = _write(tmp_path, case)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert isinstance(info.value, ColmGraphError)
    _check_message(str(info.value), path, case)
    assert info.value.__cause__ is None  # no pydantic or YAML error chained behind it


@pytest.mark.parametrize("case", CASES[:12], ids=CASE_IDS[:12])
def test_load_graph_refuses_the_same_way(case: Case, tmp_path: Path) -> None:
    path = _write(tmp_path, case)
    with pytest.raises(SpecError) as info:
        load_graph(path)
    _check_message(str(info.value), path, case)


# -- finding a spec ------------------------------------------------------------------------
def _one_line(exc: BaseException) -> str:
    message = str(exc)
    assert isinstance(exc, ColmGraphError)
    assert "\n" not in message and "Traceback" not in message, message
    return message


def test_unknown_variant_name() -> None:
    with pytest.raises(SpecError) as info:
        load_spec("no-such-variant")
    message = _one_line(info.value)
    assert "graph 'no-such-variant': no such variant" in message
    assert "colm" in message and "cope" in message and ".yaml" in message


def test_missing_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "graph.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = _one_line(info.value)
    assert message == f"{path}: graph spec not found"


def test_directory_instead_of_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert _one_line(info.value) == f"{tmp_path}: expected a graph spec, got a directory"


# -- binding a valid spec ---------------------------------------------------------------
@pytest.fixture
def base_path(tmp_path: Path) -> Path:
    path = tmp_path / "probe.yaml"
    path.write_text(BASE, encoding="utf-8")
    return path


def _local_only_pool() -> ModelPool:
    return ModelPool.from_dict({"models": [{"name": "small-a", "provider": "sim",
                                            "tier": "local"},
                                           {"name": "small-b", "provider": "sim",
                                            "tier": "local"}]}, source="local-pool")


BINDING_CASES = {
    "role-bound-to-no-model": (
        {"pool": "local-only"},
        ("roles.judge: bound to no model", "tier 'paid'", "'local-pool'", "no paid model")),
    "unknown-model-in-role-override": (
        {"roles": {"judge": "gpt-9"}},
        ("roles.judge: unknown model 'gpt-9'", "pool has:", "sim-large")),
    "unknown-model-in-role-list": (
        {"roles": {"worker": ["sim-arith", "nope"]}},
        ("roles.worker: unknown model 'nope'",)),
    "unknown-role-override": (
        {"roles": {"critic": "sim-large"}},
        ("roles: unknown role 'critic'", "graph 'probe' has: worker, judge")),
    "unknown-parameter-override": (
        {"params": {"threshold": 0.3}},
        ("parameter 'threshold': graph 'probe' has no such parameter",
         "max_paid_usd, max_upload_bytes, min_participants, private, private_detect,"
         " rounds, samples, t")),
    "wrong-override-type": (
        {"params": {"rounds": "two"}},
        ("parameter 'rounds': expected an integer from 0 to 20, got 'two'",)),
    "bool-for-an-integer": (
        {"params": {"samples": True}},
        ("parameter 'samples': expected an integer from 1 to 64, got True",)),
    "null-for-a-number": (
        {"params": {"t": None}},
        ("parameter 't': expected a number from 0 to 1, got None",)),
    "samples-out-of-range": (
        {"params": {"samples": 0}},
        ("parameter 'samples': expected an integer from 1 to 64, got 0",)),
    "samples-too-many": (
        {"params": {"samples": 65}},
        ("parameter 'samples': expected an integer from 1 to 64, got 65",)),
}


@pytest.mark.parametrize("kwargs,expected", list(BINDING_CASES.values()),
                         ids=list(BINDING_CASES))
def test_binding_errors_are_one_line(base_path: Path, kwargs: dict, expected: tuple[str, ...]
                                     ) -> None:
    kwargs = dict(kwargs)
    if kwargs.get("pool") == "local-only":
        kwargs["pool"] = _local_only_pool()
    with pytest.raises(ConfigError) as info:
        load_graph(base_path, **kwargs)
    message = _one_line(info.value)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_unknown_model_in_spec_binding(tmp_path: Path) -> None:
    path = tmp_path / "probe.yaml"
    path.write_text(edit("judge: {tier: paid, count: 1}", "judge: {model: gpt-9}"), "utf-8")
    load_spec(path)  # the spec is fine; the pool lacks the model
    with pytest.raises(ConfigError) as info:
        load_graph(path, pool=ModelPool.default())
    assert "roles.judge: unknown model 'gpt-9'" in _one_line(info.value)


def test_role_count_out_of_range_via_parameter(tmp_path: Path) -> None:
    path = tmp_path / "probe.yaml"
    path.write_text(edit("worker: {tier: local}", "worker: {tier: local, count: $rounds}"),
                    "utf-8")
    load_graph(path)
    with pytest.raises(ConfigError) as info:
        load_graph(path, params={"rounds": 0})
    # rounds (0 to 20 by name) used as a count (1 to 64): 1 to 20
    assert _one_line(info.value) == "parameter 'rounds': expected an integer from 1 to 20, got 0"


def test_pool_that_is_not_a_pool(base_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_graph(base_path, pool={"models": []})  # type: ignore[arg-type]
    assert _one_line(info.value) == "pool: expected a ModelPool, got dict"


@pytest.mark.parametrize("binding", [[], 5, ""], ids=["empty-list", "not-a-list", "empty-name"])
def test_bad_role_override_value(base_path: Path, binding: object) -> None:
    with pytest.raises(ConfigError) as info:
        load_graph(base_path, roles={"worker": binding})  # type: ignore[dict-item]
    assert _one_line(info.value).startswith("roles.worker: expected a model name, a non-empty"
                                            " list of model names or a RoleBinding, got")


# -- through the command line -----------------------------------------------------------
CLI_CASES = [c for c in CASES if c.id in
             {"invalid-yaml", "unknown-node-kind", "predicate-missing-argument"}]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_reports_spec_error_in_one_line(case: Case, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, case)
    code = main(["run", "q", "--graph", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("colm-graph: error: "), err
    _check_message(err.rstrip("\n").removeprefix("colm-graph: error: "), path, case)


def test_cli_unknown_variant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "q", "--graph", "no-such-variant"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert re.match(r"^colm-graph: error: graph 'no-such-variant': no such variant", err)


@pytest.mark.parametrize("kind, prompt, ok", [
    ("aggregate", "client_draft", False),
    ("aggregate", "aggregator", True),
    ("aggregate", "planner", True),
    ("answer", "executor", False),
])
def test_prompt_must_fit_its_node_kind(kind, prompt, ok):
    from colm_graph.spec import parse_spec

    text = ("name: x\nroles: {a: {tier: local}}\nnodes:\n"
            f"  n: {{kind: {kind}, role: a, prompt: {prompt}}}\n  f: {{kind: finish}}\n"
            "edges:\n  - {from: START, to: n}\n  - {from: n, to: f}\n  - {from: f, to: END}\n")
    if ok:
        parse_spec(text, source="x.yaml")
    else:
        with pytest.raises(SpecError, match=r"x\.yaml:4: nodes\.n\.prompt: prompt"):
            parse_spec(text, source="x.yaml")
