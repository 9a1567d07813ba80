"""Paired statistics of two graphs run on the same items, and routing metrics.

- :func:`mcnemar_exact`: McNemar's exact test on correctness: of the items where exactly one
  of the two graphs is right, is either side more often the one? The two-sided binomial test
  (``scipy.stats.binomtest``) of one side's count among the discordant items at p = 1/2.
- :func:`paired_bootstrap`: the mean difference of a per-item value (correctness as 0/1,
  paid USD) and its percentile interval over resamples of the items
  (``scipy.stats.bootstrap`` with ``paired=True``), seeded.
- :func:`routing_metrics`: RouteLLM's measures of a router (Ong et al., *RouteLLM: Learning
  to Route LLMs with Preference Data*, 2024, and its ``routellm/evals/evaluate.py``): on the
  curve of accuracy against the share of items sent to the strong (paid) model, the
  performance gap recovered is ``PGR = (acc - weak) / (strong - weak)``; ``APGR`` is the area
  between the curve and the weak model's accuracy over the area between the two models'
  (trapezoids over the curve's points); ``CPT(x%)`` is the smallest share of strong calls at
  which the curve recovers x% of the gap (read off the piecewise-linear curve; RouteLLM
  interpolates the same way, for curves that rise with the share).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["BOOTSTRAP_RESAMPLES", "Z95", "cpt", "mcnemar_exact", "paired_bootstrap",
           "routing_metrics", "wilson"]

BOOTSTRAP_RESAMPLES = 2000
"""Resamples of the paired bootstrap unless told otherwise."""
Z95 = 1.959964


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes in ``n`` trials; ``(0, 1)`` when ``n`` is 0."""
    if n == 0:
        return 0.0, 1.0
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact ends, free of rounding
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> dict[str, Any]:
    """McNemar's exact test of two graphs' correctness on the same items (in the same
    order): ``a_only`` / ``b_only`` (items only that graph got right) and the two-sided
    ``p_value`` (1.0 when no item is discordant)."""
    from scipy.stats import binomtest

    if len(a) != len(b):
        raise ValueError(f"mcnemar_exact: {len(a)} and {len(b)} items: expected the same items")
    a_only = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    b_only = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    n = a_only + b_only
    p = 1.0 if n == 0 else float(binomtest(a_only, n, 0.5, alternative="two-sided").pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": min(1.0, p)}


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(np.mean(x, axis=axis) - np.mean(y, axis=axis))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                     confidence: float = 0.95) -> dict[str, Any]:
    """``mean(a) - mean(b)`` over the same items and its percentile ``ci`` from
    ``resamples`` paired resamples (``None`` with fewer than two items; a zero-width
    interval when every item's difference is the same)."""
    from scipy.stats import bootstrap

    if len(a) != len(b):
        raise ValueError(f"paired_bootstrap: {len(a)} and {len(b)} items: expected the same"
                         f" items")
    if resamples < 1:
        raise ValueError(f"paired_bootstrap: resamples: expected at least 1, got {resamples}")
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(_mean_diff(x, y)) if len(x) else 0.0
    ci: list[float] | None = None
    if len(x) >= 2:
        d = x - y
        if np.all(d == d[0]):  # nothing to resample: scipy would warn of a degenerate sample
            ci = [float(d[0]), float(d[0])]
        else:
            res = bootstrap((x, y), _mean_diff, paired=True, vectorized=True,
                            n_resamples=resamples, confidence_level=confidence,
                            method="percentile", rng=np.random.default_rng(seed))
            ci = [float(res.confidence_interval.low), float(res.confidence_interval.high)]
    return {"diff": diff, "ci": ci, "resamples": resamples, "seed": seed,
            "confidence": confidence}


def _curve(points: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    ordered = sorted(points)
    return (np.array([p[0] for p in ordered], dtype=float),
            np.array([p[1] for p in ordered], dtype=float))


def cpt(points: Sequence[tuple[float, float]], weak: float, strong: float,
        share: float) -> float | None:
    """The smallest share of strong calls at which the curve through ``points`` (strong
    share, accuracy) reaches ``weak + share * (strong - weak)``; ``None`` if it never does
    (or the two models are equally accurate)."""
    if strong == weak or not points:
        return None
    xs, ys = _curve(points)
    target = weak + share * (strong - weak)
    sign = 1.0 if strong > weak else -1.0
    if sign * (ys[0] - target) >= 0:
        return float(xs[0])
    for i in range(1, len(xs)):
        if sign * (ys[i] - target) >= 0:
            t = (target - ys[i - 1]) / (ys[i] - ys[i - 1])
            return float(xs[i - 1] + t * (xs[i] - xs[i - 1]))
    return None


def routing_metrics(points: Sequence[tuple[float, float]], weak: float,
                    strong: float) -> dict[str, Any]:
    """APGR, CPT(50%) and CPT(80%) of the curve through ``points`` ((strong share in 0..1,
    accuracy), one per setting of the router, the ends included by the caller when it has
    them), the PGR of each point, and the points in order. ``apgr`` is ``None`` when the
    curve covers no width of shares or the two models are equally accurate."""
    xs, ys = _curve(points)
    gap = strong - weak
    width = float(xs[-1] - xs[0]) if len(xs) else 0.0
    apgr = None
    if gap and width > 0:
        area = float(np.trapezoid(ys, xs))
        apgr = (area - weak * width) / (gap * width)
    return {
        "points": [{"strong_share": float(x), "accuracy": float(y),
                    "pgr": (float(y) - weak) / gap if gap else None}
                   for x, y in zip(xs, ys, strict=True)],
        "weak_accuracy": weak, "strong_accuracy": strong, "apgr": apgr,
        "cpt50": cpt(points, weak, strong, 0.5), "cpt80": cpt(points, weak, strong, 0.8),
    }
