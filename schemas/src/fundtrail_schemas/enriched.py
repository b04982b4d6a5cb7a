"""What fund-tracker tells compliance: the accepted event plus the ledger state around it."""

from __future__ import annotations

import base64
import uuid
from datetime import date, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .decode import ReasonCode
from .events import SourceEvent
from .types import Category, Level, ProcurementCategory


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FundState(_State):
    """A special fund as a whole."""

    fund_doc_no: str
    known: bool = Field(False, description="An allocation for this fund has been recorded")
    purpose_category: Category | None = None
    allocated_fen: int = 0
    deadline: date | None = None
    allocated_at: AwareDatetime | None = None


class PositionState(_State):
    """A fund at one level and region: the money that level holds."""

    fund_doc_no: str
    level: Level
    region_code: str
    received_fen: int = 0
    passed_down_fen: int = 0
    paid_fen: int = 0
    returned_fen: int = 0
    contracted_fen: int = 0
    first_received_at: AwareDatetime | None = None
    last_outflow_at: AwareDatetime | None = None

    @property
    def balance_fen(self) -> int:
        return self.received_fen - self.passed_down_fen - self.paid_fen - self.returned_fen


class ProjectState(_State):
    project_id: str
    approved: bool = False
    approved_at: AwareDatetime | None = None
    region_code: str | None = None
    owner_unit: str | None = None
    category: Category | None = None
    procurement_category: ProcurementCategory | None = None
    budget_fen: int = 0
    land_use_approval_ref: str | None = None
    approving_official_id: str | None = None
    awards_count: int = 0
    awarded_fen: int = 0
    contracted_fen: int = 0
    paid_fen: int = 0
    accepted: bool = False
    accepted_at: AwareDatetime | None = None
    accepted_progress_bps: int = 0
    settled: bool = False
    closed: bool = False
    settled_at: AwareDatetime | None = None


class ContractState(_State):
    contract_id: str
    signed: bool = False
    signed_at: AwareDatetime | None = None
    vendor_id: str | None = None
    amount_fen: int = 0
    amendments_fen: int = Field(0, description="Sum of all amendment deltas")
    approved_amendments_fen: int = Field(0, description="Sum of approved amendment deltas")
    paid_fen: int = 0
    prepaid_fen: int = 0
    payments_count: int = 0
    retention_share_bps: int = 300


class VendorState(_State):
    vendor_id: str
    awards_count: int = 0
    awarded_fen: int = 0
    paid_fen: int = 0


class LedgerState(_State):
    """The slice of the ledger one event touches, as the rules read it."""

    fund: FundState | None = None
    position: PositionState | None = Field(None, description="The event's own level and region")
    counterparty: PositionState | None = Field(
        None, description="The receiving level of an allocation, transfer or return"
    )
    project: ProjectState | None = None
    contract: ContractState | None = None
    vendor: VendorState | None = None
    invoice_payment_ids: list[str] = Field(
        default_factory=list, description="Other payments already recorded with the same invoice number"
    )


class EnrichedEvent(BaseModel):
    """An accepted event with the ledger state before and after it (topic fundtrail.events.enriched)."""

    model_config = ConfigDict(extra="forbid")

    event: SourceEvent
    sequence: int = Field(description="Position of this event in fund-tracker's accepted-event order")
    accepted_at: AwareDatetime
    before: LedgerState
    after: LedgerState
    trace_id: str | None = None


class DeadLetter(BaseModel):
    """A rejected message (topic fundtrail.events.dlq): why, and the original bytes."""

    model_config = ConfigDict(extra="forbid")

    reason: ReasonCode
    message: str
    errors: list[dict[str, str]] = Field(default_factory=list)
    original_b64: str = Field(description="The original message value, base64")
    original_key_b64: str | None = None
    source_topic: str
    source_partition: int
    source_offset: int
    rejected_at: AwareDatetime
    service: str
    event_id: uuid.UUID | None = Field(None, description="The event id, when it could be read")

    @property
    def original(self) -> bytes:
        return base64.b64decode(self.original_b64)

    @classmethod
    def build(
        cls,
        *,
        reason: ReasonCode,
        message: str,
        errors: list[dict[str, str]],
        value: bytes | None,
        key: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        at: datetime,
        service: str,
        event_id: uuid.UUID | None = None,
    ) -> DeadLetter:
        """A dead letter carrying the original bytes (none for a null record)."""
        return cls(
            reason=reason,
            message=message,
            errors=errors,
            original_b64=base64.b64encode(value or b"").decode(),
            original_key_b64=base64.b64encode(key).decode() if key is not None else None,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            rejected_at=at,
            service=service,
            event_id=event_id,
        )
