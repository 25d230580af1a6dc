"""Prometheus metrics of one app (its own registry, so several apps in one process, as in the
tests, keep separate counts): requests, items, errors by kind, latency, batch sizes, queue."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("pricer_requests", "HTTP requests by path and status code",
                                ["path", "status"], registry=r)
        self.items = Counter("pricer_items", "Items priced", registry=r)
        self.errors = Counter("pricer_errors", "Failures by kind (bad_input, body_too_large, "
                              "too_many_items, queue_full, predictor, disconnected)", ["kind"],
                              registry=r)
        self.latency = Histogram("pricer_request_seconds", "Latency of POST /v1/price",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("pricer_batch_size", "Items per predictor call",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram("pricer_batch_seconds", "Time of one predictor call",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.queue = Gauge("pricer_queue_items", "Items waiting or being predicted", registry=r)

    def text(self) -> bytes:
        return generate_latest(self.registry)
