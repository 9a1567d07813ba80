"""Expected latency per model: a running estimate learned from the calls a pool makes,
seeded from the pool entry's ``expected_latency_s``. A deadline's checks ask it whether a
call (or a step of calls) fits the time left (:mod:`colm_graph.run.constraints`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["ALPHA", "LatencyBook"]

ALPHA = 0.3
"""Weight of the newest observation in the running estimate (an exponential moving
average: a model that slows down is believed within a few calls)."""


@dataclass(eq=False)
class LatencyBook:
    """Seconds each model is expected to take; ``None`` when nothing is known yet."""

    seeds: dict[str, float] = field(default_factory=dict)
    _mean: dict[str, float] = field(default_factory=dict)
    _count: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def expected(self, name: str) -> float | None:
        with self._lock:
            return self._mean.get(name, self.seeds.get(name))

    def observed(self, name: str) -> int:
        """How many calls of ``name`` the estimate has seen."""
        with self._lock:
            return self._count.get(name, 0)

    def observe(self, name: str, seconds: float) -> None:
        if not seconds >= 0:
            return
        with self._lock:
            before = self._mean.get(name, self.seeds.get(name))
            self._mean[name] = seconds if before is None else \
                ALPHA * seconds + (1 - ALPHA) * before
            self._count[name] = self._count.get(name, 0) + 1
