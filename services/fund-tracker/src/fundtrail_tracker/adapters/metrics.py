"""Prometheus metrics of fund-tracker."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """Counters per topic and outcome, batch latency, consumer lag, trail size."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.events = Counter(
            "fundtrail_tracker_events_total",
            "Consumed messages by topic and outcome (accepted, rejected, duplicate, parked)",
            ["topic", "outcome"],
            registry=registry,
        )
        self.rejections = Counter(
            "fundtrail_tracker_rejections_total", "Dead-lettered messages by topic and reason", ["topic", "reason"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "fundtrail_tracker_batch_seconds",
            "Time to process one batch (validate, one DB transaction, produce)",
            ["topic"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.batch_size = Histogram(
            "fundtrail_tracker_batch_size", "Messages per batch", ["topic"],
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000), registry=registry,
        )
        self.consumer_lag = Gauge(
            "fundtrail_tracker_consumer_lag", "Records behind the high watermark", ["topic", "partition"],
            registry=registry,
        )
        self.trail_size = Gauge("fundtrail_tracker_trail_size", "Entries in the trail", registry=registry)
        self.phase_seconds = Counter(
            "fundtrail_tracker_phase_seconds",
            "Batch time by phase (decode, read, decide, trail, write, produce, commit)",
            ["phase"],
            registry=registry,
        )
        self.phase_cpu_seconds = Counter(
            "fundtrail_tracker_phase_cpu_seconds",
            "The worker thread's CPU by batch phase (decode, read, decide, trail, write, produce, commit)",
            ["phase"],
            registry=registry,
        )
        self.checkpoints = Counter(
            "fundtrail_tracker_checkpoints_total", "Signed trail checkpoints written", registry=registry
        )
        self.last_checkpoint = Gauge(
            "fundtrail_tracker_last_checkpoint_timestamp_seconds",
            "Unix time at which the trail head was last known to be covered by a signed checkpoint",
            registry=registry,
        )
