"""Tables the compliance service writes: violations and their case history."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

TZ = DateTime(timezone=True)


class Violation(SQLModel, table=True):
    """A raised violation and its current case status (raised → acknowledged → rectified/dismissed)."""

    __tablename__ = "violation"
    __table_args__ = (
        Index("ix_violation_filter", "department", "status", "raised_at"),
        Index("ix_violation_region", "region_code", "raised_at"),
        Index("ix_violation_fund", "fund_doc_no"),
    )

    violation_id: uuid.UUID = Field(primary_key=True)
    rule_id: str = Field(max_length=128, index=True)
    rule_version: int
    department: str = Field(max_length=32)
    severity: str = Field(max_length=16)
    status: str = Field(max_length=16, default="raised")
    triggering_event_id: uuid.UUID = Field(index=True)
    fund_doc_no: str | None = Field(default=None, max_length=128)
    project_id: str | None = Field(default=None, max_length=128, index=True)
    region_code: str = Field(max_length=12)
    occurred_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    raised_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    status_changed_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    explanation_zh: str
    explanation_en: str
    legal_basis: str
    evidence: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False), description="ViolationRaised")
    trace_id: str | None = Field(default=None, max_length=32)
    assignee: str | None = Field(default=None, max_length=128, description="Who rectifies it (ViolationAssigned)")
    due_date: date | None = Field(default=None, description="整改期限, an Asia/Shanghai date")
    pack_version: str | None = Field(default=None, max_length=64, description="Rule-pack set it was first judged with")


class CaseAction(SQLModel, table=True):
    """One step of a violation's rectification loop, exactly once per event id.

    A step the loop does not allow is kept too, with outcome `rejected` and the reason; it never
    changes the violation's status.
    """

    __tablename__ = "case_action"

    event_id: uuid.UUID = Field(primary_key=True)
    violation_id: uuid.UUID = Field(index=True)
    action: str = Field(max_length=32)
    actor: str = Field(max_length=128)
    at: datetime = Field(sa_column=Column(TZ, nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    trace_id: str | None = Field(default=None, max_length=32)
    outcome: str = Field(default="applied", max_length=16, description="applied | rejected")
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str | None = Field(default=None, max_length=16)
    reason: str | None = Field(default=None, max_length=64, description="Why a step was rejected (code)")
    recorded_at: datetime | None = Field(default=None, sa_column=Column(TZ))


class ComplianceProcessed(SQLModel, table=True):
    """Enriched events already evaluated, per rule-pack set version (dedup for at-least-once delivery;
    the same event read again under another set is judged again)."""

    __tablename__ = "compliance_processed"

    event_id: uuid.UUID = Field(primary_key=True)
    pack_version: str = Field(
        default="", sa_column=Column(String(64), primary_key=True, server_default=""),
        description="`PackSet.version()` of the set that judged it",
    )
    evaluated_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    violations: int = 0


class ComplianceWindowEntry(SQLModel, table=True):
    """An event inside a sliding window of a window rule (split purchases, similar payments)."""

    __tablename__ = "compliance_window_entry"
    __table_args__ = (Index("ix_compliance_window_at", "at"),)

    rule_id: str = Field(primary_key=True, max_length=128)
    window_key: str = Field(sa_column=Column(Text, primary_key=True), description="JSON list of key values")
    event_id: uuid.UUID = Field(primary_key=True)
    at: datetime = Field(sa_column=Column(TZ, nullable=False))
    amount_fen: int = Field(sa_column=Column(BigInteger, nullable=False))


class ComplianceTimer(SQLModel, table=True):
    """A scheduled check (idle funds): fired when the watermark passes `due_at`."""

    __tablename__ = "compliance_timer"
    __table_args__ = (
        UniqueConstraint("rule_id", "subject", name="uq_compliance_timer_subject"),
        Index("ix_compliance_timer_due", "status", "due_at"),
    )

    timer_id: uuid.UUID = Field(primary_key=True)
    rule_id: str = Field(max_length=128)
    rule_ref: str = Field(max_length=140)
    subject: str = Field(max_length=200, description="fund|level|region of the watched position")
    fund_doc_no: str = Field(max_length=128)
    level: str = Field(max_length=16)
    region_code: str = Field(max_length=12)
    trigger_event_id: uuid.UUID
    started_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    due_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    days: int
    snapshot: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    trace_id: str | None = Field(default=None, max_length=32)
    status: str = Field(default="pending", max_length=16, description="pending | fired")


class ComplianceWatermark(SQLModel, table=True):
    """The event-time clock: the largest occurred_at seen; it drives the timers."""

    __tablename__ = "compliance_watermark"

    name: str = Field(primary_key=True, max_length=64)
    at: datetime = Field(sa_column=Column(TZ, nullable=False))


class ComplianceReference(SQLModel, table=True):
    """Reference data events (VendorRegistered, VendorDebarred, RelationDeclared), never overwritten."""

    __tablename__ = "compliance_reference"
    __table_args__ = (Index("ix_compliance_reference_txid", "txid"),)

    event_id: uuid.UUID = Field(primary_key=True)
    kind: str = Field(max_length=32)
    vendor_id: str = Field(max_length=128, index=True)
    occurred_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    record: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    txid: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, nullable=False, server_default=text("(pg_current_xact_id())::text::bigint")),
        description="The writing transaction: other replicas read what committed since their last look",
    )


class ComplianceRefutable(SQLModel, table=True):
    """A violation later evidence may still refute within the grace period."""

    __tablename__ = "compliance_refutable"

    violation_id: uuid.UUID = Field(primary_key=True)
    rule_ref: str = Field(max_length=140)
    fund_doc_no: str = Field(max_length=128, index=True)
    occurred_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    deadline: datetime = Field(sa_column=Column(TZ, nullable=False))
    evidence: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))


class ComplianceBookEvent(SQLModel, table=True):
    """An event of a fund's event-time book (compliance core/book.py), kept while the book needs it:
    replayed in arrival order (`seq`) when a replica takes the fund over, so it judges as one that never
    stopped."""

    __tablename__ = "compliance_book_event"

    event_id: uuid.UUID = Field(primary_key=True)
    seq: int = Field(sa_column=Column(BigInteger, Identity(always=True), nullable=False), description="arrival order")
    fund_doc_no: str = Field(sa_column=Column(String(128), nullable=False, index=True))
    occurred_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    keep_at: datetime = Field(sa_column=Column(TZ, nullable=False), description="kept while the horizon is not past it")
    folded: bool = Field(default=False, description="its sums are in the fund's saved bases (kept as a document only)")
    record: bytes = Field(sa_column=Column(LargeBinary, nullable=False), description="the enriched record as read")


class ComplianceBookFund(SQLModel, table=True):
    """A fund's book as of its last sweep: row bases (sums folded in), newest states, horizons, dependents."""

    __tablename__ = "compliance_book_fund"

    fund_doc_no: str = Field(primary_key=True, max_length=128)
    state: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))


class ComplianceJudged(SQLModel, table=True):
    """An event a reference-reading rule judged, kept for the grace period: reference data about its
    vendor read later judges it again, also after a restart."""

    __tablename__ = "compliance_judged"

    event_id: uuid.UUID = Field(primary_key=True)
    vendor_id: str = Field(max_length=128)
    day: date = Field(sa_column=Column(Date, nullable=False, index=True), description="local date of occurred_at")
    occurred_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    record: bytes = Field(sa_column=Column(LargeBinary, nullable=False), description="the enriched record as read")
    raised: list[uuid.UUID] = Field(
        sa_column=Column(ARRAY(Uuid), nullable=False), description="violations raised on it so far"
    )


class RuleVersion(SQLModel, table=True):
    """Every rule version ever loaded; a version's content never changes once recorded."""

    __tablename__ = "rule_version"

    rule_id: str = Field(primary_key=True, max_length=128)
    version: int = Field(primary_key=True)
    department: str = Field(max_length=32, index=True)
    content_sha256: str = Field(max_length=64)
    content: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    effective_from: date
    effective_until: date | None = None
    first_loaded_at: datetime = Field(sa_column=Column(TZ, nullable=False))


class RulePackLoad(SQLModel, table=True):
    """Each attempt to load a pack document, accepted or refused (with the error)."""

    __tablename__ = "rule_pack_load"
    __table_args__ = (Index("ix_rule_pack_load_dept", "department", "loaded_at"),)

    id: int | None = Field(default=None, primary_key=True)
    department: str | None = Field(default=None, max_length=32)
    pack_version: int | None = None
    source: str = Field(max_length=500, description="file path or topic/partition/offset")
    sha256: str = Field(max_length=64)
    status: str = Field(max_length=16, description="accepted | refused")
    error: str | None = None
    loaded_at: datetime = Field(sa_column=Column(TZ, nullable=False))
