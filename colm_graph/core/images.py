"""Images for vision-language clients: a file becomes a ``data:`` URL, and anything that is
not a PNG, JPEG, GIF or WebP image is refused with a one-line error.

Image URLs that come from outside (``colm-graph serve`` requests, the chat model's
messages) must be ``data:image/...;base64,...`` URLs (:func:`check_image_url`): a client
model or its server would fetch any other URL, so ``file:`` URLs, internal addresses and
cloud metadata endpoints (``http://169.254.169.254/...``) never reach them. An ``http`` or
``https`` URL passes only when its host is one of the allowed hosts, given one by one
(``colm-graph serve --allow-image-host HOST``) and compared exactly: no wildcard, no
address that merely resolves there.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from colm_graph.core.files import file_errors
from colm_graph.errors import ConfigError

__all__ = ["MAX_IMAGE_BYTES", "check_image_host", "check_image_url", "image_data_url"]

MAX_IMAGE_BYTES = 20 * 1024 * 1024
_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


def image_data_url(path: str | Path, *, flag: str = "--image") -> str:
    """A ``data:`` URL for an image file; anything that is not an image is refused."""
    p = Path(path)
    with file_errors(f"{flag} {path}", "image file", ConfigError):
        size = p.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ConfigError(f"{flag} {path}: {size} bytes, expected at most {MAX_IMAGE_BYTES}")
        data = p.read_bytes()
    mime = next((m for magic, m in _IMAGE_TYPES if data.startswith(magic)), None)
    if mime is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    if mime is None:
        raise ConfigError(f"{flag} {path}: not a PNG, JPEG, GIF or WebP image")
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


_DATA_URL = re.compile(r"data:image/[A-Za-z0-9.+-]+(?:;[A-Za-z0-9.+=_-]+)*;base64,")
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                        r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\@]")
"""Characters no allowed URL has: controls, spaces, backslashes (some fetchers read them as
``/``) and ``@`` (user info, which fetchers and parsers split differently)."""


def check_image_host(host: Any, *, flag: str = "--allow-image-host") -> str:
    """``host`` (a host name or IP address) in the form URLs are compared with; one line
    naming ``flag`` for anything else (a URL, a port, a path, a wildcard)."""
    text = host.strip().lower().rstrip(".") if isinstance(host, str) else ""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if not _HOST_NAME.match(text):
        raise ConfigError(f"{flag}: expected a host name or IP address (no scheme, port, path"
                          f" or wildcard), got {host!r}")
    return text


def _short(url: str) -> str:
    return repr(url if len(url) <= 60 else url[:57] + "...")


def check_image_url(url: Any, where: str, allow_hosts: Iterable[str] = (), *,
                    flag: str = "--allow-image-host") -> str:
    """``url`` when it is a ``data:image/...;base64,`` URL, or an ``http``/``https`` URL whose
    host is one of ``allow_hosts`` (as :func:`check_image_host` gives them); otherwise a
    one-line :class:`ConfigError` naming ``where`` and what is expected."""
    hosts = list(allow_hosts)
    if isinstance(url, str) and _DATA_URL.match(url):
        return url
    if isinstance(url, str) and hosts and not _UNSAFE.search(url):
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 -- raises on a malformed port
        except ValueError:
            host = None
        if parts.scheme in ("http", "https") and host:
            try:
                host = str(ipaddress.ip_address(host))
            except ValueError:
                host = host.rstrip(".")
            if host in hosts:
                return url
    what = "a data:image/...;base64,... URL"
    allowed = (f" or an http(s) URL on {', '.join(hosts)}" if hosts else
               f" (remote image URLs need their host allowed with {flag})")
    got = _short(url) if isinstance(url, str) else type(url).__name__
    raise ConfigError(f"{where}: expected {what}{allowed}, got {got}")
