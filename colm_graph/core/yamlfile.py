"""Safe YAML loading that remembers where each value came from, for one-line errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from colm_graph.core.files import file_errors
from colm_graph.errors import ColmGraphError

__all__ = ["YamlDoc", "load_yaml", "format_loc"]


def format_loc(loc: Sequence[str | int]) -> str:
    """``('models', 2, 'tier')`` -> ``models[2].tier``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<document>"


class YamlDoc:
    """A parsed YAML document plus the line of every mapping key and sequence item."""

    def __init__(self, data: Any, node: yaml.Node | None, source: str) -> None:
        self.data = data
        self.source = source
        self._node = node

    def line(self, loc: Sequence[str | int]) -> int | None:
        """1-based line of the value at ``loc``, or of its nearest existing parent."""
        node = self._node
        best = node.start_mark.line + 1 if node is not None else None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                found = None
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                        found = (key, value)
                        break
                if found is None:
                    return best
                best, node = found[0].start_mark.line + 1, found[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    return best
                node = node.value[part]
                best = node.start_mark.line + 1
            else:
                return best
        return best

    def where(self, loc: Sequence[str | int]) -> str:
        """``file:line: path`` prefix for an error at ``loc``."""
        line = self.line(loc)
        place = f"{self.source}:{line}" if line is not None else self.source
        return f"{place}: {format_loc(loc)}" if loc else place


def load_yaml(path: str | Path, *, what: str = "file") -> YamlDoc:
    """Read and parse a YAML file with ``safe_load`` semantics; errors are one line."""
    p = Path(path)
    source = str(path)
    with file_errors(source, what):
        text = p.read_text(encoding="utf-8")
    return parse_yaml(text, source=source)


MAX_DEPTH = 64
"""Deepest nesting a document may have (specs and pool files need a handful of levels)."""
MAX_VALUES = 100_000
"""Most values a document may hold once its aliases are expanded."""


class _Loader(yaml.SafeLoader):
    """The safe loader, composing no deeper than :data:`MAX_DEPTH` (a deeply nested
    document takes quadratic time to scan, then overflows the stack)."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self._depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH}"
                                              " levels", self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _check_shape(root: yaml.Node, source: str) -> None:
    """Refuse a document nested too deeply (an alias that refers to itself nests without
    end) or too large once its aliases are expanded ("billion laughs")."""
    todo, seen = [(root, 1)], 0
    while todo:
        node, depth = todo.pop()
        seen += 1
        if depth > MAX_DEPTH or seen > MAX_VALUES:
            what = (f"nested deeper than {MAX_DEPTH} levels (or an alias refers to itself)"
                    if depth > MAX_DEPTH else f"more than {MAX_VALUES} values once aliases"
                    " are expanded")
            raise ColmGraphError(f"{source}:{node.start_mark.line + 1}: invalid YAML: {what}")
        if isinstance(node, yaml.SequenceNode):
            todo.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            _check_keys(node, source)
            todo.extend((child, depth + 1) for pair in node.value for child in pair)


def _check_keys(node: yaml.MappingNode, source: str) -> None:
    """Refuse a key given twice in one mapping: YAML keeps the last silently, so a second
    ``tier:`` or ``price:`` would override the first unseen."""
    first: dict[str, int] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        line = key.start_mark.line + 1
        if key.value in first:
            name = key.value if len(key.value) <= 40 else key.value[:37] + "..."
            raise ColmGraphError(f"{source}:{line}: invalid YAML: duplicate key {name!r}"
                                 f" (first given at line {first[key.value]})")
        first[key.value] = line


def _unreadable(root: yaml.Node | None) -> yaml.ScalarNode | None:
    """The first scalar the safe constructor cannot build, to name it and its line."""
    todo = [root] if root is not None else []
    while todo:
        node = todo.pop()
        if isinstance(node, yaml.ScalarNode):
            try:
                yaml.SafeLoader("").construct_object(node)
            except Exception:
                return node
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(reversed(node.value))
        elif isinstance(node, yaml.MappingNode):
            todo.extend(child for pair in reversed(node.value) for child in reversed(pair))
    return None


def parse_yaml(text: str, *, source: str = "<string>") -> YamlDoc:
    """Parse YAML text (safe loader only)."""
    node = None
    try:
        node = yaml.compose(text, Loader=_Loader)
        if node is not None:
            _check_shape(node, source)
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ColmGraphError(f"{source}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ColmGraphError(f"{source}: invalid YAML: {exc}") from None
    except RecursionError:
        raise ColmGraphError(f"{source}: invalid YAML: nested deeper than {MAX_DEPTH}"
                             " levels") from None
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        # A scalar the safe constructor cannot build: a date out of range, an integer of
        # more than 4300 digits, an explicit tag that does not fit (``!!bool maybe``).
        bad = _unreadable(node)
        if bad is None:
            raise ColmGraphError(f"{source}: invalid YAML: {type(exc).__name__}") from None
        value = bad.value if len(bad.value) <= 40 else bad.value[:37] + "..."
        why = f" ({str(exc).split(';')[0]})" if type(exc) is ValueError else ""
        raise ColmGraphError(f"{source}:{bad.start_mark.line + 1}: invalid YAML: cannot read"
                             f" {value!r} as {bad.tag.rsplit(':', 1)[-1]}{why}") from None
    return YamlDoc(data, node, source)
