"""Tables fund-tracker writes: the event store (dedup), the ledger, and the trail."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, LargeBinary, String, Text
from sqlalchemy.dialects.postgresql import JSON, JSONB
from sqlmodel import Field, SQLModel

TZ = DateTime(timezone=True)


class ProcessedEvent(SQLModel, table=True):
    """Every accepted event exactly once; the primary key is the idempotency key."""

    __tablename__ = "processed_event"
    # Only the idempotency keys are indexed: lookups by fund, project, region or time go through
    # trail_entry's indexes, and every extra index here costs each of the tracker's inserts.

    event_id: uuid.UUID = Field(primary_key=True)
    sequence: int = Field(sa_column=Column(BigInteger, unique=True, nullable=False))
    event_type: str = Field(max_length=64)
    fund_doc_no: str | None = Field(default=None, max_length=128)
    project_id: str | None = Field(default=None, max_length=128)
    region_code: str = Field(max_length=12)
    level: str = Field(max_length=16)
    occurred_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    accepted_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    # json, not jsonb: written once per event, read back whole, never queried inside; PostgreSQL's
    # jsonb conversion was a quarter of the cost of the tracker's insert of this row.
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state_after: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    trace_id: str | None = Field(default=None, max_length=32)
    source_partition: int | None = None
    source_offset: int | None = Field(default=None, sa_column=Column(BigInteger))
    business_key: str | None = Field(
        default=None,
        sa_column=Column(String(300), unique=True, nullable=True),
        description="Natural id of the business fact (e.g. PaymentDisbursed:<payment_id>); one event per fact",
    )


class Fund(SQLModel, table=True):
    __tablename__ = "fund"

    fund_doc_no: str = Field(primary_key=True, max_length=128)
    title: str | None = None
    purpose_category: str | None = Field(default=None, max_length=32)
    allocated_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    deadline: date | None = None
    allocated_at: datetime | None = Field(default=None, sa_column=Column(TZ))
    region_code: str | None = Field(default=None, max_length=12)
    provenance: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default="{}"),
        description="Which event set the descriptive attributes: [occurred_at, event_id], for order independence",
    )


class FundPosition(SQLModel, table=True):
    """A fund at one level and region."""

    __tablename__ = "fund_position"

    fund_doc_no: str = Field(primary_key=True, max_length=128)
    level: str = Field(primary_key=True, max_length=16)
    region_code: str = Field(primary_key=True, max_length=12)
    received_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    passed_down_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    paid_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    returned_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    contracted_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    first_received_at: datetime | None = Field(default=None, sa_column=Column(TZ))
    last_outflow_at: datetime | None = Field(default=None, sa_column=Column(TZ))


class Project(SQLModel, table=True):
    """Read by primary key only (fund-tracker's ledger slice; migration 0007 dropped the others)."""

    __tablename__ = "project"

    project_id: str = Field(primary_key=True, max_length=128)
    fund_doc_no: str | None = Field(default=None, max_length=128)
    state: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False), description="ProjectState")
    region_code: str | None = Field(default=None, max_length=12)
    settlement_amount_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    provenance: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSONB, nullable=False, server_default="{}"),
        description="Which event set the budget / settlement: [occurred_at, event_id], for order independence",
    )


class Contract(SQLModel, table=True):
    """Read by primary key only (fund-tracker's ledger slice; migration 0007 dropped the others)."""

    __tablename__ = "contract"

    contract_id: str = Field(primary_key=True, max_length=128)
    project_id: str | None = Field(default=None, max_length=128)
    fund_doc_no: str | None = Field(default=None, max_length=128)
    vendor_id: str | None = Field(default=None, max_length=128)
    state: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False), description="ContractState")


class Payment(SQLModel, table=True):
    """Indexes and their queries: payment_id (primary key: a second payment of one id fails the
    batch), event_id (unique: one payment per event), ix_payment_invoice_no (fund-tracker's
    `INVOICE_PAYMENTS_SQL`, other payments of an invoice). Migration 0007 dropped the others."""

    __tablename__ = "payment"

    payment_id: str = Field(primary_key=True, max_length=128)
    event_id: uuid.UUID = Field(unique=True)
    fund_doc_no: str = Field(max_length=128)
    project_id: str | None = Field(default=None, max_length=128)
    contract_id: str | None = Field(default=None, max_length=128)
    payee_vendor_id: str | None = Field(default=None, max_length=128)
    invoice_no: str = Field(sa_column=Column(String(128), nullable=False, index=True))
    amount_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    region_code: str = Field(max_length=12)
    paid_at: datetime = Field(sa_column=Column(TZ, nullable=False))


class VendorStats(SQLModel, table=True):
    __tablename__ = "vendor_stats"

    vendor_id: str = Field(primary_key=True, max_length=128)
    awards_count: int = 0
    awarded_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    paid_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class ParkedEvent(SQLModel, table=True):
    """Events waiting for a reference (an unknown fund) to arrive. Indexes: waiting_for (the parked
    events an allocation releases), parked_at (the sweep of events that waited too long)."""

    __tablename__ = "parked_event"

    event_id: uuid.UUID = Field(primary_key=True)
    waiting_for: str = Field(max_length=160, index=True, description="e.g. fund:<doc no>")
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    raw_key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    parked_at: datetime = Field(sa_column=Column(TZ, nullable=False, index=True))
    source_partition: int | None = None
    source_offset: int | None = Field(default=None, sa_column=Column(BigInteger))
    trace_headers: dict[str, str] | None = Field(
        default=None, sa_column=Column(JSONB, nullable=True), description="W3C trace context of the message"
    )


class TrailEntry(SQLModel, table=True):
    """One leaf of the append-only Merkle log (RFC 9162). `seq` is the leaf index.

    Indexes and their queries: seq (primary key: leaves, the tree size), entry_id (unique: one leaf
    per event, violation or case event; the trail input's dedup), ix_trail_fund / _project /
    _payment / _vendor (the chain heads each new leaf links to, `_HEADS_SQL`, and the gateway's
    trails by subject, `TRAIL_QUERIES`, whose region filter rides on them: migration 0007 dropped
    ix_trail_region), violation_id (the gateway's trail of a violation)."""

    __tablename__ = "trail_entry"
    __table_args__ = (
        Index("ix_trail_fund", "fund_doc_no", "seq"),
        Index("ix_trail_project", "project_id", "seq"),
        Index("ix_trail_payment", "payment_id", "seq"),
        Index("ix_trail_vendor", "vendor_id", "seq"),
    )

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    entry_kind: str = Field(max_length=16, description="event | violation | case")
    entry_id: uuid.UUID = Field(unique=True, description="event id or violation/case event id")
    event_type: str = Field(max_length=64)
    fund_doc_no: str | None = Field(default=None, max_length=128)
    project_id: str | None = Field(default=None, max_length=128)
    payment_id: str | None = Field(default=None, max_length=128)
    contract_id: str | None = Field(default=None, max_length=128)
    vendor_id: str | None = Field(default=None, max_length=128)
    violation_id: uuid.UUID | None = Field(default=None, index=True)
    region_code: str = Field(max_length=12)
    occurred_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    appended_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    leaf_data: bytes = Field(sa_column=Column(LargeBinary, nullable=False), description="canonical bytes")
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    trace_id: str | None = Field(default=None, max_length=32)


class TrailNode(SQLModel, table=True):
    """Hash of a complete, aligned subtree [index*2^level, (index+1)*2^level)."""

    __tablename__ = "trail_node"

    level: int = Field(primary_key=True)
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class TrailCheckpoint(SQLModel, table=True):
    """Ed25519-signed tree head."""

    __tablename__ = "trail_checkpoint"

    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root_hash: str = Field(max_length=64)
    signed_at: datetime = Field(sa_column=Column(TZ, nullable=False))
    log_id: str = Field(max_length=128)
    # Since migration 0006: the signed-note key hash (8 hex) and the note signature (base64) of `note`.
    key_id: str = Field(max_length=32)
    signature: str = Field(max_length=200)
    # The C2SP signed note (checkpoint text, blank line, the log's signature line). NULL only on rows
    # signed in the old format before 0006; fund-tracker re-signs those at start-up.
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class TrailCosignature(SQLModel, table=True):
    """A witness's tlog-cosignature/v1 of a stored checkpoint, as the gateway verified and published it."""

    __tablename__ = "trail_cosignature"

    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    witness_name: str = Field(primary_key=True, max_length=256)
    key_hash: str = Field(primary_key=True, max_length=8, description="signed-note key hash, 8 hex digits")
    cosigned_at: datetime = Field(sa_column=Column(TZ, nullable=False), description="the signed timestamp")
    line: str = Field(sa_column=Column(Text, nullable=False), description="the signature line, no newline")
    recorded_at: datetime = Field(sa_column=Column(TZ, nullable=False))
