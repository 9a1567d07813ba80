"""Expected latency per model: a running estimate learned from the calls a pool makes,
seeded from the pool entry's ``expected_latency_s``. A deadline's checks ask it whether a
call (or a step of calls) fits the time left (:mod:`colm_graph.run.constraints`)."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

__all__ = ["ALPHA", "CUT_FACTOR", "LatencyBook"]

ALPHA = 0.3
"""Weight of the newest observation in the running estimate (an exponential moving
average: a model that slows down is believed within a few calls)."""
CUT_FACTOR = 2.0
"""A call stopped unfinished after ``s`` seconds took longer than ``s``: it is then expected
to take at least ``CUT_FACTOR * s`` (a timed-out call doubles the estimate, as a
retransmission timer does), so the next run with as little time left does not call it
again only to cut it again."""


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
        if not (seconds >= 0 and math.isfinite(seconds)):
            return
        with self._lock:
            before = self._mean.get(name, self.seeds.get(name))
            self._mean[name] = seconds if before is None else \
                ALPHA * seconds + (1 - ALPHA) * before
            self._count[name] = self._count.get(name, 0) + 1

    def cut(self, name: str, seconds: float) -> None:
        """A call of ``name`` was stopped after ``seconds`` without finishing (a deadline):
        expect at least :data:`CUT_FACTOR` times that."""
        if not (seconds >= 0 and math.isfinite(seconds)):
            return
        with self._lock:
            before = self._mean.get(name, self.seeds.get(name))
            self._mean[name] = max(before or 0.0, CUT_FACTOR * seconds)
            self._count[name] = self._count.get(name, 0) + 1
