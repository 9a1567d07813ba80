"""The pieces of a graph picture, shared by the layout, its geometry and the SVG and PNG
renderers: sizes, colours, the placed shapes (:class:`Box`, :class:`Arrow`, :class:`Text`),
a finished :class:`Layout`, and text wrapping by measured width."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "ARROW", "EDGE", "FILLS", "FONT", "GAP", "HEAD_FONT", "HL", "LABEL_FONT", "LABEL_LINE",
    "LABEL_TEXT_W", "LEGEND", "LINE", "MARGIN", "MUTED", "NODE_TEXT_W", "PAD_X", "PAD_Y",
    "ROW_GAP", "TEXT", "TITLE_FONT", "Arrow", "Box", "Curve", "Item", "Layout", "Measure",
    "Point", "Text", "wrap", "wrap_px",
]

Measure = Callable[[str, float, bool], float]
"""``measure(text, font_size, bold) -> width``."""
Point = tuple[float, float]
Curve = tuple[Point, Point, Point]

FONT, TITLE_FONT, LABEL_FONT, HEAD_FONT = 12.0, 13.0, 11.0, 15.0
NODE_TEXT_W, LABEL_TEXT_W = 290.0, 220.0
PAD_X, PAD_Y, GAP, ROW_GAP, ARROW, MARGIN = 12.0, 8.0, 36.0, 26.0, 9.0, 20.0
LINE, LABEL_LINE = 1.35, 1.3
FILLS = {"local": ("#dbeafe", "#1e3a8a"), "paid": ("#fde2cf", "#9a3412"),
         "mixed": ("#ede9fe", "#5b21b6"), None: ("#f3f4f6", "#4b5563")}
LEGEND = {"local": "local tier", "paid": "paid tier", "mixed": "both tiers", None: "no model"}
HL, EDGE, TEXT, MUTED = "#e11d48", "#4b5563", "#111827", "#6b7280"


@dataclass
class Text:
    x: float
    y: float
    """Baseline."""
    text: str
    size: float
    bold: bool = False
    anchor: str = "middle"
    """``middle`` or ``start``."""
    color: str = TEXT


@dataclass
class Box:
    name: str
    x: float
    y: float
    w: float
    h: float
    """Centre and size; circles (START, END) have ``w == h``."""
    fill: str
    stroke: str
    kind: str = "node"
    """``node``, ``terminal`` (a circle) or ``legend``."""
    highlight: bool = False
    texts: list[Text] = field(default_factory=list)


@dataclass
class Arrow:
    source: str
    target: str
    start: Point
    curves: list[Curve]
    """Cubic Bézier segments (control, control, end) from ``start`` to the head's base."""
    head: list[Point]
    dashed: bool
    highlight: bool = False
    label_box: tuple[float, float, float, float] | None = None
    """x, y, width, height of the label's background."""
    texts: list[Text] = field(default_factory=list)


@dataclass
class Layout:
    width: float
    height: float
    boxes: list[Box]
    arrows: list[Arrow]
    texts: list[Text]


@dataclass(eq=False)
class Item:
    row: int
    left: float
    right: float
    """Extent around the anchor x (a node's centre, a dummy's line)."""
    node: str | None = None
    back: bool = False
    label: list[str] = field(default_factory=list)
    x: float = 0.0
    index: int = 0
    links: list[Item] = field(default_factory=list)


def wrap(text: str, width: int) -> list[str]:
    """Split ``text`` into lines of at most ``width`` characters at spaces (or hard)."""
    return wrap_px(text, float(width), lambda s, size, bold: float(len(s)), 1.0)


def wrap_px(text: str, width: float, measure: Measure, size: float,
            bold: bool = False) -> list[str]:
    """Split ``text`` at spaces into lines no wider than ``width`` (long words are cut)."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        while len(word) > 1 and measure(word, size, bold) > width:
            cut = max([1] + [i for i in range(2, len(word))
                             if measure(word[:i], size, bold) <= width])
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:cut])
            word = word[cut:]
        joined = f"{line} {word}" if line else word
        if line and measure(joined, size, bold) > width:
            lines.append(line)
            line = word
        else:
            line = joined
    return [*lines, line] if line or not lines else lines
