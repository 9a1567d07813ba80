"""Images for vision-language clients: a file becomes a ``data:`` URL, and anything that is
not a PNG, JPEG, GIF or WebP image is refused with a one-line error."""

from __future__ import annotations

import base64
from pathlib import Path

from .errors import ConfigError

__all__ = ["MAX_IMAGE_BYTES", "image_data_url"]

MAX_IMAGE_BYTES = 20 * 1024 * 1024
_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


def image_data_url(path: str | Path, *, flag: str = "--image") -> str:
    """A ``data:`` URL for an image file; anything that is not an image is refused."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ConfigError(f"{flag} {path}: {size} bytes, expected at most {MAX_IMAGE_BYTES}")
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{flag} {path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{flag} {path}: expected an image file, got a directory") from None
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot read: {exc.strerror}") from None
    mime = next((m for magic, m in _IMAGE_TYPES if data.startswith(magic)), None)
    if mime is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    if mime is None:
        raise ConfigError(f"{flag} {path}: not a PNG, JPEG, GIF or WebP image")
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
