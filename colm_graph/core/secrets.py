"""API-key values from the environment, and scrubbing them out of anything we show or write.

What :func:`scrub` removes, for every secret of :data:`PIECE` characters or more:

* every piece of :data:`PIECE` characters of it, in any letter case, also where the text
  splits it with whitespace or a wrapped line's ``|`` (a piece that starts a line's end and
  goes on after the next line's indent is one piece);
* the rest of a token that such a piece runs into, so that a partly masked echo such as
  ``sk-abcd1234****wxyz`` goes as a whole;

and every occurrence of a shorter secret (4 to 7 characters). :func:`scrub_bytes` does the
same to serialized bytes without changing their length (checkpoint blobs), and
:func:`scrub_value` to every string inside a JSON-like value.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

__all__ = ["MASK", "PIECE", "environment_secrets", "pool_secrets", "scrub", "scrub_bytes",
           "scrub_message", "scrub_value"]

MASK = "***"
PIECE = 8
"""Secrets of this many characters or more are scrubbed piece by piece: no run of this many
characters of one survives."""
_GRAM = 4
"""Pieces are found through the secret's 4-character blocks at offsets 0, 4, 8, ...: every
piece of 8 holds one of them whole."""

_SEPARATORS = re.compile(r"[\s|]+")
_WORDS = re.compile(r"[^\s|]+")
_TOKEN_REST = re.compile(r"[^\s\"'<>,;\\]*")
"""What else belongs to a token a piece of a key runs into (never a quote or backslash, so
JSON and HTML around it stay well-formed)."""
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL", re.IGNORECASE)


def pool_secrets(pool: Any, extra: Iterable[str | None] = ()) -> list[str]:
    """Values of the API-key variables a pool names (plus ``extra``), longest first."""
    values = []
    for entry in pool:
        env = entry.spec.key_env() if entry.spec is not None else None
        if env:
            values.append(os.environ.get(env, ""))
    if any(getattr(e.spec, "provider", None) == "openai" for e in pool):
        values.append(os.environ.get("OPENAI_API_KEY", ""))  # scrubbed even where unsent
    values.extend(v or "" for v in extra)
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of the environment variables whose names say they hold a key, token, secret,
    password or credential (``OPENAI_API_KEY``, ``HF_TOKEN``, ...), of 16 characters or more
    and without whitespace: what writers that do not know the pool (a checkpoint database)
    scrub."""
    env = os.environ if environ is None else environ
    values = {v.strip() for k, v in env.items() if _SECRET_NAME.search(k)}
    return sorted((v for v in values if len(v) >= 16 and not _SEPARATORS.search(v)),
                  key=len, reverse=True)


def _lower(text: str) -> str:
    """``text`` with ASCII letters in lower case (its length kept)."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


class _Needle:
    """One secret as it is searched for: lower case, without separators, and the offsets of
    its 4-character blocks by block."""

    def __init__(self, key: str | bytes) -> None:
        self.key = key
        self.grams: dict[Any, list[int]] = {}
        for j in range(0, len(key) - _GRAM + 1, _GRAM):
            self.grams.setdefault(key[j:j + _GRAM], []).append(j)


@lru_cache(maxsize=128)
def _needles(secrets: tuple[str, ...], as_bytes: bool) -> tuple[_Needle, ...]:
    keys = {_SEPARATORS.sub("", _lower(s)) for s in secrets}
    return tuple(_Needle(k.encode() if as_bytes else k) for k in keys if len(k) >= PIECE)


def _spans(text: Any, needles: Iterable[_Needle]) -> list[tuple[int, int]]:
    """Merged ``[start, end)`` runs of ``text`` (str or bytes) that match :data:`PIECE` or
    more consecutive characters of a needle."""
    found: list[tuple[int, int]] = []
    size = len(text)
    for needle in needles:
        key, n = needle.key, len(needle.key)
        for gram, offsets in needle.grams.items():
            i = text.find(gram)
            while i >= 0:
                for j in offsets:  # the block is key[j:j+4]: the text lines up with key at i-j
                    lo, hi = i, i + _GRAM
                    while lo > 0 and lo - (i - j) > 0 and text[lo - 1] == key[lo - 1 - (i - j)]:
                        lo -= 1
                    while hi < size and hi - (i - j) < n and text[hi] == key[hi - (i - j)]:
                        hi += 1
                    if hi - lo >= PIECE:
                        found.append((lo, hi))
                i = text.find(gram, i + 1)
    found.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in found:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _order(secrets: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(sorted({s for s in secrets if s}, key=lambda s: (-len(s), s)))


def scrub(text: str, secrets: Iterable[str], mask: str = MASK) -> str:
    """``text`` with every secret, every piece of one and the rest of the token a piece
    runs into replaced by ``mask`` (see the module docstring)."""
    ordered = _order(secrets)
    if not text or not ordered:
        return text
    for secret in ordered:
        if len(secret) < PIECE:
            text = text.replace(secret, mask)
    needles = _needles(ordered, False)
    if not needles:
        return text
    low = _lower(text)
    skeleton = _SEPARATORS.sub("", low)
    spans = _spans(skeleton, needles)
    if not spans:
        return text
    if len(skeleton) != len(low):  # map the runs back across the separators taken out
        starts, origins, at = [], [], 0
        for word in _WORDS.finditer(low):
            starts.append(at)
            origins.append(word.start())
            at += word.end() - word.start()

        def where(p: int) -> int:
            k = bisect_right(starts, p) - 1
            return origins[k] + p - starts[k]

        spans = [(where(lo), where(hi - 1) + 1) for lo, hi in spans]
    out, last = [], 0
    for lo, hi in spans:
        if lo < last:  # runs into the rest of the previous token
            lo = last
            if hi <= lo:
                continue
        hi = _TOKEN_REST.match(text, hi).end()  # type: ignore[union-attr]
        out.append(text[last:lo])
        out.append(mask)
        last = hi
    out.append(text[last:])
    return "".join(out)


def scrub_bytes(data: bytes, secrets: Iterable[str]) -> bytes:
    """``data`` with every run of :data:`PIECE` or more characters of a secret (any case)
    overwritten by ``*``, its length and everything else kept: safe inside length-prefixed
    formats such as msgpack."""
    ordered = _order(secrets)
    needles = _needles(ordered, True) if ordered else ()
    short = [s.encode() for s in ordered if 4 <= len(s) < PIECE]
    if not data or not (needles or short):
        return data
    spans = _spans(data.lower(), needles)
    for s in short:
        i = data.find(s)
        while i >= 0:
            spans.append((i, i + len(s)))
            i = data.find(s, i + 1)
    if not spans:
        return data
    out = bytearray(data)
    for lo, hi in spans:
        out[lo:hi] = b"*" * (hi - lo)
    return bytes(out)


def scrub_value(value: Any, secrets: Iterable[str], mask: str = MASK) -> Any:
    """``value`` with :func:`scrub` applied to every string in it (dict keys and values,
    list and tuple items); other objects are kept as they are."""
    ordered = _order(secrets)
    if not ordered:
        return value

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return scrub(v, ordered, mask)
        if isinstance(v, Mapping):
            return {walk(k): walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, tuple):
            return tuple(walk(x) for x in v)
        return v

    return walk(value)


def scrub_message(message: Any, secrets: Iterable[str], mask: str = MASK) -> Any:
    """A LangChain message with its content, ``additional_kwargs`` and tool-call arguments
    scrubbed (the message itself when nothing changed)."""
    ordered = _order(secrets)
    if not ordered:
        return message
    update: dict[str, Any] = {}
    for field in ("content", "additional_kwargs"):
        old = getattr(message, field, None)
        new = scrub_value(old, ordered, mask)
        if new != old:
            update[field] = new
    calls = getattr(message, "tool_calls", None)
    if calls:
        new_calls = scrub_value(list(calls), ordered, mask)
        if new_calls != calls:
            update["tool_calls"] = new_calls
    return message.model_copy(update=update) if update else message
