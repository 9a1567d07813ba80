"""Reachability of a pool's endpoints, probed with a back-off: a "down" verdict is believed
for :data:`PROBE_BACKOFF_S` seconds, doubling with each further failed probe up to
:data:`PROBE_BACKOFF_MAX_S`, and forgotten as soon as a probe gets through; an "up" verdict
is believed for :data:`UP_TTL_S` only. An endpoint that flaps within a run is seen back
within a second or two (the ``paid_reachable`` predicate asks :attr:`ModelPool.links`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["PROBE_BACKOFF_MAX_S", "PROBE_BACKOFF_S", "UP_TTL_S", "Links", "backoff"]

UP_TTL_S = 1.0
PROBE_BACKOFF_S = 0.5
PROBE_BACKOFF_MAX_S = 30.0


def backoff(first: float, most: float, failures: int) -> float:
    """``first`` seconds after one failure, doubling with each further one, at most
    ``most``."""
    return min(first * 2 ** max(failures - 1, 0), most)


@dataclass(eq=False)
class Links:
    """Reachability verdicts per model name, probed through ``probe(name)``."""

    probe: Callable[[str], bool]
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, tuple[float, bool, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reachable(self, name: str) -> bool:
        now = self.clock()
        with self._lock:
            hit = self._seen.get(name)
        if hit is not None:
            at, up, failures = hit
            wait = UP_TTL_S if up else backoff(PROBE_BACKOFF_S, PROBE_BACKOFF_MAX_S,
                                                failures)
            if now - at < wait:
                return up
        up = self.probe(name)
        with self._lock:
            failures = 0 if up else (hit[2] + 1 if hit is not None and not hit[1] else 1)
            self._seen[name] = (self.clock(), up, failures)
        return up
