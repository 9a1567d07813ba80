"""Safe YAML loading that remembers where each value came from, for one-line errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from .errors import ColmGraphError

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
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ColmGraphError(f"{source}: {what} not found") from None
    except IsADirectoryError:
        raise ColmGraphError(f"{source}: expected a {what}, got a directory") from None
    except UnicodeDecodeError:
        raise ColmGraphError(f"{source}: {what} is not UTF-8 text") from None
    except OSError as exc:
        raise ColmGraphError(f"{source}: cannot read {what}: {exc.strerror}") from None
    return parse_yaml(text, source=source)


def parse_yaml(text: str, *, source: str = "<string>") -> YamlDoc:
    """Parse YAML text (safe loader only)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ColmGraphError(f"{source}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ColmGraphError(f"{source}: invalid YAML: {exc}") from None
    return YamlDoc(data, node, source)
