"""Topic registry: every topic name, its partitions, key and retention. Never a literal elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from .types import Department


class Cleanup(StrEnum):
    DELETE = "delete"
    COMPACT = "compact"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    key: str  # what the message key is, for humans and docs
    description: str
    cleanup: Cleanup = Cleanup.DELETE
    retention_ms: int = -1  # -1: keep forever: the log is the system of record for replays
    config: dict[str, str] = field(default_factory=dict)

    def topic_config(self) -> dict[str, str]:
        """Broker-side topic configuration."""
        cfg = {"cleanup.policy": self.cleanup.value, "retention.ms": str(self.retention_ms)}
        cfg.update(self.config)
        return cfg


RAW_EVENTS = "fundtrail.events.raw"
DEAD_LETTERS = "fundtrail.events.dlq"
ENRICHED_EVENTS = "fundtrail.events.enriched"
VIOLATIONS = "fundtrail.violations"
CASES = "fundtrail.cases"
RULE_PACKS = "fundtrail.rules"
VIOLATIONS_DLQ = "fundtrail.violations.dlq"

# A fund's events must stay ordered: partitions by fund document number. Six partitions let up
# to six workers share the load and keep rebalances cheap on a single broker.
DEFAULT_PARTITIONS = 6


def department_topic(department: Department | str) -> str:
    """The per-department violations topic."""
    return f"{VIOLATIONS}.{Department(department).value}"


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(RAW_EVENTS, DEFAULT_PARTITIONS, "fund_doc_no (vendor:<id> for reference data)",
              "Events as bureaus publish them; validated by fund-tracker"),
    TopicSpec(DEAD_LETTERS, 1, "original key",
              "Rejected input: reason code, message, original bytes (base64), source topic/partition/offset"),
    TopicSpec(ENRICHED_EVENTS, DEFAULT_PARTITIONS, "fund_doc_no (vendor:<id> for reference data)",
              "Accepted events with the ledger state before and after; consumed by compliance"),
    TopicSpec(VIOLATIONS, DEFAULT_PARTITIONS, "fund_doc_no", "Every violation from every rule pack"),
    *(
        TopicSpec(department_topic(d), 3, "fund_doc_no", f"Violations owned by the {d.value} department")
        for d in Department
    ),
    TopicSpec(CASES, 3, "fund_doc_no", "Case actions: acknowledged, rectified, dismissed, resolved"),
    TopicSpec(RULE_PACKS, 1, "department", "Rule-pack documents; the latest per department is live",
              cleanup=Cleanup.COMPACT),
    TopicSpec(VIOLATIONS_DLQ, 1, "original key", "Enriched events the compliance service could not evaluate"),
)

TOPICS_BY_NAME = {t.name: t for t in TOPICS}

# Kafka headers carried on every message we produce.
HEADER_EVENT_TYPE = "fundtrail-event-type"
HEADER_SCHEMA_VERSION = "fundtrail-schema-version"
HEADER_TRACEPARENT = "traceparent"
HEADER_TRACESTATE = "tracestate"
# The authenticated subject that published a raw event through the gateway.
HEADER_PUBLISHED_BY = "fundtrail-published-by"
