"""Never paying twice for the same call: a persistent cache of model replies.

A run finds its cache as ``configurable["colm_call_cache"]``: any LangChain
:class:`~langchain_core.caches.BaseCache` (:class:`SQLiteCallCache` here, one SQLite file
shared by processes; ``InMemoryCache``, or a Redis-backed one from ``langchain-redis``).
Every call is looked up before it is planned; a hit is answered at once, recorded with
``usd: 0``, ``cached: true`` and ``cached_usd`` (what the call cost when it was made), and
holds nothing of a budget. A call is stored after it succeeds unless it was cut short
(``finish_reason: length`` or stopped at its token bound) or stood in for another.

Within one event loop, identical calls go one at a time (:func:`one_at_a_time`): the
second waits for the first and is answered from the cache.

The key (:func:`call_key`) is the request as the provider sees it and the model's settings:
provider, model id, endpoint, every entry setting that reaches the request (temperature,
max_tokens, answer format, system-prompt handling, the simulator's settings; not its name,
price or timeout) and the call's own
keywords (a sample's ``seed``, a structured-output schema), and the whole prompt
(LangChain's serialisation of the messages, images included). The budget's ``max_tokens``
cap is not in it: a stored reply was never cut short, so it stands for any cap. Local
Hugging Face calls are not cached: their pipelines draw each sample without a seed in the
request, so a stored reply could stand for another draw.

This layer, rather than a chat model's own ``cache`` field, keeps the cost accounting and
the paid-stream guard (LangChain reads a model's cache only in ``invoke``, never while
streaming) and knows what a hit would have cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
import time
import warnings
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.load import dumps, loads
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration

from colm_graph.core.sqlite import thread_connection
from colm_graph.pool import PoolEntry

__all__ = ["SQLiteCallCache", "cacheable", "call_key", "one_at_a_time"]

_ALLOWED = (ChatGeneration, AIMessage)  # what a cache file may revive, and nothing else
_NOT_SENT = ("name", "api_key_env", "tier", "price", "domains", "description", "timeout_s")


_LOCKS: dict[tuple[int, int, str], tuple[asyncio.Lock, int]] = {}


@contextlib.asynccontextmanager
async def one_at_a_time(cache: Any, key: tuple[str, str]) -> AsyncIterator[None]:
    """Hold the key of a call while it is looked up, made and stored, so that an identical
    call of the same event loop waits and then finds its reply in ``cache`` instead of
    paying for it too (items of an eval, a sweep's values, graphs that ask alike)."""
    name = (id(asyncio.get_running_loop()), id(cache),
            hashlib.sha256(f"{key[1]}\0{key[0]}".encode()).hexdigest())
    lock, users = _LOCKS.get(name, (asyncio.Lock(), 0))
    _LOCKS[name] = (lock, users + 1)
    try:
        async with lock:
            yield
    finally:
        lock, users = _LOCKS[name]
        if users == 1:
            del _LOCKS[name]
        else:
            _LOCKS[name] = (lock, users - 1)


def cacheable(entry: PoolEntry) -> bool:
    """Whether calls to ``entry`` may be answered from the cache (not Hugging Face's)."""
    return entry.provider != "huggingface"


def call_key(entry: PoolEntry, messages: Sequence[BaseMessage], kwargs: dict[str, Any],
             endpoint: str) -> tuple[str, str]:
    """``(prompt, llm_string)`` of a call, as :class:`BaseCache` takes them."""
    if entry.spec is not None:  # every setting but those that never reach the request
        settings: Any = entry.spec.model_dump(mode="json", exclude=set(_NOT_SENT))
    else:  # a chat model object: LangChain's own description of it, and its pool name
        # (two objects of one class may describe themselves alike)
        settings = {"name": entry.name, "llm": entry.chat_model._get_llm_string()}
    llm = json.dumps({"entry": settings, "answer_format": entry.answer_format,
                      "system_prompt": entry.system_prompt, "endpoint": endpoint,
                      "kwargs": kwargs}, sort_keys=True, default=str)
    return dumps(list(messages)), llm


class SQLiteCallCache(BaseCache):
    """A LangChain cache in one SQLite file (WAL; safe across the threads and processes of
    one machine). Values are LangChain's own serialisation of the generations."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db().execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY,"
                           " value TEXT NOT NULL, created REAL NOT NULL)")

    def _db(self) -> Any:
        return thread_connection(self._local, self.path)

    @staticmethod
    def _key(prompt: str, llm_string: str) -> str:
        return hashlib.sha256(f"{llm_string}\0{prompt}".encode()).hexdigest()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        rows = self._db().execute("SELECT value FROM calls WHERE key = ?",
                                  (self._key(prompt, llm_string),)).fetchall()  # no open read
        if not rows:
            return None
        with warnings.catch_warnings():  # loads is marked beta; its use here is plain
            warnings.simplefilter("ignore")
            value: RETURN_VAL_TYPE = loads(rows[0][0], allowed_objects=_ALLOWED)
        return value

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        self._db().execute("INSERT OR REPLACE INTO calls (key, value, created) VALUES"
                           " (?, ?, ?)", (self._key(prompt, llm_string),
                                          dumps(list(return_val)), time.time()))

    def clear(self, **kwargs: Any) -> None:
        self._db().execute("DELETE FROM calls")

    def __len__(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM calls").fetchone()[0])
