"""Tables the compliance service writes: violations and their case history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index
from sqlalchemy.dialects.postgresql import JSONB
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


class CaseAction(SQLModel, table=True):
    """One step of a violation's rectification loop, exactly once per event id."""

    __tablename__ = "case_action"

    event_id: uuid.UUID = Field(primary_key=True)
    violation_id: uuid.UUID = Field(index=True)
    action: str = Field(max_length=32)
    actor: str = Field(max_length=128)
    at: datetime = Field(sa_column=Column(TZ, nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    trace_id: str | None = Field(default=None, max_length=32)


class ComplianceProcessed(SQLModel, table=True):
    """Enriched events already evaluated (dedup for at-least-once delivery)."""

    __tablename__ = "compliance_processed"

    event_id: uuid.UUID = Field(primary_key=True)
    evaluated_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    violations: int = 0
