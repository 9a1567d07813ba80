"""Reading a user's file with one-line errors that name it: not found, a directory, not
UTF-8, or unreadable (permissions, a name too long), in place of a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from colm_graph.errors import ColmGraphError

__all__ = ["file_errors"]


def _a(what: str) -> str:
    return f"an {what}" if what[:1].lower() in "aeiou" else f"a {what}"


@contextmanager
def file_errors(label: str, what: str,
                error: type[ColmGraphError] = ColmGraphError) -> Iterator[None]:
    """Within the block, a failed read raises ``error`` with one line starting ``label:``
    that names the file as ``what`` (e.g. ``"graph spec"``, ``"image file"``)."""
    try:
        yield
    except FileNotFoundError:
        raise error(f"{label}: {what} not found") from None
    except IsADirectoryError:
        raise error(f"{label}: expected {_a(what)}, got a directory") from None
    except UnicodeDecodeError:
        raise error(f"{label}: {what} is not UTF-8 text") from None
    except OSError as exc:
        raise error(f"{label}: cannot read {what}: {exc.strerror}") from None
