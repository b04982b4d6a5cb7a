"""The event contract: every fund-lifecycle, reference-data, violation and case event.

Events are flat pydantic models sharing one envelope; `event_type` is the discriminator.
Amounts are integer fen. Times are timezone-aware and stored in UTC.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from .cases import CaseRole
from .types import (
    AccountKind,
    BasisPoints,
    Category,
    Department,
    Fen,
    Identifier,
    Level,
    LongText,
    PaymentKind,
    ProcurementCategory,
    ProcurementMethod,
    RegionCode,
    Severity,
    Sha256Hex,
    ShortText,
    SignedFen,
    level_of_region,
)

# A publisher's clock may run a little ahead of the bureau's: tolerate this much.
MAX_CLOCK_SKEW = timedelta(minutes=5)

# Namespace for deterministic event ids derived from source records (uuid5).
EVENT_ID_NAMESPACE = uuid.UUID("6f1c5a52-3d55-4b8e-9a51-8f3f2c0e7a11")


def derive_event_id(source_bureau: str, source_record_key: str) -> uuid.UUID:
    """Deterministic event id for a source record, so re-importing a file publishes nothing new."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{source_bureau}\x1f{source_record_key}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Envelope(_Model):
    """Fields every event carries."""

    SUPPORTED_SCHEMA_VERSIONS: ClassVar[frozenset[int]] = frozenset({1})

    event_id: uuid.UUID = Field(description="Globally unique id; the idempotency key")
    event_type: str
    schema_version: int = Field(1, strict=True, description="Version of this event type's schema")
    occurred_at: AwareDatetime = Field(description="When the business fact happened (event time)")
    published_at: AwareDatetime = Field(description="When the source system published the event")
    source_bureau: Identifier = Field(description="Code of the publishing bureau, e.g. 440705-CZJ")
    level: Level = Field(description="Level of the publishing bureau / account")
    region_code: RegionCode = Field(description="GB/T 2260 region code of the publishing level")
    fund_doc_no: Identifier | None = Field(
        None, description="Allocation document number (指标文号) identifying the special fund"
    )
    project_id: Identifier | None = Field(None, description="Project identifier, when the event concerns one")

    @field_validator("schema_version")
    @classmethod
    def _supported_version(cls, v: int) -> int:
        if v not in cls.SUPPORTED_SCHEMA_VERSIONS:
            supported = ", ".join(str(s) for s in sorted(cls.SUPPORTED_SCHEMA_VERSIONS))
            raise ValueError(f"schema version {v} is not supported (supported: {supported})")
        return v

    @model_validator(mode="after")
    def _envelope_consistency(self) -> Envelope:
        if self.occurred_at > self.published_at + MAX_CLOCK_SKEW:
            raise ValueError("occurred_at is after published_at: an event cannot be published before it happens")
        region_level = level_of_region(self.region_code)
        if region_level != self.level:
            raise ValueError(
                f"region code {self.region_code} denotes level {region_level.value}, "
                f"but the event says level {self.level.value}"
            )
        return self


class FundEventBase(Envelope):
    """An event about money of a special fund: the fund reference is mandatory."""

    fund_doc_no: Identifier = Field(description="Allocation document number (指标文号)")


# --- lifecycle ------------------------------------------------------------------------------


class FundAllocated(FundEventBase):
    """Province or city allocates a special fund to a receiving level (资金下达)."""

    event_type: Literal["FundAllocated"] = "FundAllocated"
    amount_fen: Fen
    purpose_category: Category
    recipient_level: Level
    recipient_region_code: RegionCode
    deadline: date = Field(description="Date by which the money must be spent")
    title: ShortText


class FundTransferred(FundEventBase):
    """A level passes (part of) a fund down one level."""

    event_type: Literal["FundTransferred"] = "FundTransferred"
    transfer_id: Identifier
    amount_fen: Fen
    to_level: Level
    to_region_code: RegionCode

    @model_validator(mode="after")
    def _one_level_down(self) -> FundTransferred:
        if self.level.child() != self.to_level:
            raise ValueError(f"a {self.level.value} can only transfer to the level directly below it")
        if level_of_region(self.to_region_code) != self.to_level:
            raise ValueError(f"to_region_code {self.to_region_code} is not a {self.to_level.value} code")
        if not self.to_region_code.startswith(self.region_code[: 4 if self.level == Level.CITY else 6]):
            raise ValueError("to_region_code does not lie inside the transferring region")
        return self


class ProjectApproved(FundEventBase):
    """A project is approved (立项) with a budget against a fund."""

    event_type: Literal["ProjectApproved"] = "ProjectApproved"
    project_id: Identifier
    project_name: ShortText
    owner_unit: Identifier = Field(description="Project owner unit (建设单位) code")
    category: Category
    budget_fen: Fen
    planned_procurement_method: ProcurementMethod
    procurement_category: ProcurementCategory
    approval_doc_no: Identifier
    approving_official_id: Identifier
    land_use_approval_ref: Identifier | None = None


class Bidder(_Model):
    """A bid and the identifying attributes used for collusion checks."""

    vendor_id: Identifier
    name: ShortText
    legal_rep_id: Identifier = Field(description="Owner / legal representative identity")
    phone: Identifier
    bank_account: Identifier
    address: ShortText
    bid_amount_fen: Fen


class ProcurementAwarded(FundEventBase):
    """A procurement is awarded to a winning bidder."""

    event_type: Literal["ProcurementAwarded"] = "ProcurementAwarded"
    project_id: Identifier
    award_id: Identifier
    owner_unit: Identifier
    method: ProcurementMethod
    procurement_category: ProcurementCategory
    amount_fen: Fen
    winner_vendor_id: Identifier
    bidders: list[Bidder] = Field(default_factory=list, max_length=200)
    platform_ref: Identifier | None = Field(None, description="Public resource trading platform reference")
    tender_published_on: date | None = None
    bids_opened_on: date | None = None
    approving_official_id: Identifier | None = None

    @model_validator(mode="after")
    def _winner_is_bidder(self) -> ProcurementAwarded:
        if self.bidders and self.winner_vendor_id not in {b.vendor_id for b in self.bidders}:
            raise ValueError("winner_vendor_id is not among the bidders")
        if self.tender_published_on and self.bids_opened_on and self.bids_opened_on < self.tender_published_on:
            raise ValueError("bids_opened_on is before tender_published_on")
        return self


class ContractSigned(FundEventBase):
    event_type: Literal["ContractSigned"] = "ContractSigned"
    project_id: Identifier
    contract_id: Identifier
    award_id: Identifier | None = None
    vendor_id: Identifier
    amount_fen: Fen
    prepayment_share_bps: BasisPoints = 0
    retention_share_bps: BasisPoints = Field(300, description="Warranty retention share (质保金)")
    payment_terms: LongText = ""


class ContractAmended(FundEventBase):
    event_type: Literal["ContractAmended"] = "ContractAmended"
    project_id: Identifier
    contract_id: Identifier
    amendment_id: Identifier
    delta_fen: SignedFen
    approved: bool = Field(description="Whether the amendment carries an approval")
    approval_doc_no: Identifier | None = None
    reason: ShortText

    @model_validator(mode="after")
    def _approval_doc(self) -> ContractAmended:
        if self.approved and not self.approval_doc_no:
            raise ValueError("an approved amendment needs approval_doc_no")
        return self


class PaymentDisbursed(FundEventBase):
    """Money leaves a level's account to a payee."""

    event_type: Literal["PaymentDisbursed"] = "PaymentDisbursed"
    payment_id: Identifier
    contract_id: Identifier | None = None
    payee_vendor_id: Identifier | None = None
    payee_name: ShortText
    payee_account: Identifier
    account_kind: AccountKind
    amount_fen: Fen = Field(gt=0)
    invoice_no: Identifier
    payment_kind: PaymentKind
    handler_id: Identifier
    approver_id: Identifier
    purpose: ShortText


class ProjectAccepted(FundEventBase):
    """Acceptance (验收) of a project or a phase."""

    event_type: Literal["ProjectAccepted"] = "ProjectAccepted"
    project_id: Identifier
    acceptance_id: Identifier
    passed: bool
    progress_bps: BasisPoints = Field(10_000, description="Share of the work accepted")


class ProjectSettled(FundEventBase):
    """Settlement (结算/决算) of a project; `closed` ends payments."""

    event_type: Literal["ProjectSettled"] = "ProjectSettled"
    project_id: Identifier
    settlement_amount_fen: Fen
    closed: bool = True


class FundReturned(FundEventBase):
    """Unused or misused money goes back up one level (or is recovered)."""

    event_type: Literal["FundReturned"] = "FundReturned"
    return_id: Identifier
    amount_fen: Fen = Field(gt=0)
    to_level: Level
    to_region_code: RegionCode
    reason: Literal["unused", "misused", "recovered"]


class BudgetAdjusted(FundEventBase):
    """Budget adjustment (调剂) of a project with an approval document."""

    event_type: Literal["BudgetAdjusted"] = "BudgetAdjusted"
    project_id: Identifier
    adjustment_id: Identifier
    new_budget_fen: Fen
    approval_doc_no: Identifier
    reason: ShortText


# --- reference data -------------------------------------------------------------------------


class VendorRegistered(Envelope):
    event_type: Literal["VendorRegistered"] = "VendorRegistered"
    vendor_id: Identifier
    name: ShortText
    legal_rep_id: Identifier
    phone: Identifier
    bank_account: Identifier
    address: ShortText
    founded_on: date


class VendorDebarred(Envelope):
    event_type: Literal["VendorDebarred"] = "VendorDebarred"
    vendor_id: Identifier
    debarred_from: date
    debarred_until: date | None = None
    authority: ShortText
    reason: ShortText


class RelationDeclared(Envelope):
    """A declared relation between an official and a vendor (利害关系申报)."""

    event_type: Literal["RelationDeclared"] = "RelationDeclared"
    official_id: Identifier
    vendor_id: Identifier
    relation: ShortText


# --- violations and cases -------------------------------------------------------------------


class Evidence(_Model):
    event_ids: list[uuid.UUID] = Field(default_factory=list)
    values: dict[str, Any] = Field(default_factory=dict, description="State values the condition read")


class ViolationRaised(Envelope):
    """A rule fired. Published to the all-violations topic and to the department's topic."""

    event_type: Literal["ViolationRaised"] = "ViolationRaised"
    violation_id: uuid.UUID = Field(description="Deterministic: uuid5(rule id@version, triggering event id)")
    rule_id: Identifier
    rule_version: int = Field(ge=1)
    department: Department
    severity: Severity
    triggering_event_id: uuid.UUID
    evidence: Evidence
    explanation_zh: LongText
    explanation_en: LongText
    legal_basis: LongText
    trace_id: str | None = None


class _CaseAction(Envelope):
    """A step of a violation's case lifecycle (`fundtrail_schemas.cases` says which are allowed)."""

    violation_id: uuid.UUID
    actor: Identifier
    actor_role: CaseRole = Field(CaseRole.COMPLIANCE, description="The role the actor acted in")


class ViolationAcknowledged(_CaseAction):
    event_type: Literal["ViolationAcknowledged"] = "ViolationAcknowledged"
    note: LongText = ""
    assignee: Identifier | None = Field(None, description="Who rectifies it (optional when acknowledging)")
    due_date: date | None = Field(None, description="整改期限: rectification due date (Asia/Shanghai)")


class ViolationAssigned(_CaseAction):
    """Who rectifies a violation and by when; the status does not change."""

    event_type: Literal["ViolationAssigned"] = "ViolationAssigned"
    assignee: Identifier
    due_date: date = Field(description="整改期限: rectification due date (Asia/Shanghai)")


class ViolationRectified(_CaseAction):
    event_type: Literal["ViolationRectified"] = "ViolationRectified"
    note: LongText
    document_sha256: Sha256Hex


class ViolationDismissed(_CaseAction):
    event_type: Literal["ViolationDismissed"] = "ViolationDismissed"
    reason: ShortText


class ViolationResolved(_CaseAction):
    """Late evidence refuted a violation (raised by compliance, never a deletion)."""

    event_type: Literal["ViolationResolved"] = "ViolationResolved"
    actor_role: CaseRole = Field(CaseRole.SYSTEM, description="The role the actor acted in")
    reason: ShortText
    refuting_event_id: uuid.UUID


LIFECYCLE_EVENTS: tuple[type[FundEventBase], ...] = (
    FundAllocated,
    FundTransferred,
    ProjectApproved,
    ProcurementAwarded,
    ContractSigned,
    ContractAmended,
    PaymentDisbursed,
    ProjectAccepted,
    ProjectSettled,
    FundReturned,
    BudgetAdjusted,
)
REFERENCE_EVENTS: tuple[type[Envelope], ...] = (VendorRegistered, VendorDebarred, RelationDeclared)
CASE_EVENTS: tuple[type[_CaseAction], ...] = (
    ViolationAcknowledged,
    ViolationRectified,
    ViolationDismissed,
    ViolationAssigned,
    ViolationResolved,
)
VIOLATION_EVENTS: tuple[type[Envelope], ...] = (ViolationRaised,)

# What bureaus may publish on the raw topic.
SourceEvent = Annotated[
    FundAllocated
    | FundTransferred
    | ProjectApproved
    | ProcurementAwarded
    | ContractSigned
    | ContractAmended
    | PaymentDisbursed
    | ProjectAccepted
    | ProjectSettled
    | FundReturned
    | BudgetAdjusted
    | VendorRegistered
    | VendorDebarred
    | RelationDeclared,
    Field(discriminator="event_type"),
]
CaseEvent = Annotated[
    ViolationAcknowledged | ViolationRectified | ViolationDismissed | ViolationAssigned | ViolationResolved,
    Field(discriminator="event_type"),
]
AnyEvent = Annotated[
    FundAllocated
    | FundTransferred
    | ProjectApproved
    | ProcurementAwarded
    | ContractSigned
    | ContractAmended
    | PaymentDisbursed
    | ProjectAccepted
    | ProjectSettled
    | FundReturned
    | BudgetAdjusted
    | VendorRegistered
    | VendorDebarred
    | RelationDeclared
    | ViolationRaised
    | ViolationAcknowledged
    | ViolationRectified
    | ViolationDismissed
    | ViolationAssigned
    | ViolationResolved,
    Field(discriminator="event_type"),
]

EVENT_TYPES: dict[str, type[Envelope]] = {
    m.model_fields["event_type"].default: m
    for m in (*LIFECYCLE_EVENTS, *REFERENCE_EVENTS, *VIOLATION_EVENTS, *CASE_EVENTS)
}

source_event_adapter: TypeAdapter[SourceEvent] = TypeAdapter(SourceEvent)
case_event_adapter: TypeAdapter[CaseEvent] = TypeAdapter(CaseEvent)
any_event_adapter: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def event_key(event: Envelope) -> bytes:
    """Kafka message key: fund events by fund, reference data by vendor, cases by violation."""
    if isinstance(event, (VendorRegistered, VendorDebarred, RelationDeclared)):
        return f"vendor:{event.vendor_id}".encode()
    if event.fund_doc_no:
        return event.fund_doc_no.encode()
    if event.project_id:
        return f"project:{event.project_id}".encode()
    return str(event.event_id).encode()


def now_utc() -> datetime:
    """Current time, timezone-aware UTC (the one place services read the wall clock from)."""
    from datetime import UTC

    return datetime.now(UTC)


__all__ = [
    "CASE_EVENTS",
    "EVENT_TYPES",
    "LIFECYCLE_EVENTS",
    "REFERENCE_EVENTS",
    "AnyEvent",
    "Bidder",
    "BudgetAdjusted",
    "CaseEvent",
    "ContractAmended",
    "ContractSigned",
    "Envelope",
    "Evidence",
    "FundAllocated",
    "FundEventBase",
    "FundReturned",
    "FundTransferred",
    "PaymentDisbursed",
    "ProcurementAwarded",
    "ProjectAccepted",
    "ProjectApproved",
    "ProjectSettled",
    "RelationDeclared",
    "SourceEvent",
    "ValidationError",
    "VendorDebarred",
    "VendorRegistered",
    "ViolationAcknowledged",
    "ViolationAssigned",
    "ViolationDismissed",
    "ViolationRaised",
    "ViolationRectified",
    "ViolationResolved",
    "derive_event_id",
    "event_key",
]
