"""Prometheus metrics of ``colm-graph serve`` (``GET /metrics``, prometheus-client).

* ``colm_serve_requests_total{model, status}`` and ``colm_serve_request_seconds{model}``
  (a histogram) for chat requests, refused ones included;
* ``colm_serve_model_calls_total{model, tier}``, ``colm_serve_model_usd_total{model, tier}``
  and ``colm_serve_model_tokens_total{model, tier, kind}`` over every model call of every run
  (``model``: the pool entry);
* ``colm_serve_degraded_runs_total{model}``: runs that fell back to the local tier;
* ``colm_serve_budget_left_usd{scope}``: what is left of the server's and each key's paid
  budget this period, read from the shared store when scraped.

With several workers (``PROMETHEUS_MULTIPROC_DIR`` set, as ``colm-graph serve --workers``
does) every worker writes its counts to that folder and a scrape of any worker sums them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from colm_graph.core.result import RunResult
    from colm_graph.integrations.operator import Operator

__all__ = ["ServeMetrics"]

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class _Budgets:
    """A collector of the budgets left, read from the operator's store at scrape time."""

    def __init__(self, operator: Operator) -> None:
        self.operator = operator

    def describe(self) -> list[Any]:
        return []  # not collected when registered: the store is read at scrape time only

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("colm_serve_budget_left_usd",
                                   "Paid USD left this period (held calls subtracted)",
                                   labels=["scope"])
        caps = [self.operator.server, *(k.budget for k in self.operator.keys.values())]
        for cap in caps:
            if cap.usd is not None:
                left = self.operator.store.available([cap]).usd
                family.add_metric([cap.scope], float(left if left is not None else 0.0))
        yield family


class ServeMetrics:
    """The metrics of one app."""

    def __init__(self, operator: Operator | None = None) -> None:
        self.operator = operator
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("colm_serve_requests", "Chat requests by model and status",
                                ["model", "status"], registry=r)
        self.latency = Histogram("colm_serve_request_seconds", "Chat request latency",
                                 ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.calls = Counter("colm_serve_model_calls", "Model calls", ["model", "tier"],
                             registry=r)
        self.usd = Counter("colm_serve_model_usd", "USD of model calls", ["model", "tier"],
                           registry=r)
        self.tokens = Counter("colm_serve_model_tokens", "Tokens of model calls",
                              ["model", "tier", "kind"], registry=r)
        self.degraded = Counter("colm_serve_degraded_runs", "Runs that fell back to the"
                                " local tier", ["model"], registry=r)
        if operator is not None:  # read from the store at each scrape
            r.register(_Budgets(operator))

    def request(self, model: str, status: int, seconds: float) -> None:
        self.requests.labels(model, str(status)).inc()
        self.latency.labels(model).observe(seconds)

    def run(self, model: str, run: RunResult) -> None:
        for record in run.ledger:
            name, tier = str(record.get("model")), str(record.get("tier"))
            self.calls.labels(name, tier).inc()
            self.usd.labels(name, tier).inc(float(record.get("usd") or 0.0))
            self.tokens.labels(name, tier, "input").inc(int(record.get("input_tokens") or 0))
            self.tokens.labels(name, tier, "output").inc(int(record.get("output_tokens") or 0))
        if run.degraded:
            self.degraded.labels(model).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        registry = self.registry
        if self.multiprocess:  # every worker's counts, from the shared folder
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            if self.operator is not None:
                registry.register(_Budgets(self.operator))
        return generate_latest(registry), CONTENT_TYPE_LATEST
