"""``colm-graph draw SPEC``: a picture of a graph variant, offline (Mermaid, PNG or SVG)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from colm_graph.errors import ConfigError

__all__ = ["add_draw_parser", "run_draw"]

FORMATS = ("mermaid", "png", "svg")
_SUFFIXES = {".png": "png", ".svg": "svg", ".mmd": "mermaid", ".mermaid": "mermaid"}


def add_draw_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``draw`` command to ``subparsers`` (from ``ArgumentParser.add_subparsers``).

    Args:
        subparsers: the action ``add_subparsers()`` returned.

    Returns:
        The ``draw`` parser.
    """
    draw = subparsers.add_parser(
        "draw", help="draw a graph variant (Mermaid text, PNG or SVG; nothing is fetched)",
        description="Draw a graph variant: nodes with their kind, role and bound models,"
                    " conditional edges with their conditions.")
    draw.add_argument("spec", metavar="SPEC",
                      help="a shipped variant (colm, colm_vlm, cope, route, cascade, moa,"
                           " debate, self_consistency, single) or a spec file")
    draw.add_argument("--format", choices=FORMATS, default=None,
                      help="default: from the -o suffix (.png, .svg), else mermaid; only"
                           " mermaid text may go to stdout")
    draw.add_argument("-o", "--out", dest="out_file", metavar="FILE",
                      help="write the picture to FILE")
    draw.add_argument("--models", metavar="FILE",
                      help="pool file (YAML) the roles are bound to; default: the built-in"
                           " simulated pool")
    return draw


def _format(args: argparse.Namespace) -> str:
    if args.format is not None:
        return str(args.format)
    if args.out_file:
        return _SUFFIXES.get(Path(args.out_file).suffix.lower(), "mermaid")
    return "mermaid"


def run_draw(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``colm-graph draw`` with parsed ``args``; Mermaid text without ``-o`` goes to ``out``.

    Returns:
        The exit code (0).

    Raises:
        ConfigError: PNG or SVG without ``-o``, Pillow missing, or FILE cannot be written.
        SpecError: SPEC is no shipped variant or not a valid spec file.
        PoolError: the ``--models`` file is invalid.
    """
    from colm_graph.pool import ModelPool
    from colm_graph.spec.loader import load_spec
    from colm_graph.viz import draw

    fmt = _format(args)
    if fmt != "mermaid" and not args.out_file:
        raise ConfigError(f"--format {fmt}: needs -o FILE (only Mermaid text goes to stdout)")
    spec = load_spec(args.spec)
    pool = ModelPool.from_yaml(args.models) if args.models else ModelPool.default()
    data: str | bytes
    if fmt == "png":
        try:
            data = draw.to_png(spec, pool)
        except ImportError as exc:
            raise ConfigError(f"--format png: needs Pillow ({exc}); install it with"
                              " 'pip install pillow'") from None
    elif fmt == "svg":
        data = draw.to_svg(spec, pool)
    else:
        data = draw.to_mermaid(spec, pool)
    if not args.out_file:
        out.write(str(data))
        return 0
    path = Path(args.out_file)
    try:
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"-o {path}: cannot write ({exc.strerror or exc})") from None
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8"))
    out.write(f"wrote {path} ({fmt}, {size} bytes)\n")
    return 0
