"""Topic registry: every topic name, its partitions, key and retention. Never a literal elsewhere."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .regions import CITY, counties, towns
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
TRAIL_COSIGNATURES = "fundtrail.trail.cosignatures"
# Compliance's repartition topic: events a cross-fund window rule judges, re-keyed by the window
# (rule id + window key), so each window is judged by the one replica owning its partition.
COMPLIANCE_WINDOWS = "fundtrail.compliance.windows"

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
    TopicSpec(COMPLIANCE_WINDOWS, DEFAULT_PARTITIONS, "window rule id + window key",
              "Internal to compliance: windowed events re-keyed by their window (docs/scaling.md §1)"),
    TopicSpec(TRAIL_COSIGNATURES, 1, "log origin",
              "Witness cosignatures of trail checkpoints, verified by the gateway; stored by fund-tracker"),
)

TOPICS_BY_NAME = {t.name: t for t in TOPICS}

# Bureaus publish on raw topics of their own region, `fundtrail.events.raw.<region code>`: a
# PREFIXED write ACL on a county's name also covers its towns' topics (440705 -> 440705101), so a
# Kafka principal can only write where its region lies; fund-tracker checks that each event's
# region lies in its topic's (docs/architecture.md, "Kafka identities"). The unscoped raw topic
# above stays for the gateway, which authenticates bureaus itself, and for operators.
RAW_REGION_PARTITIONS = {"city": 3, "county": 3, "town": 1}


def raw_topic(region_code: str) -> str:
    """The raw topic a bureau of `region_code` publishes on."""
    if not region_code.isdigit():
        raise ValueError(f"not a region code: {region_code!r}")
    return f"{RAW_EVENTS}.{region_code}"


def raw_topic_region(topic: str, prefix: str = "") -> str | None:
    """The region a raw topic is scoped to; None for the unscoped raw topic (or any other topic)."""
    head = f"{prefix}{RAW_EVENTS}."
    if topic.startswith(head) and topic[len(head):].isdigit():
        return topic[len(head):]
    return None


def raw_topic_pattern(prefix: str = "") -> str:
    """A regular expression matching the unscoped raw topic and every region's (consumers subscribe to it)."""
    return "^" + re.escape(prefix + RAW_EVENTS) + r"(\.[0-9]+)?$"


def region_raw_topics() -> tuple[TopicSpec, ...]:
    """The raw topic of every publishing bureau's region: the city, its counties and its towns."""
    return tuple(
        TopicSpec(raw_topic(r.code), RAW_REGION_PARTITIONS[r.level.value],
                  "fund_doc_no (vendor:<id> for reference data)",
                  f"Events published by the bureaus of {r.name} ({r.code}) and the regions inside it")
        for r in (CITY, *counties(), *towns())
    )


def registry_topics() -> tuple[TopicSpec, ...]:
    """Every topic an installation creates: the fixed ones and the regions' raw topics."""
    return TOPICS + region_raw_topics()

class TopicSettings(BaseSettings):
    """Retention per topic, overriding the registry's: FUNDTRAIL_TOPICS_RETENTION_MS is a JSON object of
    topic name to retention.ms (-1 keeps forever), e.g. '{"fundtrail.events.dlq": 604800000}'."""

    model_config = SettingsConfigDict(env_prefix="FUNDTRAIL_TOPICS_", env_file=".env", extra="ignore")

    retention_ms: dict[str, int] = Field(default_factory=dict, description="topic name -> retention.ms")

    @field_validator("retention_ms")
    @classmethod
    def _known_topics(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - {t.name for t in registry_topics()})
        if unknown:
            raise ValueError(f"unknown topics {unknown}; known: {sorted(TOPICS_BY_NAME)} and the regions' raw topics")
        bad = sorted(name for name, ms in value.items() if ms < -1 or ms == 0)
        if bad:
            raise ValueError(f"retention of {bad} must be -1 (forever) or a positive number of milliseconds")
        return value


def configured_topics(
    settings: TopicSettings | None = None, base: tuple[TopicSpec, ...] = TOPICS,
) -> tuple[TopicSpec, ...]:
    """`base` (the fixed topics by default; `registry_topics()` for an installation) with the retention
    overrides of `settings` (read from the environment by default)."""
    overrides = (settings or TopicSettings()).retention_ms
    return tuple(dataclasses.replace(t, retention_ms=overrides.get(t.name, t.retention_ms)) for t in base)

# Kafka headers carried on every message we produce.
HEADER_EVENT_TYPE = "fundtrail-event-type"
HEADER_SCHEMA_VERSION = "fundtrail-schema-version"
HEADER_TRACEPARENT = "traceparent"
HEADER_TRACESTATE = "tracestate"
# On an enriched event: the raw topic it was published on (whose ACLs say who could write it).
HEADER_SOURCE_TOPIC = "fundtrail-source-topic"
# The authenticated subject that published a raw event through the gateway.
HEADER_PUBLISHED_BY = "fundtrail-published-by"
