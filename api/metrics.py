"""Prometheus metrics at ``/metrics``: trials by state, studies by state, workers alive, active
leases (read from the database at each scrape, so every server process tells the same), and the
latency of every request by route (measured in this process; with several server processes,
``hpsearch serve --workers N`` points ``PROMETHEUS_MULTIPROC_DIR`` at a shared directory and each
scrape adds up all of them)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hpsearch.scheduling import Scheduler

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One app's metrics: its registry and its request-latency histogram."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        shared = "PROMETHEUS_MULTIPROC_DIR" in os.environ
        if shared:  # each process writes its samples to files there; a scrape reads them all
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        self.latency = Histogram(
            "hpsearch_http_request_duration_seconds",
            "Time to answer a request, by method, route and status",
            ["method", "route", "status"],
            buckets=_BUCKETS,
            registry=None if shared else self.registry,
        )

    def watch(self, scheduler: Scheduler) -> None:
        """Add the database-backed gauges (once the scheduler exists)."""
        self.registry.register(_StateCollector(scheduler))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def collect(self) -> Iterator[Metric]:
        state = self.scheduler.census()
        trials = GaugeMetricFamily(
            "hpsearch_trials", "Search trials in the database by state", labels=["state"]
        )
        for name, n in sorted(state.trials.items()):
            trials.add_metric([name], n)
        yield trials
        studies = GaugeMetricFamily("hpsearch_studies", "Studies by state", labels=["state"])
        for name, n in sorted(state.studies.items()):
            studies.add_metric([name], n)
        yield studies
        yield GaugeMetricFamily(
            "hpsearch_workers_alive", "Workers heard from recently", value=state.workers_alive
        )
        yield GaugeMetricFamily(
            "hpsearch_leases_active", "Work items held by workers now", value=state.leases_active
        )


class RequestTimer:
    """ASGI middleware: observe every HTTP request's latency under its route's template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
