"""Token counts that are upper bounds, for checking a paid call against its budget before
it is made and for counting a streamed reply as it arrives.

* A model whose tokenizer is known and on disk is counted with it: OpenAI model names with
  ``tiktoken``, when the encoding's file is already in tiktoken's cache (``TIKTOKEN_CACHE_DIR``)
  and matches its published SHA-256, or an offline encoding plugin provides it. Nothing is
  ever downloaded: without the file the bound below is used.
* Otherwise the count is the text's UTF-8 byte count: every token of a byte-level BPE
  (GPT-2, tiktoken, Llama 3, Qwen, ...) or of a SentencePiece model with byte fallback
  stands for at least one byte, so no such tokenizer makes more tokens than a text has
  bytes - whatever the script (CJK: 3 bytes a character) or whitespace runs.
* The built-in simulator's own count (:func:`colm_graph.core.ledger.estimate_tokens`) is
  exact for it; it gets a 25% margin all the same.

Chat formatting adds a few tokens a message; :data:`MESSAGE_OVERHEAD` and
:data:`CALL_OVERHEAD` cover OpenAI's (3 a message, 3 for the reply's priming, per OpenAI's
cookbook "How to count tokens with tiktoken") with room to spare.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from colm_graph.core.ledger import estimate_tokens

__all__ = ["CALL_OVERHEAD", "IMAGE_TOKEN_BOUND", "MESSAGE_OVERHEAD", "Counter", "content_parts",
           "counter", "prompt_bound"]

MESSAGE_OVERHEAD = 8
"""Tokens a chat template may add around one message (OpenAI's is 3, or 4 with a name)."""
CALL_OVERHEAD = 16
"""Tokens a call may add (reply priming, 3 for OpenAI)."""
IMAGE_TOKEN_BOUND = 2_000
"""Most tokens one image may cost (OpenAI's high-detail 2048 px tiling is 1,105)."""
SIM_MARGIN = 1.25

_ENCODING_SHA256 = {
    "r50k_base": "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    "p50k_base": "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
"""The published SHA-256 of each encoding file (as tiktoken 0.14's ``openai_public``)."""
_ENCODING_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
_LOAD_LOCK = threading.Lock()


class Counter:
    """Counts tokens of a text as an upper bound; ``kind`` names how (shown in records)."""

    def __init__(self, kind: str, count: Callable[[str], int]) -> None:
        self.kind, self._count = kind, count

    def __call__(self, text: str) -> int:
        return self._count(text)

    def __repr__(self) -> str:
        return f"Counter({self.kind!r})"


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "replace"))


def _sim(text: str) -> int:
    return math.ceil(estimate_tokens(text) * SIM_MARGIN)


BYTES = Counter("bytes", _bytes)
SIM = Counter("simulator", _sim)


def _cache_file(name: str) -> str | None:
    """tiktoken's cache file of encoding ``name``, if it is there and intact."""
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR"))
    if cache_dir is None:
        import tempfile

        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir or name not in _ENCODING_SHA256:
        return None
    path = os.path.join(cache_dir, hashlib.sha1(_ENCODING_URL.format(name).encode()).hexdigest())
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return path if hashlib.sha256(data).hexdigest() == _ENCODING_SHA256[name] else None


def _no_download(blobpath: str) -> bytes:
    raise OSError(f"not downloading {blobpath}: colm_graph uses tokenizer files on disk only")


@lru_cache(maxsize=64)
def _tiktoken(model: str) -> Counter | None:
    try:
        import tiktoken
        import tiktoken.load
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None
    try:
        name = encoding_name_for_model(model.split("/")[-1])
    except KeyError:
        return None
    with _LOAD_LOCK:
        offline = f"{name}_offline"
        choice = offline if offline in tiktoken.list_encoding_names() else \
            name if _cache_file(name) else None
        if choice is None:
            return None
        # a file that vanished between the check and the load must not be fetched instead
        fetch = tiktoken.load.read_file
        tiktoken.load.read_file = _guarded(fetch)  # type: ignore[assignment]
        try:
            enc = tiktoken.get_encoding(choice)
        except Exception:  # a broken cache or plugin: the byte bound is still right
            return None
        finally:
            tiktoken.load.read_file = fetch

    def count(text: str) -> int:
        return len(enc.encode(text, disallowed_special=()))

    return Counter(f"tiktoken:{choice}", count)


def _guarded(read: Callable[[str], bytes]) -> Callable[[str], bytes]:
    def read_local(blobpath: str) -> bytes:
        if "://" in blobpath:
            return _no_download(blobpath)
        return read(blobpath)
    return read_local


def counter(entry: Any) -> Counter:
    """The token counter of pool entry ``entry``: its tokenizer, else the byte bound."""
    provider = getattr(entry, "provider", None)
    if provider == "sim":
        return SIM
    spec = getattr(entry, "spec", None)
    model = getattr(spec, "model", None) if spec is not None else None
    if provider == "openai" and isinstance(model, str) and model:
        found = _tiktoken(model)
        if found is not None:
            return found
    return BYTES


def content_parts(content: Any) -> tuple[list[str], int]:
    """The texts of a message's content (a string or content blocks), and how many of its
    blocks are not text (images...)."""
    if isinstance(content, str):
        return [content], 0
    texts, images = [], 0
    for block in content if isinstance(content, list) else [content]:
        if isinstance(block, dict) and block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif isinstance(block, str):
            texts.append(block)
        else:
            images += 1
    return texts, images


def prompt_bound(messages: Sequence[Any], count: Counter) -> int:
    """Upper bound of the input tokens of a call that sends ``messages``."""
    total = CALL_OVERHEAD
    for m in messages:
        texts, images = content_parts(getattr(m, "content", m))
        total += MESSAGE_OVERHEAD + sum(count(t) for t in texts) + images * IMAGE_TOKEN_BOUND
    return total
