"""The package's shape, read from its source: folders by role, no import cycles, no private
names taken across folders, every module saying what it is for and what it exports."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "colm_graph"
FOLDERS = {"core", "pool", "run", "routing", "nodes", "spec", "integrations", "viz",
           "evaluation", "cli"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module a dotted import names (``colm_graph.pool.ModelPool`` -> ``colm_graph.pool``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, str, int]]:
    """``(target module, imported name, line)`` for every import of a package module in
    ``module``: at module level, under ``TYPE_CHECKING`` and inside functions alike."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            pytest.fail(f"{MODULES[module]}:{node.lineno}: relative import")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("colm_graph"):
            for alias in node.names:
                target = _resolve(f"{node.module}.{alias.name}")
                if target and target != module:
                    name = "" if target.endswith(f".{alias.name}") else alias.name
                    out.append((target, name, node.lineno))
        elif isinstance(node, ast.Import):
            out += [(t, "", node.lineno) for a in node.names
                    if a.name.startswith("colm_graph") and (t := _resolve(a.name))]
    return out


def _folder(module: str) -> str:
    """The folder a module lives in (``core``, ``viz``, ...); ``""`` for the root's files."""
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and MODULES[module].name != "__init__.py"):
        return ""
    return parts[1]


def test_package_root_holds_about_a_dozen_entries() -> None:
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == FOLDERS, entries
    assert set(entries) - folders == {"__init__.py", "errors.py", "py.typed"}, entries


def test_no_import_cycles() -> None:
    graph = {m: {t for t, _, _ in _imports(m)} for m in MODULES}
    # the root package only re-exports lazily; an edge into it from below would be a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == [], "modules that import each other (directly or round a loop): " + \
        "; ".join(" <-> ".join(c) for c in cycles)


def test_no_private_names_across_folders() -> None:
    crossing = []
    for module in MODULES:
        for target, name, line in _imports(module):
            private = (name.startswith("_") and not name.startswith("__")) or any(
                p.startswith("_") and p != "__init__" for p in target.split(".")[1:])
            if private and _folder(target) != _folder(module):
                crossing.append(f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}:"
                                f" {target}{'.' + name if name else ''}")
    assert crossing == []


def test_lower_layers_do_not_import_upper_ones() -> None:
    """``core`` is the bottom: it imports no other folder of the package; the command line is
    the top (nothing imports it), with the integrations under it (only it imports them)."""
    wrong = []
    for module in MODULES:
        here = _folder(module)
        for target, _, line in _imports(module):
            there = _folder(target)
            if here == "core" and there not in ("core", ""):
                wrong.append(f"{module}:{line} -> {target}")
            above = {"cli": ("cli",), "integrations": ("integrations", "cli")}.get(there)
            if above is not None and here not in (*above, ""):
                wrong.append(f"{module}:{line} -> {target}")
    assert wrong == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_says_what_it_is_for_and_exports(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree)
    assert doc and doc.strip(), f"{MODULES[module]}: no module docstring"
    if MODULES[module].name in ("__main__.py",):
        return
    names = [n.id for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
             for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
             for n in ast.walk(t) if isinstance(n, ast.Name)]  # `a, b = ...` defines both
    assert "__all__" in names, f"{MODULES[module]}: no __all__"
    value = next(node.value for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
                 and any(isinstance(t, ast.Name) and t.id == "__all__" for t in
                         (node.targets if isinstance(node, ast.Assign) else [node.target])))
    exported = ast.literal_eval(value) if value is not None else []
    defined = {n.name for n in tree.body if isinstance(
        n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)} | set(names) | {
        a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom | ast.Import)
        for a in n.names} | {
        t.id for n in tree.body if isinstance(n, ast.If) for s in n.body
        if isinstance(s, ast.Assign) for t in s.targets if isinstance(t, ast.Name)}
    lazy = "__getattr__" in defined  # a package that exports lazily (the root, pool)
    missing = [n for n in exported if n not in defined and not lazy]
    assert missing == [], f"{MODULES[module]}: __all__ names what it does not define"


def _readme_layout() -> dict[str, str]:
    """The README's layout block: each top-level package folder -> the text of its entry."""
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    current = None
    for line in block.splitlines():
        head = line[:17].strip()
        if head.endswith("/") and line.startswith("  ") and not line.startswith("   "):
            current = head.rstrip("/")
            entries[current] = line[17:]
        elif current is not None and line.startswith(" " * 17):
            entries[current] += " " + line.strip()
        elif not line.startswith(" "):
            current = None
    return entries


def test_readme_layout_names_every_folder_and_module() -> None:
    entries = _readme_layout()
    assert set(entries) == FOLDERS
    for folder, text in entries.items():
        words = set(re.split(r"[\s,;:()/+]+", text))
        for path in sorted((PACKAGE / folder).rglob("*")):
            if path.name.startswith("_") or path.name == "py.typed" or \
                    path.suffix not in (".py", ".yaml", "") or "__pycache__" in path.parts:
                continue
            name = path.name if path.suffix == ".yaml" else path.stem
            assert name in words, f"README layout: {folder}/ does not mention {name}"
