"""Topic registry: every topic name, its partitions, key and retention. Never a literal elsewhere."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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

# Dead letters carry the rejected message's bytes, personal data included (payee accounts, phone
# numbers): kept long enough to inspect and re-drive, not forever (docs/operations.md, retention).
DEAD_LETTER_RETENTION_MS = 90 * 24 * 3600 * 1000

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
              "Rejected input: reason code, message, original bytes (base64), source topic/partition/offset",
              retention_ms=DEAD_LETTER_RETENTION_MS),
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
    TopicSpec(VIOLATIONS_DLQ, 1, "original key", "Enriched events the compliance service could not evaluate",
              retention_ms=DEAD_LETTER_RETENTION_MS),
)

TOPICS_BY_NAME = {t.name: t for t in TOPICS}


class TopicSettings(BaseSettings):
    """Retention per topic, overriding the registry's: FUNDTRAIL_TOPICS_RETENTION_MS is a JSON object of
    topic name to retention.ms (-1 keeps forever), e.g. '{"fundtrail.events.dlq": 604800000}'."""

    model_config = SettingsConfigDict(env_prefix="FUNDTRAIL_TOPICS_", env_file=".env", extra="ignore")

    retention_ms: dict[str, int] = Field(default_factory=dict, description="topic name -> retention.ms")

    @field_validator("retention_ms")
    @classmethod
    def _known_topics(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(TOPICS_BY_NAME))
        if unknown:
            raise ValueError(f"unknown topics {unknown}; known: {sorted(TOPICS_BY_NAME)}")
        bad = sorted(name for name, ms in value.items() if ms < -1 or ms == 0)
        if bad:
            raise ValueError(f"retention of {bad} must be -1 (forever) or a positive number of milliseconds")
        return value


def configured_topics(settings: TopicSettings | None = None) -> tuple[TopicSpec, ...]:
    """The registry with the retention overrides of `settings` (read from the environment by default)."""
    overrides = (settings or TopicSettings()).retention_ms
    return tuple(dataclasses.replace(t, retention_ms=overrides.get(t.name, t.retention_ms)) for t in TOPICS)

# Kafka headers carried on every message we produce.
HEADER_EVENT_TYPE = "fundtrail-event-type"
HEADER_SCHEMA_VERSION = "fundtrail-schema-version"
HEADER_TRACEPARENT = "traceparent"
HEADER_TRACESTATE = "tracestate"
# The authenticated subject that published a raw event through the gateway.
HEADER_PUBLISHED_BY = "fundtrail-published-by"
