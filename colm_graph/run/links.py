"""Intermittent links: a paid endpoint that goes down and comes back within one run.

Two verdicts are kept, each with a back-off rather than for good:

* **Reachability** (the ``paid_reachable`` predicate): :class:`colm_graph.pool.links.Links`.
* **A paid model whose call failed** (after its client's retries) in this run is not
  called again until :data:`CALL_BACKOFF_S` has passed since that failure, doubling with
  each failure in a row (:func:`still_down`, read from the run's ledger, so a resumed run
  agrees); after that its next call is tried, and one that answers clears it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from colm_graph.pool.links import backoff as _backoff

__all__ = ["CALL_BACKOFF_MAX_S", "CALL_BACKOFF_S", "still_down"]

CALL_BACKOFF_S = 1.0
CALL_BACKOFF_MAX_S = 60.0


def still_down(records: Iterable[Mapping[str, Any]], now: float | None = None
               ) -> tuple[str, ...]:
    """Paid models whose latest calls in ``records`` failed and whose back-off since the
    last failure is not over (the ``down`` of a run's allowance)."""
    now = time.time() if now is None else now
    streak: dict[str, tuple[int, float]] = {}
    for r in records:
        if r.get("tier") == "paid" and not r.get("failed"):
            streak.pop(str(r["model"]), None)  # it answered: back up
            continue
        target = r.get("fallback_for")
        if target and r.get("fallback") == "failed":  # a skip ("down") leaves the clock
            count, _ = streak.get(str(target), (0, 0.0))
            streak[str(target)] = (count + 1, float(r.get("started_at") or 0.0))
    return tuple(sorted(
        name for name, (count, at) in streak.items()
        if now - at < _backoff(CALL_BACKOFF_S, CALL_BACKOFF_MAX_S, max(count, 1))))
