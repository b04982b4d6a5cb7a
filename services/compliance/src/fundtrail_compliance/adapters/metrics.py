"""Prometheus metrics of the compliance service."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

# A batch: which partitions are idle, decode, the dedup read (with BEGIN), rule evaluation, the
# database writes, the outputs handed to the producer and their acknowledgements, COMMIT.
PHASES = ("partitions", "decode", "read", "evaluate", "write", "produce", "commit")


class Metrics:
    """Violations per rule and department, evaluation latency, outcomes of events, cases and packs."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.violations = Counter(
            "fundtrail_compliance_violations_total", "Violations raised", ["rule", "department"], registry=registry
        )
        self.resolutions = Counter(
            "fundtrail_compliance_resolutions_total", "Violations resolved by late evidence", registry=registry
        )
        self.events = Counter(
            "fundtrail_compliance_events_total", "Enriched events by outcome (evaluated, duplicate, dead_letter)",
            ["outcome"], registry=registry,
        )
        self.evaluation_seconds = Histogram(
            "fundtrail_compliance_evaluation_seconds", "Time to evaluate one event against every applicable rule",
            buckets=(0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "fundtrail_compliance_batch_seconds", "Time to handle one batch (evaluate, publish, one transaction)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0), registry=registry,
        )
        self.evaluation_errors = Counter(
            "fundtrail_compliance_evaluation_errors_total", "Rule evaluations that failed", ["rule"],
            registry=registry,
        )
        self.case_actions = Counter(
            "fundtrail_compliance_case_actions_total", "Case actions by action and outcome", ["action", "outcome"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "fundtrail_compliance_consumer_lag", "Enriched events behind the high watermark", ["topic", "partition"],
            registry=registry,
        )
        self.phase_seconds = Counter(
            "fundtrail_compliance_phase_seconds", f"Batch time by phase ({', '.join(PHASES)})", ["phase"],
            registry=registry,
        )
        self.phase_cpu_seconds = Counter(
            "fundtrail_compliance_phase_cpu_seconds", f"The worker thread's CPU by batch phase ({', '.join(PHASES)})",
            ["phase"], registry=registry,
        )
        self.pack_loads = Counter(
            "fundtrail_compliance_pack_loads_total", "Rule-pack loads by status (accepted, refused)", ["status"],
            registry=registry,
        )

    def record_lag(self, lags: dict[tuple[str, int], int]) -> None:
        """Lag per partition after a committed batch."""
        for (topic, partition), lag in lags.items():
            self.consumer_lag.labels(topic, str(partition)).set(lag)
