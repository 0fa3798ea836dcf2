"""Prometheus metrics, one registry per app (several apps can live in one process).

Served at ``GET /metrics``. With ``--workers N`` each worker process counts for
itself; set PROMETHEUS_MULTIPROC_DIR (``pixelsmith serve`` does when N > 1) and
the endpoint aggregates all workers.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "pixelsmith_http_requests",
            "HTTP requests by API, route, model/tool and status",
            ["api", "route", "model", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "pixelsmith_http_request_seconds",
            "End-to-end request latency",
            ["api", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tool_seconds = Histogram(
            "pixelsmith_tool_seconds",
            "Time inside the tool (core.run), per tool",
            ["tool", "engine"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "pixelsmith_http_in_flight", "Requests being handled now", registry=r, multiprocess_mode="livesum"
        )
        self.running = Gauge(
            "pixelsmith_tool_running", "Tool runs executing now", registry=r, multiprocess_mode="livesum"
        )
        self.queue_depth = Gauge(
            "pixelsmith_queue_depth", "Requests waiting for a free tool slot", registry=r, multiprocess_mode="livesum"
        )
        self.model_load = Gauge(
            "pixelsmith_model_load_seconds",
            "Seconds the first load of each model took",
            ["model"],
            registry=r,
            multiprocess_mode="max",
        )
        self.rejected = Counter("pixelsmith_rejected", "Requests refused by a limit", ["reason"], registry=r)

    def render(self) -> tuple[bytes, str]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
