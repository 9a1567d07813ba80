"""Error types. A :class:`ColmGraphError` is a user mistake: its message is one line that
names the place (file, entry, field or flag) and what was expected; the CLI prints it
without a traceback and exits with code 2."""

from __future__ import annotations

__all__ = ["ColmGraphError", "PoolError", "ConfigError"]


class ColmGraphError(Exception):
    """A user-facing error whose message is a single line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class PoolError(ColmGraphError):
    """A model pool file or pool entry is invalid."""


class ConfigError(ColmGraphError):
    """A graph parameter or CLI argument is invalid."""
