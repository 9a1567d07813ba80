"""Session-wide test setup: offline environment, network guard, shared fixtures.

* At import time (before any test module, and so before ``huggingface_hub`` or
  ``transformers`` read their settings) the Hugging Face stack is put offline,
  LangSmith tracing is switched off and OpenAI credentials/endpoints are removed
  from the environment; tests that need ``OPENAI_API_KEY`` set it themselves
  (``monkeypatch.setenv``).
* ``pytest_configure`` installs a network guard: connecting a socket anywhere but
  127.0.0.1 / ::1 / localhost (or an AF_UNIX path) raises ``RuntimeError`` before
  any packet is sent. An autouse session fixture re-checks that it is in place.
"""

from __future__ import annotations

import ipaddress
import os
import pathlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.openai_server import FakeOpenAIServer

# --- environment --------------------------------------------------------------------

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
}
_REMOVED_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "OPENAI_ORG_ID",
    "OPENAI_ORGANIZATION",
    "OPENAI_PROJECT_ID",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
)


def _apply_test_environment() -> None:
    os.environ.update(_OFFLINE_ENV)
    for name in _REMOVED_ENV:
        os.environ.pop(name, None)


_apply_test_environment()

# --- network guard ----------------------------------------------------------------

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "::ffff:127.0.0.1"})
_ORIGINALS: dict[str, Any] = {}


def _is_local_host(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    host = host.strip("[]").split("%", 1)[0].lower()
    if host in _LOCAL_HOSTS:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip) in _LOCAL_HOSTS


def _check_address(family: int | None, address: Any) -> None:
    """Raise ``RuntimeError`` unless ``address`` is loopback or a Unix socket path."""
    if family == getattr(socket, "AF_UNIX", object()) or isinstance(address, str | bytes):
        return
    if family not in (None, socket.AF_INET, socket.AF_INET6):
        return  # netlink and friends: not network access
    host = address[0] if isinstance(address, tuple) and address else address
    if not _is_local_host(host):
        raise RuntimeError(f"network access outside 127.0.0.1 blocked in tests: {address!r}")


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    _check_address(self.family, address)
    return _ORIGINALS["connect"](self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    _check_address(self.family, address)
    return _ORIGINALS["connect_ex"](self, address)


def _guarded_create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
    # Checked before name resolution, so a blocked host is not even looked up.
    _check_address(None, address)
    return _ORIGINALS["create_connection"](address, *args, **kwargs)


def install_network_guard() -> None:
    """Patch ``socket`` so that only loopback connections are possible. Idempotent."""
    if _ORIGINALS:
        return
    _ORIGINALS["connect"] = socket.socket.connect
    _ORIGINALS["connect_ex"] = socket.socket.connect_ex
    _ORIGINALS["create_connection"] = socket.create_connection
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.create_connection = _guarded_create_connection


def uninstall_network_guard() -> None:
    """Undo :func:`install_network_guard`."""
    if not _ORIGINALS:
        return
    socket.socket.connect = _ORIGINALS.pop("connect")  # type: ignore[method-assign]
    socket.socket.connect_ex = _ORIGINALS.pop("connect_ex")  # type: ignore[method-assign]
    socket.create_connection = _ORIGINALS.pop("create_connection")


def network_guard_installed() -> bool:
    return (
        socket.socket.connect is _guarded_connect
        and socket.socket.connect_ex is _guarded_connect_ex
        and socket.create_connection is _guarded_create_connection
    )


def pytest_configure(config: pytest.Config) -> None:
    _apply_test_environment()
    install_network_guard()


def pytest_unconfigure(config: pytest.Config) -> None:
    uninstall_network_guard()


@pytest.fixture(scope="session", autouse=True)
def _network_guard() -> Iterator[None]:
    """Keep the network guard in place for the whole session (re-installing it if
    something replaced the patched functions)."""
    if not network_guard_installed():
        uninstall_network_guard()
        install_network_guard()
    yield
    assert network_guard_installed(), "the network guard was removed during the session"


# --- shared fixtures ----------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_hf_model_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A directory holding a tiny random GPT-2 chat model and tokenizer, built once.

    See :func:`tests.support.tiny_hf.build_tiny_chat_model`; load it with
    :func:`tests.support.tiny_hf.make_tiny_chat_huggingface`. Skips the test when
    ``torch``/``transformers`` are not installed (the ``local`` extra).
    """
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.support.tiny_hf import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny_hf_model"))


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A running :class:`FakeOpenAIServer` with the default responder ("Answer: 42")."""
    with FakeOpenAIServer() as server:
        yield server
