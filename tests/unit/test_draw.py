"""Pictures of graphs, offline: topology snapshots of every shipped variant, Mermaid text with
bound models and conditions, SVG and PNG from the package's own layout, and ``draw`` CLI.

Snapshots: ``tests/snapshots/<variant>.mmd`` hold LangGraph's own Mermaid text of each
compiled variant, compared by syrupy; after an intended change of a graph's wiring, rewrite
them with ``pytest --snapshot-update tests/unit/test_draw.py`` and review the diff (syrupy
also reports a snapshot no test uses).
"""

from __future__ import annotations

import argparse
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
from syrupy.location import PyTestLocation
from syrupy.types import SnapshotIndex

from colm_graph import ConfigError, ModelPool, bundled_graphs, load_graph, load_spec
from colm_graph.cli.draw import add_draw_parser, run_draw
from colm_graph.errors import ColmGraphError
from colm_graph.spec.loader import parse_spec
from colm_graph.viz.draw import (
    condition_text,
    graph_info,
    highlighted_edges,
    to_mermaid,
    to_png,
    to_svg,
)

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"
VARIANTS = bundled_graphs()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"
HL_RGB = (0xE1, 0x1D, 0x48)

# A pool unlike the default one, so labels must come from the pool actually given.
OTHER_POOL = {
    "models": [
        {"name": "tiny-a", "provider": "sim", "tier": "local"},
        {"name": "tiny-b", "provider": "sim", "tier": "local"},
        {"name": "huge-z", "provider": "sim", "tier": "paid"},
    ],
    "server": "huge-z",
}


def test_variants_are_shipped() -> None:
    assert {"colm", "cope", "route", "cascade", "single"} <= set(VARIANTS)


# --- topology snapshots -----------------------------------------------------------


class MermaidSnapshot(SingleFileSnapshotExtension):
    """One ``tests/snapshots/<name>.mmd`` text file per snapshot name."""

    _write_mode = WriteMode.TEXT
    file_extension = "mmd"

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(SNAPSHOTS)

    @classmethod
    def get_snapshot_name(cls, *, test_location: PyTestLocation,
                          index: SnapshotIndex = 0) -> str:
        return str(index)


@pytest.mark.parametrize("name", VARIANTS)
def test_topology_matches_snapshot(name: str, snapshot: SnapshotAssertion) -> None:
    text = load_graph(name).get_graph().draw_mermaid(with_styles=False)
    assert text == snapshot.use_extension(MermaidSnapshot)(name=name)


def test_no_stale_snapshots() -> None:
    assert sorted(p.stem for p in SNAPSHOTS.glob("*.mmd")) == VARIANTS


@pytest.mark.parametrize("name", VARIANTS)
def test_snapshot_edges_are_the_spec_edges(name: str) -> None:
    """The snapshot is not just any text: its edges are exactly the spec's edges."""
    spec = load_spec(name)
    ends = {"START": "__start__", "END": "__end__"}
    want = {(ends.get(e.source, e.source), ends.get(t, t)) for e in spec.edges
            for t in e.targets()}
    text = (SNAPSHOTS / f"{name}.mmd").read_text(encoding="utf-8")
    got = set(re.findall(r"^\s*(\w+) -\.?-> (\w+);", text, flags=re.M))
    # a compiled graph starts with the hidden reset step _begin on a reused thread, and
    # goes straight to the spec's first node on a fresh one
    assert ("__start__", "_begin") in got
    got = {("__start__" if a == "_begin" else a, b) for a, b in got if b != "_begin"}
    assert want <= got
    # the other edges leave a step that ran bookkeeping nodes inline (spec/fused.py): from
    # its first node to where a bookkeeping node reached from it goes
    pure = {n for n, node in spec.nodes.items()
            if node.kind in ("vote", "degrade", "finish", "verify", "score", "select")}
    after = {a: {ends.get(t, t) for e in spec.edges if e.source == a for t in e.targets()}
             for a in spec.nodes}

    def reach(a: str) -> set[str]:
        seen, todo = set(), [a]
        while todo:
            for b in after[todo.pop()]:
                if b in pure and b not in seen:
                    seen.add(b)
                    todo.append(b)
        return seen
    for a, b in got - want:
        assert any(b in after[c] for c in reach(a)), (a, b)


# --- graph_info and conditions ----------------------------------------------------


def test_condition_text_groups_and_resolves_parameters() -> None:
    params = {"rounds": 3, "skip": True, "t": 0.25}
    cond = {"all": ["agreed", {"any": [{"rounds_at_least": 1}, {"flag": "$skip"}]}]}
    assert condition_text(cond, params) == "agreed and (rounds_at_least 1 or skip)"
    assert condition_text({"rounds_at_least": "$rounds"}, params) == "rounds_at_least 3"
    assert condition_text({"not": {"all": ["paid_reachable", {"score_below": "$t"}]}},
                          params) == "not (paid_reachable and score_below 0.25)"
    assert condition_text({"not": "agreed"}, params) == "not agreed"


def test_graph_info_of_colm_follows_spec_and_pool() -> None:
    spec = load_spec("colm")
    pool = ModelPool.default()
    info = graph_info(spec, pool)
    nodes = {n.name: n for n in info.nodes}
    assert list(nodes) == list(spec.nodes)
    paid = pool.names("paid")
    assert nodes["guide"].models == (pool.server,) and pool.server in paid
    assert nodes["guide"].tier == "paid" and nodes["tally"].tier is None
    assert nodes["guide"].lines[1] == f"guide · server: {pool.server} (paid)"
    assert nodes["draft"].models == tuple(pool.names("local"))
    assert nodes["draft"].fan_out == f"× {spec.parameters['top_k']} selected"
    assert nodes["tally"].fan_out is None
    edges = {(e.source, e.target): e for e in info.edges}
    assert len(edges) == len(info.edges)  # one edge per (source, target)
    to_finish = edges[("tally", "finish")]
    assert to_finish.conditional
    assert to_finish.label[0] == f"1: rounds_at_least {spec.parameters['rounds']}"
    assert to_finish.label[1].startswith("or 2: agreed and (")
    assert edges[("tally", "guide")].label == ("otherwise",)
    assert not edges[("select", "draft")].conditional and not edges[("select", "draft")].label
    assert edges[("guide", "revise")].label == ("otherwise",)  # unless the deadline passed
    assert edges[("guide", "degrade")].label == ("not time_left_above 0",)


def test_graph_info_fan_out_marks() -> None:
    cascade = load_spec("cascade")
    nodes = {n.name: n for n in graph_info(cascade).nodes}
    assert nodes["local_answer"].fan_out == f"× {cascade.parameters['samples']} samples"
    assert nodes["escalate"].fan_out is None  # one paid model, one sample
    debate = load_spec("debate")
    nodes = {n.name: n for n in graph_info(debate, params={"agents": 2}).nodes}
    assert nodes["answer"].fan_out == "× 2 participants"
    assert len(nodes["answer"].models) == 2


def test_graph_info_uses_the_given_pool() -> None:
    info = graph_info(load_spec("colm"), ModelPool.from_dict(OTHER_POOL))
    nodes = {n.name: n for n in info.nodes}
    assert nodes["guide"].models == ("huge-z",)
    assert nodes["draft"].lines[1] == "answer · client: tiny-a, tiny-b (local)"
    anyone = parse_spec("name: anyone\nroles: {p: {tier: any}}\nnodes: {ask: {kind: answer,"
                        " role: p}}\nedges: [{from: START, to: ask}, {from: ask, to: END}]\n")
    (ask,) = graph_info(anyone, ModelPool.from_dict(OTHER_POOL)).nodes
    assert ask.tier == "mixed" and ask.fan_out == "× 3 participants"
    assert ask.lines[1] == "answer · p: tiny-a, tiny-b (local), huge-z (paid)"


def test_highlighted_edges_follow_the_path() -> None:
    info = graph_info(load_spec("colm"))
    path = ["select", "draft", "draft", "tally", "guide", "revise", "tally", "finish"]
    steps = [1, 2, 2, 3, 4, 5, 6, 7]  # the two drafts ran in parallel (one step)
    entries = [{"node": n, "step": i} for n, i in zip(path, steps, strict=True)]
    nodes, edges = highlighted_edges(info, entries)
    assert (nodes, edges) == highlighted_edges(info, path)
    assert nodes == {"select", "draft", "tally", "guide", "revise", "finish"}
    pairs = {(info.edges[i].source, info.edges[i].target) for i in edges}
    assert pairs == {("START", "select"), ("select", "draft"), ("draft", "tally"),
                     ("tally", "guide"), ("guide", "revise"), ("revise", "tally"),
                     ("tally", "finish"), ("finish", "END")}
    with pytest.raises(ConfigError, match="'nope'"):
        highlighted_edges(info, ["select", "nope"])


# --- Mermaid ----------------------------------------------------------------------


def _mermaid_nodes(text: str) -> dict[str, str]:
    return dict(re.findall(r'^\s*(n_\w+)\("(.*)"\)$', text, flags=re.M))


def _mermaid_edges(text: str) -> list[tuple[str, str, str]]:
    return re.findall(r'^\s*(\w+) -\.?->(?:\|"(.*)"\|)? (\w+)$', text, flags=re.M)


def test_mermaid_of_colm_shows_models_and_conditions() -> None:
    spec = load_spec("colm")
    text = to_mermaid(spec, ModelPool.default())
    assert text.startswith("flowchart TD\n")
    nodes = _mermaid_nodes(text)
    assert "sim-large" in nodes["n_guide"] and "paid" in nodes["n_guide"]
    labels = {(src, dst): label for src, label, dst in _mermaid_edges(text)}
    assert f"rounds_at_least {spec.parameters['rounds']}" in labels[("n_tally", "n_finish")]
    assert labels[("n_tally", "n_guide")] == "otherwise"
    assert labels[("s_start", "n_select")] == ""
    overridden = to_mermaid(spec, params={"rounds": 5})
    assert "rounds_at_least 5" in overridden


@pytest.mark.parametrize("name", VARIANTS)
def test_mermaid_has_every_node_and_edge(name: str) -> None:
    spec = load_spec(name)
    text = to_mermaid(spec)
    assert set(_mermaid_nodes(text)) == {f"n_{n}" for n in spec.nodes}
    ids = {"START": "s_start", "END": "s_end"}
    want = {(ids.get(e.source, f"n_{e.source}"), ids.get(t, f"n_{t}")) for e in spec.edges
            for t in e.targets()}
    assert {(s, d) for s, _, d in _mermaid_edges(text)} == want


def test_mermaid_highlight_marks_exactly_the_path() -> None:
    spec = load_spec("route")
    text = to_mermaid(spec, highlight=["score", "weak", "finish"])
    (marked,) = re.findall(r"^\s*class ([\w,]+) hl;$", text, flags=re.M)
    assert set(marked.split(",")) == {"n_score", "n_weak", "n_finish"}
    (styled,) = re.findall(r"^\s*linkStyle ([\d,]+) ", text, flags=re.M)
    edges = _mermaid_edges(text)
    assert {(edges[int(i)][0], edges[int(i)][2]) for i in styled.split(",")} == {
        ("s_start", "n_score"), ("n_score", "n_weak"), ("n_weak", "n_finish"),
        ("n_finish", "s_end")}
    plain = to_mermaid(spec)
    assert " hl;" not in plain and "linkStyle" not in plain


def test_mermaid_escapes_labels() -> None:
    spec = parse_spec(
        "name: odd\nnodes:\n  finish: {kind: degrade, options: {reason: 'a\"b [c] <d> |e| #f'}}\n"
        "edges:\n  - {from: START, to: finish}\n  - {from: finish, to: END}\n")
    text = to_mermaid(spec)
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("n_finish("))
    inner = line.strip()[len('n_finish("'):-len('")')].replace("<br>", "\n")
    assert not set(inner) & set('"[]<>|{}'), inner
    assert "#quot;" in inner and "#91;c#93;" in inner and "#35;f" in inner


# --- SVG --------------------------------------------------------------------------


def _rect(g: ET.Element) -> tuple[float, float, float, float]:
    r = g.find(f"{SVG_NS}rect")
    assert r is not None
    x, y = float(r.get("x", 0)), float(r.get("y", 0))
    return x, y, x + float(r.get("width", 0)), y + float(r.get("height", 0))


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


STRESS = """
name: stress
description: a self-loop, nested loops, a long skip edge and a wide fan
parameters: {rounds: 3, t: 0.5}
roles:
  client: {tier: local}
  server: {tier: paid}
nodes:
  a: {kind: answer, role: client}
  b: {kind: vote}
  c: {kind: guide, role: server}
  d: {kind: revise, role: client}
  e: {kind: vote}
  f: {kind: degrade}
  g: {kind: finish}
edges:
  - {from: START, to: a}
  - {from: a, to: b}
  - from: b
    branches:
      - {when: {any: [agreed, {rounds_at_least: $rounds}]}, to: g}
      - {when: {rounds_at_least: $rounds}, to: b}
      - {when: {score_above: $t}, to: f}
    default: c
  - {from: c, to: d}
  - from: d
    branches:
      - {when: agreed, to: e}
      - {when: {rounds_left: 2}, to: a}
    default: b
  - {from: e, to: g}
  - {from: f, to: g}
  - {from: g, to: END}
"""


def _check_svg(spec: Any) -> dict[str, Any]:
    info = graph_info(spec)
    root = ET.fromstring(to_svg(spec))
    assert root.tag == f"{SVG_NS}svg"
    width, height = float(root.get("width", 0)), float(root.get("height", 0))
    groups = list(root.iter(f"{SVG_NS}g"))
    nodes = {g.get("data-name"): g for g in groups if g.get("class") == "node"}
    assert set(nodes) == set(spec.nodes)
    for node_name, g in nodes.items():
        assert [t.text for t in g.iter(f"{SVG_NS}text")][0] == node_name
    edges = [g for g in groups if g.get("class") == "edge"]
    assert sorted((g.get("data-source"), g.get("data-target")) for g in edges) == \
        sorted((e.source, e.target) for e in info.edges)
    for g in edges:
        assert g.find(f"{SVG_NS}path") is not None and g.find(f"{SVG_NS}polygon") is not None
    # Readable: boxes inside the picture, no box over another, no label over a box.
    boxes = {n: _rect(g) for n, g in nodes.items()}
    for box in boxes.values():
        assert 0 <= box[0] and box[2] <= width and 0 <= box[1] and box[3] <= height
    listed = list(boxes.values())
    for i, a in enumerate(listed):
        assert not any(_overlap(a, b) for b in listed[i + 1:])
    labels = [_rect(g) for g in edges if g.find(f"{SVG_NS}rect") is not None]
    assert len(labels) == sum(1 for e in info.edges if e.label)
    for label in labels:
        assert not any(_overlap(label, b) for b in listed)
    paths = {(g.get("data-source"), g.get("data-target")): g.find(f"{SVG_NS}path")
             for g in edges}
    return {"boxes": boxes, "paths": paths}


@pytest.mark.parametrize("name", VARIANTS)
def test_svg_has_a_box_per_node_and_an_arrow_per_edge(name: str) -> None:
    _check_svg(load_spec(name))


def test_svg_of_a_tangled_spec_stays_readable() -> None:
    _check_svg(parse_spec(STRESS))


@pytest.mark.parametrize(("name", "source", "target"), [
    ("colm", "revise", "tally"), ("debate", "debate", "tally"), ("moa", "refine", "tally")])
def test_svg_loops_run_on_the_side(name: str, source: str, target: str) -> None:
    drawn = _check_svg(load_spec(name))
    d = drawn["paths"][(source, target)].get("d")
    xs = [float(v) for v in re.findall(r"(-?[\d.]+),", d)]
    assert max(xs) > max(drawn["boxes"][source][2], drawn["boxes"][target][2])


def test_svg_highlight_and_escaping() -> None:
    spec = parse_spec(
        "name: odd\ndescription: 'x < y & \"z\"'\nnodes:\n  finish: {kind: finish}\n"
        "edges:\n  - {from: START, to: finish}\n  - {from: finish, to: END}\n")
    root = ET.fromstring(to_svg(spec, highlight=["finish"]))
    assert any(t.text == 'x < y & "z"' for t in root.iter(f"{SVG_NS}text"))
    marked = {g.get("data-name") for g in root.iter(f"{SVG_NS}g")
              if g.get("class") == "node highlight"}
    assert marked == {"finish"}
    hl_edges = {(g.get("data-source"), g.get("data-target")) for g in root.iter(f"{SVG_NS}g")
                if g.get("class") == "edge highlight"}
    assert hl_edges == {("START", "finish"), ("finish", "END")}


def test_svg_is_self_contained() -> None:
    text = to_svg(load_spec("colm"))
    assert "<script" not in text and "href" not in text and "@import" not in text


# --- PNG --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["colm", "cope", "single"])
def test_png_decodes_to_a_sensible_picture(name: str) -> None:
    from PIL import Image

    spec = load_spec(name)
    data = to_png(spec, scale=1.0)
    assert data.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(data))
    image.load()
    w, h = image.size
    assert 300 <= w <= 3000 and 300 <= h <= 4000
    bigger = Image.open(io.BytesIO(to_png(spec, scale=2.0)))
    assert abs(bigger.size[0] - 2 * w) <= 2 and abs(bigger.size[1] - 2 * h) <= 2


def test_png_height_grows_with_the_longest_path() -> None:
    from PIL import Image

    # single: START -> degrade -> fallback_answer -> finish -> END; cope: 12 nodes deep.
    single = Image.open(io.BytesIO(to_png(load_spec("single"), scale=1.0)))
    cope = Image.open(io.BytesIO(to_png(load_spec("cope"), scale=1.0)))
    assert cope.size[1] > 2 * single.size[1]


def _has_color(image: Any, rgb: tuple[int, int, int], tol: int = 12) -> bool:
    rgb_image = image.convert("RGB")
    colors = rgb_image.getcolors(maxcolors=rgb_image.width * rgb_image.height)
    return any(all(abs(c[i] - rgb[i]) <= tol for i in range(3)) for _, c in colors)


def test_png_highlight_draws_the_path_colour() -> None:
    from PIL import Image

    spec = load_spec("single")
    plain = Image.open(io.BytesIO(to_png(spec, scale=1.0)))
    marked = Image.open(io.BytesIO(to_png(spec, scale=1.0, highlight=["answer", "finish"])))
    assert not _has_color(plain, HL_RGB)
    assert _has_color(marked, HL_RGB)


# --- the draw command -------------------------------------------------------------


def _draw(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="colm-graph")
    add_draw_parser(parser.add_subparsers(dest="command"))
    out = io.StringIO()
    code = run_draw(parser.parse_args(["draw", *argv]), out)
    return code, out.getvalue()


def test_cli_draw_mermaid_to_stdout() -> None:
    code, text = _draw(["colm"])
    assert code == 0
    assert text.startswith("flowchart TD") and "n_guide(" in text


def test_cli_draw_png_and_svg_files(tmp_path: Path) -> None:
    png = tmp_path / "colm.png"
    code, text = _draw(["colm", "--format", "png", "-o", str(png)])
    assert code == 0 and str(png) in text
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    svg = tmp_path / "route.svg"  # the format follows the suffix
    assert _draw(["route", "-o", str(svg)])[0] == 0
    assert ET.parse(svg).getroot().tag == f"{SVG_NS}svg"
    mmd = tmp_path / "single.txt"
    assert _draw(["single", "-o", str(mmd)])[0] == 0
    assert mmd.read_text(encoding="utf-8").startswith("flowchart TD")


def test_cli_draw_spec_file_and_models(tmp_path: Path) -> None:
    spec_file = tmp_path / "mine.yaml"
    spec_file.write_text((Path(__file__).resolve().parents[2] / "graphs" / "single.yaml")
                         .read_text(encoding="utf-8").replace("name: single", "name: mine"),
                         encoding="utf-8")
    pool_file = tmp_path / "pool.yaml"
    pool_file.write_text(
        "models:\n"
        + "".join(f"  - {{name: {m['name']}, provider: sim, tier: {m['tier']}}}\n"
                  for m in OTHER_POOL["models"])
        + "server: huge-z\n", encoding="utf-8")
    code, text = _draw([str(spec_file), "--models", str(pool_file)])
    assert code == 0
    assert "%% mine:" in text and "huge-z (paid)" in text and "sim-large" not in text


def test_cli_draw_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--format svg: needs -o"):
        _draw(["colm", "--format", "svg"])
    with pytest.raises(ConfigError, match=r"--format png: needs -o"):
        _draw(["colm", "--format", "png"])
    with pytest.raises(ColmGraphError, match=r"'no_such_variant'"):
        _draw(["no_such_variant"])
    with pytest.raises(ConfigError, match=r"^-o .*cannot write"):
        _draw(["colm", "-o", str(tmp_path / "missing" / "dir" / "x.svg")])


def test_main_draw(capsys: pytest.CaptureFixture[str]) -> None:
    from colm_graph.cli.main import main

    assert main(["draw", "cope"]) == 0
    assert "n_execute1(" in capsys.readouterr().out
    assert main(["draw", "cope", "--format", "png"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "-o" in err
