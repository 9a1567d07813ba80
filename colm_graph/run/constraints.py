"""A run's constraints besides money (the third source paper's device-cloud limits): a
deadline, private data, and bytes sent to paid endpoints.

Each is set per run, the same way as the paid budget: a ``configurable`` key of the
invocation wins over the graph parameter of the same name.

============================ =================================================================
key                          meaning
============================ =================================================================
``deadline_s``               seconds the run may take, from its start (a parameter, or a
                             ``configurable`` value anchored at the run's first call)
``colm_deadline``            the same as a Unix time (what :func:`with_constraints`, the
                             CLI, the chat model, serve and evals set: exact from the call)
``private``                  ``true``: no byte of the run reaches a model that may not hold
                             private data (:func:`may_hold_private`)
``private_detect``           ``true``: the run is private when its question looks private
                             (:mod:`colm_graph.run.privacy`); from Python, any callable of the
                             question
``max_upload_bytes``         request bytes the run may send to paid models, in all
============================ =================================================================

The run's calls enforce them (:mod:`colm_graph.run.calls`), so that no spec can route
around them; the shipped variants also branch on them (``fits_deadline``,
``residency_ok``), which keeps the local path the run's own choice rather than a stand-in.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs

if TYPE_CHECKING:
    from colm_graph.pool import PoolEntry

__all__ = ["configurable", "deadline_of", "detects_private", "may_hold_private", "private_of",
           "upload_cap_of", "with_constraints"]

def configurable() -> Mapping[str, Any]:
    """The ``configurable`` of the LangGraph run in progress (empty outside one)."""
    from langgraph.config import get_config

    try:
        return get_config().get("configurable") or {}
    except RuntimeError:  # not inside a runnable
        return {}


def _setting(key: str, params: Mapping[str, Any], conf: Mapping[str, Any] | None) -> Any:
    conf = configurable() if conf is None else conf
    return conf[key] if conf.get(key) is not None else params.get(key)


def deadline_of(state: Mapping[str, Any], params: Mapping[str, Any],
                conf: Mapping[str, Any] | None = None) -> float | None:
    """The run's deadline as a Unix time (``None``: none): ``colm_deadline``, else
    ``deadline_s`` after the run's first call (or now, before any call)."""
    conf = configurable() if conf is None else conf
    at = conf.get("colm_deadline")
    if at is not None:
        return float(at)
    seconds = _setting("deadline_s", params, conf)
    if seconds is None:
        return None
    starts = [float(r["started_at"]) for r in state.get("ledger") or [] if "started_at" in r]
    return (min(starts) if starts else time.time()) + float(seconds)


def private_of(state: Mapping[str, Any], params: Mapping[str, Any],
               conf: Mapping[str, Any] | None = None) -> bool:
    """Whether the run is private: ``private: true``, or a detector (``private_detect``:
    ``true`` for :func:`colm_graph.run.privacy.looks_private`, or any callable of the
    question from Python) finds private data in the question."""
    if _setting("private", params, conf):
        return True
    detect = _setting("private_detect", params, conf)
    if not detect:
        return False
    question = str(state.get("question") or "")
    if callable(detect):
        return bool(detect(question))
    from colm_graph.run.privacy import looks_private

    return looks_private(question)


def detects_private(params: Mapping[str, Any], conf: Mapping[str, Any] | None = None) -> bool:
    """Whether the run checks its question for private data (``private_detect``)."""
    return bool(_setting("private_detect", params, conf))


def upload_cap_of(params: Mapping[str, Any], conf: Mapping[str, Any] | None = None
                  ) -> int | None:
    value = _setting("max_upload_bytes", params, conf)
    return None if value is None else int(value)


def with_constraints(config: RunnableConfig | None = None, *, deadline_s: float | None = None,
                     private: bool | None = None, private_detect: Any = None,
                     max_upload_bytes: int | None = None) -> RunnableConfig:
    """``config`` with a run's constraints (see the module's table): the deadline counts
    from now. Pass the result to ``invoke``/``ainvoke``/``stream`` of a compiled graph.

    Example:
        >>> cfg = with_constraints(deadline_s=0.8, private=True)
        >>> sorted(cfg["configurable"])
        ['colm_deadline', 'private']
    """
    extra: dict[str, Any] = {}
    if deadline_s is not None:
        if isinstance(deadline_s, bool) or not isinstance(deadline_s, int | float) \
                or not deadline_s > 0:
            raise ValueError(f"deadline_s: expected a positive number of seconds, got"
                             f" {deadline_s!r}")
        extra["colm_deadline"] = time.time() + float(deadline_s)
    if private is not None:
        if not isinstance(private, bool):
            raise ValueError(f"private: expected true or false, got {private!r}")
        extra["private"] = private
    if private_detect is not None:
        if not (isinstance(private_detect, bool) or callable(private_detect)):
            raise ValueError(f"private_detect: expected true, false or a callable of the"
                             f" question, got {private_detect!r}")
        extra["private_detect"] = private_detect
    if max_upload_bytes is not None:
        if isinstance(max_upload_bytes, bool) or not isinstance(max_upload_bytes, int) \
                or max_upload_bytes < 0:
            raise ValueError(f"max_upload_bytes: expected a whole number of bytes >= 0, got"
                             f" {max_upload_bytes!r}")
        extra["max_upload_bytes"] = max_upload_bytes
    added: RunnableConfig = {"configurable": extra}
    return merge_configs(config, added) if config else added


_PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))
"""Private networks (RFC 1918, RFC 4193). Not ``ipaddress``'s ``is_private``, which also
counts addresses that are merely not global (documentation and reserved ranges)."""


def _private_host(host: str) -> bool:
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name: where it resolves to is not ours to trust
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_link_local or any(
        address in network for network in _PRIVATE_NETWORKS)


def may_hold_private(entry: PoolEntry) -> bool:
    """Whether a pool model may receive a private run's data: its entry's ``residency``
    (``local``: yes, ``cloud``: no), else yes for local-tier models that answer in this
    process or at a loopback or private address, no for paid-tier ones."""
    spec = entry.spec
    residency = getattr(spec, "residency", None)
    if residency is not None:
        return bool(residency == "local")
    if entry.tier == "paid":
        return False
    if spec is None or spec.provider != "openai":
        return True
    from urllib.parse import urlsplit

    if spec.base_url is None:  # OpenAI's own endpoint
        return False
    return _private_host(urlsplit(spec.base_url).hostname or "")
