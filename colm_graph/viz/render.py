"""Render a :class:`~colm_graph.viz.layout.Layout` as SVG text or as a PNG (Pillow's built-in
font, no system fonts), and measure text for each."""

from __future__ import annotations

import functools
import io
import math
import unicodedata
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

from colm_graph.viz.shapes import EDGE, HL, Arrow, Box, Layout, Point, Text

if TYPE_CHECKING:
    from PIL import ImageDraw, ImageFont

__all__ = ["png_measure", "render_png", "render_svg", "svg_measure"]

FONT_FAMILY = "Helvetica, Arial, 'Liberation Sans', sans-serif"
# Helvetica advance widths (1/1000 em) of ASCII 32..126.
_HELVETICA = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
)
_WIDE = {"·": 278, "×": 584}
_PLAIN = str.maketrans({"×": "x", "—": "-", "–": "-", "≥": ">=", "≤": "<=", "…": "...",
                        "‘": "'", "’": "'", "“": '"', "”": '"', "→": "->"})
SUPERSAMPLE = 2


def svg_measure(text: str, size: float, bold: bool) -> float:
    """Width of ``text`` in a Helvetica-like font, with a margin for wider fallbacks."""
    units = sum(_HELVETICA[ord(c) - 32] if 32 <= ord(c) < 127 else _WIDE.get(c, 600)
                for c in text)
    return units * size / 1000 * (1.12 if bold else 1.06)


def _plain(text: str) -> str:
    """Text the built-in font can show: it has ASCII and '·' only."""
    text = unicodedata.normalize("NFKD", text.translate(_PLAIN))
    return "".join(c if c.isascii() or c == "·" else "" if unicodedata.combining(c) else "?"
                   for c in text)


@functools.lru_cache(maxsize=32)
def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    return ImageFont.load_default(size=px)


def png_measure(text: str, size: float, bold: bool) -> float:
    """Width of ``text`` in Pillow's built-in font (Aileron), at ``size`` units."""
    return float(_font(40).getlength(_plain(text))) * size / 40 * (1.05 if bold else 1.0)


# --- SVG ------------------------------------------------------------------------------


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _svg_text(t: Text) -> str:
    weight = ' font-weight="bold"' if t.bold else ""
    return (f'<text x="{_num(t.x)}" y="{_num(t.y)}" font-size="{_num(t.size)}"'
            f' text-anchor="{t.anchor}" fill="{t.color}"{weight}>{escape(t.text)}</text>')


def _svg_path(a: Arrow) -> str:
    d = [f"M{_num(a.start[0])},{_num(a.start[1])}"]
    for c1, c2, p in a.curves:
        d.append("C" + " ".join(f"{_num(x)},{_num(y)}" for x, y in (c1, c2, p)))
    return " ".join(d)


def _svg_arrow(a: Arrow) -> list[str]:
    color, width = (HL, 2.5) if a.highlight else (EDGE, 1.3)
    dash = ' stroke-dasharray="6 4"' if a.dashed else ""
    cls = "edge highlight" if a.highlight else "edge"
    out = [f'<g class="{cls}" data-source={quoteattr(a.source)}'
           f' data-target={quoteattr(a.target)}>',
           f'<path d="{_svg_path(a)}" fill="none" stroke="{color}" stroke-width="{width}"'
           f"{dash}/>",
           f'<polygon points="{" ".join(f"{_num(x)},{_num(y)}" for x, y in a.head)}"'
           f' fill="{color}"/>']
    if a.label_box:
        x, y, w, h = a.label_box
        out.append(f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}"'
                   ' rx="3" fill="#ffffff" fill-opacity="0.85"/>')
    out += [_svg_text(t) for t in a.texts]
    return out + ["</g>"]


def _svg_box(b: Box) -> list[str]:
    stroke, width = (HL, 3.0) if b.highlight else (b.stroke, 1.2)
    cls = f"{b.kind} highlight" if b.highlight else b.kind
    out = [f'<g class="{cls}" data-name={quoteattr(b.name)}>']
    if b.kind == "terminal":
        out.append(f'<circle cx="{_num(b.x)}" cy="{_num(b.y)}" r="{_num(b.w / 2)}"'
                   f' fill="{b.fill}" stroke="{stroke}" stroke-width="2"/>')
        if b.name == "END":
            out.append(f'<circle cx="{_num(b.x)}" cy="{_num(b.y)}" r="{_num(b.w / 4)}"'
                       f' fill="{stroke}"/>')
    else:
        rx = 8 if b.kind == "node" else 3
        out.append(f'<rect x="{_num(b.x - b.w / 2)}" y="{_num(b.y - b.h / 2)}"'
                   f' width="{_num(b.w)}" height="{_num(b.h)}" rx="{rx}" fill="{b.fill}"'
                   f' stroke="{stroke}" stroke-width="{width}"/>')
    out += [_svg_text(t) for t in b.texts]
    return out + ["</g>"]


def render_svg(lay: Layout) -> str:
    """A standalone SVG document (no scripts, styles by attribute, nothing fetched)."""
    w, h = math.ceil(lay.width), math.ceil(lay.height)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}"'
           f' viewBox="0 0 {w} {h}" font-family="{FONT_FAMILY}">',
           f"<title>{escape(lay.texts[0].text if lay.texts else 'graph')}</title>",
           f'<rect width="{w}" height="{h}" fill="#ffffff"/>']
    out += [_svg_text(t) for t in lay.texts]
    for a in lay.arrows:
        out += _svg_arrow(a)
    for b in lay.boxes:
        out += _svg_box(b)
    return "\n".join(out + ["</svg>"]) + "\n"


# --- PNG ------------------------------------------------------------------------------


def _bezier(p0: Point, c1: Point, c2: Point, p1: Point, n: int = 20) -> list[Point]:
    pts = []
    for k in range(1, n + 1):
        t = k / n
        u = 1 - t
        pts.append((u ** 3 * p0[0] + 3 * u * u * t * c1[0] + 3 * u * t * t * c2[0]
                    + t ** 3 * p1[0],
                    u ** 3 * p0[1] + 3 * u * u * t * c1[1] + 3 * u * t * t * c2[1]
                    + t ** 3 * p1[1]))
    return pts


def _dashes(pts: list[Point], on: float, off: float) -> list[list[Point]]:
    out: list[list[Point]] = []
    cur: list[Point] = [pts[0]]
    pos, drawing = 0.0, True
    for a, b in zip(pts, pts[1:], strict=False):
        seg = math.dist(a, b)
        done = 0.0
        while seg - done > 1e-9:
            limit = (on if drawing else off) - pos
            step = min(limit, seg - done)
            done += step
            pos += step
            t = done / seg
            p = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
            if drawing:
                cur.append(p)
            if pos >= (on if drawing else off) - 1e-9:
                if drawing:
                    out.append(cur)
                drawing, pos, cur = not drawing, 0.0, [p]
    if drawing and len(cur) > 1:
        out.append(cur)
    return out


def _png_text(draw: ImageDraw.ImageDraw, t: Text, s: float) -> None:
    px = max(1, round(t.size * s))
    anchor = "ms" if t.anchor == "middle" else "ls"
    kwargs: dict[str, Any] = {"stroke_width": max(1, round(px * 0.025)),
                              "stroke_fill": t.color} if t.bold else {}
    draw.text((t.x * s, t.y * s), _plain(t.text), font=_font(px), fill=t.color,
              anchor=anchor, **kwargs)


def _png_arrow(draw: ImageDraw.ImageDraw, a: Arrow, s: float) -> None:
    color, width = (HL, 2.5) if a.highlight else (EDGE, 1.3)
    pts: list[Point] = [a.start]
    for c1, c2, p in a.curves:
        pts += _bezier(pts[-1], c1, c2, p)
    scaled = [(x * s, y * s) for x, y in pts]
    for part in _dashes(scaled, 6 * s, 4 * s) if a.dashed else [scaled]:
        draw.line(part, fill=color, width=max(1, round(width * s)), joint="curve")
    draw.polygon([(x * s, y * s) for x, y in a.head], fill=color)
    if a.label_box:
        x, y, w, h = a.label_box
        draw.rounded_rectangle([x * s, y * s, (x + w) * s, (y + h) * s], radius=3 * s,
                               fill="#ffffff")
    for t in a.texts:
        _png_text(draw, t, s)


def _png_box(draw: ImageDraw.ImageDraw, b: Box, s: float) -> None:
    stroke, width = (HL, 3.0) if b.highlight else (b.stroke, 1.2)
    xy = [(b.x - b.w / 2) * s, (b.y - b.h / 2) * s, (b.x + b.w / 2) * s, (b.y + b.h / 2) * s]
    if b.kind == "terminal":
        draw.ellipse(xy, fill=b.fill, outline=stroke, width=max(1, round(2 * s)))
        if b.name == "END":
            r = b.w / 4 * s
            draw.ellipse([b.x * s - r, b.y * s - r, b.x * s + r, b.y * s + r], fill=stroke)
    else:
        draw.rounded_rectangle(xy, radius=(8 if b.kind == "node" else 3) * s, fill=b.fill,
                               outline=stroke, width=max(1, round(width * s)))
    for t in b.texts:
        _png_text(draw, t, s)


def render_png(lay: Layout, scale: float) -> bytes:
    """PNG bytes of the layout at ``scale`` pixels per unit (drawn larger, then reduced)."""
    from PIL import Image, ImageDraw

    if not 0.25 <= scale <= 8:
        raise ValueError(f"scale: expected 0.25 to 8, got {scale}")
    s = scale * SUPERSAMPLE
    size = (math.ceil(lay.width * s), math.ceil(lay.height * s))
    image = Image.new("RGB", size, "#ffffff")
    draw = ImageDraw.Draw(image)
    for a in lay.arrows:
        _png_arrow(draw, a, s)
    for b in lay.boxes:
        _png_box(draw, b, s)
    for t in lay.texts:
        _png_text(draw, t, s)
    final = (math.ceil(lay.width * scale), math.ceil(lay.height * scale))
    image = image.resize(final, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
