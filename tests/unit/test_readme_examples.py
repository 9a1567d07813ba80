"""Every README.md code block marked ``<!-- test -->`` (the line right before its ```python
fence) runs as it is, each in a fresh namespace. The README is this project's own text."""

from __future__ import annotations

import contextlib
import io
import re
import sys
import types
from pathlib import Path
from typing import NamedTuple

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- test -->"
_FENCE = re.compile(r"^```")


class Block(NamedTuple):
    line: int
    """1-based line number of the block's first code line in README.md."""
    heading: str
    code: str


def extract_blocks(text: str) -> list[Block]:
    """The code blocks preceded by a ``<!-- test -->`` line, in order.

    Raises ``ValueError`` for a marker not directly followed by a ```python fence, or a
    block that is never closed: a marked example must not silently go untested."""
    lines = text.splitlines()
    blocks: list[Block] = []
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not blocks_open(lines, i):
            heading = line.lstrip("#").strip()
        if line.strip() == MARKER:
            fence = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if fence != "```python":
                raise ValueError(f"README.md:{i + 1}: {MARKER} is not directly followed by a"
                                 f" ```python fence (got {fence!r})")
            start = i + 2
            end = next((j for j in range(start, len(lines)) if _FENCE.match(lines[j].strip())),
                       None)
            if end is None:
                raise ValueError(f"README.md:{i + 2}: the marked block is never closed")
            blocks.append(Block(start + 1, heading, "\n".join(lines[start:end]) + "\n"))
            i = end
        i += 1
    return blocks


def blocks_open(lines: list[str], index: int) -> bool:
    """True when line ``index`` lies inside a fenced block (``#`` there is not a heading)."""
    return sum(1 for line in lines[:index] if _FENCE.match(line.strip())) % 2 == 1


BLOCKS = extract_blocks(README.read_text(encoding="utf-8"))


def test_readme_has_the_marked_examples():
    headings = [b.heading for b in BLOCKS]
    assert "From Python" in headings
    assert headings.count("Use it from LangChain and LangGraph") >= 3


def test_extractor_finds_blocks_and_refuses_stray_markers():
    text = "# A\n<!-- test -->\n```python\nx = 1\n```\n```python\ny = 2\n```\n"
    assert extract_blocks(text) == [Block(4, "A", "x = 1\n")]
    with pytest.raises(ValueError, match=r"README.md:2: .* not directly followed"):
        extract_blocks("text\n<!-- test -->\n\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="never closed"):
        extract_blocks("<!-- test -->\n```python\nx = 1\n")


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
def test_readme_block_runs(block: Block):
    code = compile(block.code, f"README.md:{block.line}", "exec")
    # A fresh module, registered while it runs, as a script is: type hints of classes the
    # block defines (LangGraph state schemas) resolve against its globals.
    module = types.ModuleType(f"readme_block_{block.line}")
    out = io.StringIO()
    sys.modules[module.__name__] = module
    try:
        with contextlib.redirect_stdout(out):
            exec(code, module.__dict__)  # our own documentation, run as documented
    except Exception as exc:
        pytest.fail(f"README.md block at line {block.line} (under '{block.heading}') raised"
                    f" {type(exc).__name__}: {exc}\n--- output so far ---\n{out.getvalue()}")
    finally:
        sys.modules.pop(module.__name__, None)
    if "print(" in block.code:
        assert out.getvalue().strip(), f"README.md block at line {block.line} printed nothing"
