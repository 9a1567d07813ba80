"""One SQLite connection per thread for the files processes share (the spend store, the
idempotency claims, the eval's call cache): WAL, autocommit, waiting for locks."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

__all__ = ["thread_connection"]


def thread_connection(local: threading.local, path: Path) -> sqlite3.Connection:
    """This thread's connection to ``path`` (made on first use: WAL, autocommit, waiting up
    to 30 s for a lock), kept in ``local``."""
    db: sqlite3.Connection | None = getattr(local, "db", None)
    if db is None:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=30000")
        local.db = db
    return db
