"""What an eval's rows say when graphs are set side by side on the same items.

:class:`Outcomes` keeps, per graph and item, what the paired statistics need (correct, paid
USD, whether any paid call was made, the domain), read from ``results.jsonl`` rows as they
stream. From it:

- :meth:`Outcomes.comparisons`: every graph against each baseline, every pair of the other
  graphs, and the baselines against each other, on the items both have: McNemar's exact
  test on correctness and paired-bootstrap intervals of the accuracy and paid-USD-per-item
  differences (:mod:`colm_graph.evaluation.stats`).
- :meth:`Outcomes.by_domain`: accuracy and paid USD per graph and domain.
- :meth:`Outcomes.routing`: for ``route`` and ``cascade`` graphs and every threshold sweep,
  the curve of accuracy against the share of items that made a paid call, between
  ``small_only`` and ``large_only``, with APGR and CPT(50%) / CPT(80%).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from colm_graph.evaluation.stats import (
    BOOTSTRAP_RESAMPLES,
    mcnemar_exact,
    paired_bootstrap,
    routing_metrics,
)

__all__ = ["NO_ANSWER_WARN", "ROUTING_SPECS", "Outcomes"]

ROUTING_SPECS = ("route", "cascade")
"""Specs whose graphs get routing metrics even without a sweep."""
NO_ANSWER_WARN = 0.05
"""A graph whose share of items without an answer is above this gets a warning."""


@dataclass(frozen=True)
class _Item:
    correct: bool
    paid_usd: float
    paid: bool
    no_answer: bool
    domain: str | None


class Outcomes:
    """Per-graph, per-item outcomes of an eval (the last row of an item wins)."""

    def __init__(self, rows: Iterable[Mapping[str, Any]] = ()) -> None:
        self.graphs: dict[str, dict[str, _Item]] = {}
        for row in rows:
            self.add(row)

    def kept(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """``rows`` passed on as they stream, each kept on the way."""
        for row in rows:
            self.add(row)
            yield row

    def add(self, row: Mapping[str, Any]) -> None:
        """Keep one ``results.jsonl`` row (its paid USD counts cached calls at what they
        cost when made, as the report's other tables do)."""
        self.graphs.setdefault(str(row["graph"]), {})[str(row["id"])] = _Item(
            bool(row["correct"]),
            float(row.get("paid_usd") or 0.0) + float(row.get("cached_paid_usd") or 0.0),
            int(row.get("paid_calls") or 0) > 0, bool(row.get("no_answer")),
            row.get("domain"))

    # -- pairs ---------------------------------------------------------------------------
    def compare(self, a: str, b: str, *, resamples: int = BOOTSTRAP_RESAMPLES,
                seed: int = 0) -> dict[str, Any]:
        """Graph ``a`` against graph ``b`` on the items both have (differences are a - b)."""
        ga, gb = self.graphs[a], self.graphs[b]
        ids = sorted(ga.keys() & gb.keys())
        ca = [ga[i].correct for i in ids]
        cb = [gb[i].correct for i in ids]
        return {
            "a": a, "b": b, "n": len(ids),
            "accuracy": paired_bootstrap([float(x) for x in ca], [float(x) for x in cb],
                                         resamples=resamples, seed=seed),
            "mcnemar": mcnemar_exact(ca, cb),
            "paid_usd_per_item": paired_bootstrap([ga[i].paid_usd for i in ids],
                                                  [gb[i].paid_usd for i in ids],
                                                  resamples=resamples, seed=seed),
        }

    def comparisons(self, baselines: Mapping[str, str], *,
                    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
                    ) -> list[dict[str, Any]]:
        """Each graph against each baseline (``kind -> label``), each pair of the other
        graphs (in their order), and ``large_only`` against ``small_only``."""
        bases = [lab for lab in (baselines.get("large_only"), baselines.get("small_only"))
                 if lab in self.graphs]
        others = [g for g in self.graphs if g not in bases]
        pairs = [(g, b) for g in others for b in bases]
        pairs += [(x, y) for i, x in enumerate(others) for y in others[i + 1:]]
        if len(bases) == 2:
            pairs.append((bases[0], bases[1]))
        return [self.compare(a, b, resamples=resamples, seed=seed) for a, b in pairs]

    # -- tables ---------------------------------------------------------------------------
    def by_domain(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``graph -> domain -> {n, correct, accuracy, paid_usd}``; items without a
        domain under ``"-"``; empty when no item has a domain."""
        if not any(it.domain for items in self.graphs.values() for it in items.values()):
            return {}
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for label, items in self.graphs.items():
            table: dict[str, dict[str, Any]] = {}
            for it in items.values():
                cell = table.setdefault(it.domain or "-", {"n": 0, "correct": 0,
                                                           "paid_usd": 0.0})
                cell["n"] += 1
                cell["correct"] += it.correct
                cell["paid_usd"] += it.paid_usd
            for cell in table.values():
                cell["accuracy"] = cell["correct"] / cell["n"]
                cell["paid_usd"] = round(cell["paid_usd"], 12)
            out[label] = dict(sorted(table.items()))
        return out

    def no_answer_warnings(self) -> list[str]:
        """One line per graph whose no-answer share is above :data:`NO_ANSWER_WARN`."""
        lines = []
        for label, items in self.graphs.items():
            missing = sum(it.no_answer for it in items.values())
            if items and missing / len(items) > NO_ANSWER_WARN:
                lines.append(f"{label}: {missing} of {len(items)} items"
                             f" ({missing / len(items):.1%}) have no answer the scorer could"
                             f" read: check the extraction before reading its accuracy")
        return lines

    # -- routing ---------------------------------------------------------------------------
    def _point(self, label: str) -> tuple[float, float]:
        items = self.graphs[label].values()
        n = len(items)
        return (sum(it.paid for it in items) / n, sum(it.correct for it in items) / n)

    def routing(self, graphs: Iterable[Mapping[str, Any]],
                baselines: Mapping[str, str]) -> dict[str, dict[str, Any]]:
        """Routing metrics per series: a threshold sweep (``spec:param``, one point per
        value) or a ``route`` / ``cascade`` graph of its own (one point); the ends are the
        ``small_only`` and ``large_only`` points, so both must have results (else ``{}``).
        ``graphs`` are run.json's entries (``label``, ``spec``, ``sweep``)."""
        weak, strong = baselines.get("small_only"), baselines.get("large_only")
        if weak not in self.graphs or strong not in self.graphs:
            return {}
        series: dict[str, list[str]] = {}
        for g in graphs:
            label = g["label"]
            if label not in self.graphs or g.get("baseline"):
                continue
            sweep = g.get("sweep")
            if sweep:
                series.setdefault(f"{g['spec']}:{sweep['param']}", []).append(label)
            elif str(g.get("spec")) in ROUTING_SPECS:
                series[label] = [label]
        ends = [self._point(weak), self._point(strong)]
        w_acc, s_acc = ends[0][1], ends[1][1]
        out = {}
        for name, labels in series.items():
            metrics = routing_metrics([*ends, *(self._point(lab) for lab in labels)],
                                      w_acc, s_acc)
            metrics["graphs"] = labels
            out[name] = metrics
        return out
