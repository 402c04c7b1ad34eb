"""Prometheus metrics of the API: requests and latencies by route template and status.

Each app owns its registry (no process-global collectors), so several apps can live in one
process (tests). The ingest lag gauges are computed from the database at scrape time.
"""

from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)


class RequestMetrics:
    """The collectors of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "incidentflow_api_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "incidentflow_api_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.watermark_age = Gauge(
            "incidentflow_ingest_watermark_age_seconds",
            "Wall-clock time minus the ingest watermark, per partition (at scrape time).",
            ["partition"],
            registry=self.registry,
        )
        self.watermark_lag = Gauge(
            "incidentflow_ingest_max_watermark_age_seconds",
            "The largest per-partition watermark age: how far behind the tables are.",
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def set_watermarks(self, watermarks: dict[int, datetime], now: datetime) -> None:
        """Replace the per-partition watermark ages with those of `watermarks`."""
        self.watermark_age.clear()
        ages = {p: max((now - at).total_seconds(), 0.0) for p, at in watermarks.items()}
        for partition, age in ages.items():
            self.watermark_age.labels(str(partition)).set(age)
        self.watermark_lag.set(max(ages.values(), default=0.0))


def route_template(scope: Scope) -> str:
    """The matched route's path template without converters (`/v1/incidents/{incident_id}`), or
    `unmatched`."""
    route = scope.get("route")
    path = getattr(route, "path_format", None)
    return path if isinstance(path, str) else "unmatched"


class MetricsMiddleware:
    """Pure ASGI middleware timing every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe(scope["method"], route_template(scope), status, elapsed)
