"""Error types. A :class:`ColmGraphError` is a user mistake: its message is one line that
names the place (file, entry, field or flag) and what was expected; the CLI prints it
without a traceback and exits with code 2."""

from __future__ import annotations

__all__ = ["ColmGraphError", "PoolError", "ConfigError", "ModelCallError", "RunLimitError"]


class ColmGraphError(Exception):
    """A user-facing error whose message is a single line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class PoolError(ColmGraphError):
    """A model pool file or pool entry is invalid."""


class ConfigError(ColmGraphError):
    """A graph parameter or CLI argument is invalid."""


class RunLimitError(ColmGraphError):
    """A run reached its step limit or its paid-call limit (both derived from its spec and
    parameters, see :mod:`colm_graph.spec.limits`) and was stopped before the next node.
    The message names the limit, the graph and the spend so far; ``limit`` is ``"steps"``
    or ``"paid_calls"``, ``value`` the limit, ``graph`` the graph's name, ``usd`` and
    ``paid_calls`` what the run had spent."""

    def __init__(self, message: str, *, limit: str = "", value: int = 0, graph: str = "",
                 usd: float = 0.0, paid_calls: int = 0) -> None:
        super().__init__(message)
        self.limit, self.value, self.graph = limit, value, graph
        self.usd, self.paid_calls = usd, paid_calls


class ModelCallError(RuntimeError):
    """A model call that failed after its retries: names the pool model, its endpoint
    (without secrets) and the fault, in one line. Not a user mistake (not a
    :class:`ColmGraphError`): the CLI keeps the partial result and exits 1. ``transient``
    says whether the fault was of the kind that is retried (resets, 5xx, malformed or
    cut-off replies)."""

    def __init__(self, model: str, endpoint: str, fault: str, *, transient: bool = True
                 ) -> None:
        self.model, self.endpoint, self.fault, self.transient = model, endpoint, fault, transient
        super().__init__(" ".join(f"model {model} at {endpoint} failed: {fault}".split()))
