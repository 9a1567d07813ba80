"""Durable runs: a SQLite checkpointer so that a killed run resumes where it stopped.

``colm-graph run QUESTION --checkpoint FILE [--thread ID]`` compiles the graph with a
:class:`~langgraph.checkpoint.sqlite.SqliteSaver` over ``FILE`` and streams with
``durability="sync"``: every finished step (and every finished task of a fan-out step) is
on disk before the next one starts. Running the same command again after a crash, a kill
or a failed call continues from the last finished step; finished model calls are not made
(nor paid for) again, and their ledger records are kept.

What a run on a thread does (:func:`resume_or_start`):

* the thread is new, or its last run finished: a new run with the inputs (the graph's
  first step clears the previous run's fields);
* its last run stopped before the end and was asked the same inputs: it continues, with
  input ``None``, from the step that did not finish;
* its last run stopped before the end but was asked something else: a new run with the
  inputs; the unfinished one is given up (a note on stderr says so).

The default thread id (:func:`default_thread_id`) is a hash of the graph name, the inputs
and the parameters, so the same command resumes and a different one starts its own thread.

Nothing secret reaches the database: every blob the saver writes (checkpoints, and the
pending writes, where LangGraph keeps a failed task's raw exception) goes through
:class:`ScrubbingSerializer`, which overwrites every piece of an API key (the ``secrets``
given, plus the environment's key-like variables) with ``*`` before it is stored; the
metadata column is scrubbed the same way.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from colm_graph.core.secrets import environment_secrets, scrub_bytes, scrub_value
from colm_graph.errors import ConfigError

if TYPE_CHECKING:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.pregel import Pregel

__all__ = ["DURABILITY", "RunStart", "ScrubbingSerializer", "connect_checkpointer",
           "default_thread_id", "open_checkpointer", "resume_or_start", "thread_config"]

DURABILITY = "sync"
"""LangGraph's ``durability`` for durable runs: each step is saved before the next starts."""

_SQLITE_MAGIC = b"SQLite format 3\x00"
_INPUT_KEYS = ("question", "images", "home", "clients")
"""The input fields a resumed run must share with the run it continues."""


def _check_path(path: Path, flag: str) -> None:
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: expected a SQLite file, got a directory")
    if not path.exists():
        if not path.parent.is_dir():
            raise ConfigError(f"{flag} {path}: directory {str(path.parent)!r} not found")
        return
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot read: {exc.strerror}") from None
    if head and head != _SQLITE_MAGIC:  # an empty file is an empty database
        raise ConfigError(f"{flag} {path}: not a SQLite database")


class ScrubbingSerializer(JsonPlusSerializer):
    """LangGraph's serializer, with every piece of a secret in what it writes overwritten by
    ``*`` (the bytes keep their length, so the msgpack framing holds; see
    :func:`~colm_graph.core.secrets.scrub_bytes`). Reading is unchanged."""

    def __init__(self, secrets: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.secrets = tuple(secrets)

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        kind, data = super().dumps_typed(obj)
        return kind, scrub_bytes(bytes(data), self.secrets)


_ROW_KEYS = ("thread_id", "checkpoint_ns", "checkpoint_id")
"""Configurable keys that name the row: stored as given."""


@lru_cache(maxsize=1)
def _saver_class() -> type[SqliteSaver]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    class _Saver(SqliteSaver):
        """A :class:`SqliteSaver` that scrubs the metadata it stores too (the blobs are
        scrubbed by its :class:`ScrubbingSerializer`)."""

        def put(self, config: RunnableConfig, checkpoint: Any, metadata: Any,
                new_versions: Any) -> RunnableConfig:
            secrets = getattr(self.serde, "secrets", ())
            conf: dict[str, Any] = dict(config)
            for key in ("metadata", "configurable"):
                if isinstance(conf.get(key), Mapping):
                    conf[key] = {k: v if k in _ROW_KEYS or not isinstance(v, str)
                                 else scrub_value(v, secrets, "*")
                                 for k, v in conf[key].items()}
            return super().put(conf, checkpoint,  # type: ignore[arg-type]
                               scrub_value(dict(metadata), secrets, "*"), new_versions)

    return _Saver


def connect_checkpointer(path: str | Path, *, flag: str = "--checkpoint",
                         secrets: Iterable[str | None] = ()) -> SqliteSaver:
    """A set-up :class:`SqliteSaver` over ``path`` (created if missing) whose every write is
    scrubbed of ``secrets`` (the pool's keys: :func:`~colm_graph.core.secrets.pool_secrets`) and
    of the environment's key-like variables. The caller closes ``saver.conn``;
    :func:`open_checkpointer` does it for you."""
    if not str(path).strip():
        raise ConfigError(f"{flag}: expected a file name, got {str(path)!r}")
    p = Path(path)
    _check_path(p, flag)
    conn = None
    try:
        conn = sqlite3.connect(p, check_same_thread=False)
        _check_tables(conn)
        hidden = {s for s in secrets if s and len(s) >= 4} | set(environment_secrets())
        saver = _saver_class()(conn, serde=ScrubbingSerializer(sorted(hidden)))
        saver.setup()
    except (sqlite3.Error, ValueError) as exc:
        if conn is not None:
            conn.close()
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{flag} {p}: not a usable checkpoint database ({first})") from None
    return saver


_TABLES = {"checkpoints": {"thread_id", "checkpoint_ns", "checkpoint_id", "checkpoint",
                           "metadata"},
           "writes": {"thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx",
                      "channel", "value"}}


def _check_tables(conn: sqlite3.Connection) -> None:
    """Refuse (before changing anything) a database whose tables of the saver's names are
    something else's."""
    for table, needed in _TABLES.items():
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if columns and not needed <= columns:
            raise ValueError(f"table {table!r} is not a checkpoint table: it lacks"
                             f" {', '.join(sorted(needed - columns))}")


@contextmanager
def open_checkpointer(path: str | Path, *, flag: str = "--checkpoint",
                      secrets: Iterable[str | None] = ()) -> Iterator[SqliteSaver]:
    """:func:`connect_checkpointer` as a context manager that closes the connection."""
    saver = connect_checkpointer(path, flag=flag, secrets=secrets)
    try:
        yield saver
    finally:
        saver.conn.close()


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def default_thread_id(graph_name: str, inputs: Mapping[str, Any],
                      params: Mapping[str, Any] | None = None,
                      roles: Mapping[str, Any] | None = None) -> str:
    """A stable thread id for one command: ``<graph>-<hash of inputs, params and roles>``.
    The same command gets the same id (and so resumes); any change gets another."""
    key = {"graph": graph_name, "inputs": {k: inputs.get(k) for k in _INPUT_KEYS},
           "params": dict(params or {}), "roles": dict(roles or {})}
    return f"{graph_name}-{_digest(key)[:16]}"


def thread_config(config: RunnableConfig | None, thread_id: str) -> RunnableConfig:
    """``config`` with ``configurable.thread_id`` set (everything else kept)."""
    out: RunnableConfig = dict(config or {})  # type: ignore[assignment]
    out["configurable"] = {**(out.get("configurable") or {}), "thread_id": thread_id}
    return out


@dataclass(frozen=True)
class RunStart:
    """What to pass to ``stream``/``invoke`` on the thread, and why."""

    input: dict[str, Any] | None
    """The inputs, every input field present (a new run), or ``None`` (continue the
    unfinished run)."""
    resumed_from: tuple[str, ...] = ()
    """The nodes the unfinished run continues with (empty for a new run)."""
    note: str | None = None
    """A line for the user (stderr), or ``None``."""

    @property
    def resuming(self) -> bool:
        return self.input is None


def _same_inputs(stored: Mapping[str, Any], inputs: Mapping[str, Any]) -> bool:
    for key in _INPUT_KEYS:
        given = inputs.get(key) or None
        if key == "home" and given is None:
            continue  # the select step stores the graph's own ``home`` parameter there too
        if (stored.get(key) or None) != given:
            return False
    return True


def _fresh(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``inputs`` with every input field present: the graph's first step does not clear
    ``home``, ``clients`` or ``images``, so a field left out would keep the last run's."""
    return {**dict.fromkeys(_INPUT_KEYS), **inputs}


def resume_or_start(graph: Pregel, inputs: dict[str, Any], config: RunnableConfig
                    ) -> RunStart:
    """Decide how to run ``inputs`` on the thread of ``config`` (see the module docstring).
    ``graph`` must have a checkpointer and ``config`` a ``thread_id``."""
    thread = (config.get("configurable") or {}).get("thread_id")
    if graph.checkpointer is None or thread is None:
        raise ConfigError("resume_or_start: needs a graph with a checkpointer and a"
                          " configurable thread_id")
    snapshot = graph.get_state(config)
    pending = tuple(dict.fromkeys(snapshot.next))
    if not pending:  # new thread, or the last run finished
        return RunStart(_fresh(inputs))
    if _same_inputs(snapshot.values, inputs):
        note = f"resuming run on thread {thread} from node(s) {', '.join(pending)}"
        return RunStart(None, pending, note)
    note = (f"thread {thread} holds an unfinished run of another question; starting a new"
            " run (the unfinished one is given up)")
    return RunStart(_fresh(inputs), (), note)
