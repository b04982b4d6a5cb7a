"""Response and request bodies of the HTTP API (documentation and validation)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fundtrail_schemas.rulepack import Rule
from fundtrail_schemas.types import Identifier, LongText, Sha256Hex, ShortText
from fundtrail_verify.checkpoint import Checkpoint, ConsistencyProof, InclusionProof

from ..core.problems import Problem


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrailEntryLinks(_Out):
    proof: str = Field(description="Inclusion proof of this entry against the latest checkpoint")
    violation: str | None = None


class EntryVerification(_Out):
    """What the gateway checked of an entry before serving it."""

    ok: bool = Field(description="Every check passed")
    problems: list[Literal["leaf_hash", "leaf_unparseable", "column_mismatch", "chain_gap"]] = Field(
        description="Checks that failed: the leaf bytes do not hash to the log's leaf (leaf_hash), are not a "
        "leaf of the contract's format (leaf_unparseable), a stored column disagrees with the leaf "
        "(column_mismatch), or `prev` does not name the entry shown before (chain_gap)"
    )


class TrailEntryOut(_Out):
    """One leaf of the tamper-evident log: every fact below is parsed from `leaf_data`."""

    leaf_index: int = Field(description="Position in the Merkle log (RFC 9162 leaf index)")
    leaf_hash: str = Field(description="SHA-256(0x00 || leaf bytes), hex, computed from `leaf_data`")
    leaf_data: str | None = Field(description="The exact leaf bytes, base64 (format: docs/verifying.md); null when "
                                  "withheld from a regional reader (leaf_withheld)")
    leaf_withheld: bool = Field(description="The leaf holds ledger state outside the reader's region: its bytes "
                                "are not served (the gateway README, What a region sees)")
    verification: EntryVerification
    prev: dict[str, int | None] = Field(
        description="Leaf index of the previous entry of each subject (fund, project, payment, vendor); null: first"
    )
    withheld_before: list[int] | None = Field(
        default=None,
        description="Regional readers: leaf indexes of this trail's entries outside the region since the item "
        "shown before (ascending); `prev` of the trail's subject must name the last of them, or the item shown "
        "before when empty. Null for readers of every region, who see the whole chain")
    entry_kind: str | None = Field(description="event | violation | case")
    entry_id: uuid.UUID | None
    event_type: str | None
    fund_doc_no: str | None
    project_id: str | None
    payment_id: str | None
    contract_id: str | None
    vendor_id: str | None
    violation_id: uuid.UUID | None
    violation_status: str | None = Field(
        description="Current case status, for violation entries (not in the log: derive it from its case entries)"
    )
    region_code: str | None
    occurred_at: datetime | None
    appended_at: datetime | None
    trace_id: str | None
    publisher: dict[str, str | None] | None = Field(
        default=None,
        description="Events: who published it, from the leaf (format 3): `topic`, the raw topic fund-tracker "
        "consumed it from (its Kafka ACLs say who may write it), and `principal`, the fundtrail-published-by "
        "header the gateway sets from the publishing token (null when absent). Null for violations, case "
        "actions and format-2 leaves")
    event: dict[str, Any] | None = Field(description="The event, violation or case action as published")
    state_before: dict[str, Any] | None = Field(description="Ledger state before an accepted event")
    state_after: dict[str, Any] | None = Field(description="Ledger state after an accepted event")
    links: TrailEntryLinks


class TrailPage(_Out):
    """A page of a trail in log order; follow `next` for more."""

    subject: Literal["fund", "project", "payment", "vendor"]
    id: str
    items: list[TrailEntryOut]
    next: str | None = Field(description="Link to the next page, absent on the last page")
    next_cursor: str | None


class PositionNodeOut(_Out):
    """One level and region holding the fund, with the levels below it."""

    region_code: str
    level: str
    received_fen: int
    passed_down_fen: int
    contracted_fen: int
    paid_fen: int
    returned_fen: int
    balance_fen: int = Field(description="received − passed down − paid − returned: money lying idle here")
    subtree_paid_fen: int
    subtree_balance_fen: int
    children: list[PositionNodeOut]


class FundLinks(_Out):
    trail: str
    violations: str


class FundOut(_Out):
    """Where the money of one fund is: a tree city → county → town → village."""

    fund_doc_no: str
    title: str | None
    purpose_category: str | None
    allocated_fen: int
    deadline: date | None
    allocated_at: datetime | None
    region_code: str | None
    positions: list[PositionNodeOut]
    links: FundLinks


class FundSummary(_Out):
    fund_doc_no: str
    title: str | None
    purpose_category: str | None
    allocated_fen: int
    deadline: date | None
    region_code: str | None
    links: FundLinks


class FundsPage(_Out):
    items: list[FundSummary]
    next: str | None
    next_cursor: str | None


class LeafOut(_Out):
    """The leaf a response was parsed from: check `leaf_hash` with the inclusion proof of `leaf_index`."""

    leaf_index: int
    leaf_hash: str = Field(description="SHA-256(0x00 || leaf bytes), hex, computed from `leaf_data`")
    leaf_data: str | None = Field(description="The exact leaf bytes, base64; null when withheld from a regional "
                                  "reader (leaf_withheld)")
    leaf_withheld: bool = Field(description="The leaf holds ledger state outside the reader's region: its bytes "
                                "are not served (the gateway README, What a region sees)")
    verification: EntryVerification


class EventOut(_Out):
    """An accepted event with the ledger state around it, parsed from its leaf."""

    event_id: uuid.UUID
    sequence: int
    event_type: str
    fund_doc_no: str | None
    project_id: str | None
    region_code: str
    level: str
    occurred_at: datetime
    accepted_at: datetime
    trace_id: str | None
    payload: dict[str, Any]
    state_before: dict[str, Any] | None
    state_after: dict[str, Any] | None
    leaf: LeafOut


class RejectedItem(_Out):
    index: int = Field(description="Position of the item in the posted batch (0 for a single event)")
    event_id: uuid.UUID | None
    problem: Problem


class IngestReport(_Out):
    """What became of each posted item.

    `accepted` ids were published to the raw-events topic now; `already_recorded` ids were seen
    before (recorded by fund-tracker, published by this gateway moments ago, or repeated in the
    batch) and were not published again; `rejected` items carry an RFC 9457 problem each.
    """

    accepted: list[uuid.UUID]
    already_recorded: list[uuid.UUID]
    rejected: list[RejectedItem]


class ImportRow(_Out):
    row: int = Field(description="Row number as the user sees it (header is row 1)")
    event_id: uuid.UUID


class ImportRowError(_Out):
    row: int = Field(description="0 for the file as a whole")
    field: str
    message: str
    reason: str


class ImportReport(_Out):
    """The row-level report of an import (the same as `fundtrail publish FILE`) plus what was published."""

    format: str
    total_rows: int
    valid_rows: int
    rejected_rows: list[int]
    errors: list[ImportRowError]
    dry_run: bool
    accepted: list[ImportRow]
    already_recorded: list[ImportRow]


class ViolationLinks(_Out):
    self: str
    triggering_event: str
    evidence: list[str] = Field(default_factory=list)
    fund_trail: str | None = None
    project_trail: str | None = None
    trail_entries: list[str] = Field(default_factory=list, description="Inclusion proofs of its trail entries")
    actions: dict[str, str] = Field(default_factory=dict, description="Case actions possible now")


class ViolationOut(_Out):
    violation_id: uuid.UUID
    rule_id: str
    rule_version: int
    department: str
    severity: str
    status: str
    triggering_event_id: uuid.UUID
    fund_doc_no: str | None
    project_id: str | None
    region_code: str
    occurred_at: datetime
    raised_at: datetime
    status_changed_at: datetime
    trace_id: str | None
    explanation_zh: str
    explanation_en: str
    assignee: str | None = Field(description="Who rectifies it (set by assign or acknowledge)")
    due_date: date | None = Field(description="整改期限: the rectification due date (Asia/Shanghai)")
    overdue: bool = Field(description="An open case whose due date is before today in Asia/Shanghai")
    links: ViolationLinks


class CaseActionOut(_Out):
    event_id: uuid.UUID
    action: str
    actor: str
    at: datetime
    trace_id: str | None
    payload: dict[str, Any] = Field(description="The case action as published, parsed from its leaf")
    outcome: str = Field(description="applied, or rejected (the lifecycle refused it; see reason)")
    reason: str | None = Field(description="Why compliance refused it (a reason code), when it did")
    leaf: LeafOut | None = Field(description="The case action's trail entry (null: not appended yet)")


class ViolationDetail(ViolationOut):
    """A violation with its evidence, legal basis and case history; the facts are parsed from its leaf."""

    legal_basis: str
    evidence: dict[str, Any]
    case_history: list[CaseActionOut]
    allowed_actions: list[str]
    leaf: LeafOut | None = Field(description="The violation's trail entry (null: not appended yet)")


class ViolationsPage(_Out):
    items: list[ViolationOut]
    next: str | None
    next_cursor: str | None


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"note": "已收到，正在核查"},
                {"note": "已收到，正在核查", "assignee": "USER-440705101-CZS-02", "due_date": "2026-04-30"},
            ]
        },
    )

    note: LongText = ""
    assignee: Identifier | None = Field(None, description="Who rectifies it (optional)")
    due_date: date | None = Field(None, description="整改期限, YYYY-MM-DD (optional)")


class AssignRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"assignee": "USER-440705101-CZS-02", "due_date": "2026-04-30"}]},
    )

    assignee: Identifier = Field(description="Who rectifies it")
    due_date: date = Field(description="整改期限, YYYY-MM-DD")


class RectifyRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "note": "已调整审批流程，补充复核签字",
                    "document_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                }
            ]
        },
    )

    note: LongText = Field(min_length=1)
    document_sha256: Sha256Hex = Field(description="SHA-256 (hex) of the supporting document")


class DismissRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "经核查为系统录入错误"}]})

    reason: ShortText


class CaseActionAccepted(_Out):
    """The case action was published; the violation's status changes when compliance records it."""

    event_id: uuid.UUID
    violation_id: uuid.UUID
    event_type: str
    status: str = Field(description="The status the violation moves to")
    topic: str
    partition: int
    offset: int


class CheckpointOut(Checkpoint):
    """The latest signed tree head."""


class InclusionOut(_Out):
    """Proof that one trail entry is in the log the checkpoint commits to."""

    checkpoint: Checkpoint
    leaf_index: int
    leaf_hash: str
    leaf_data: str | None = Field(description="The exact leaf bytes, base64; null when withheld from a regional "
                                  "reader (leaf_withheld)")
    leaf_withheld: bool = Field(description="The leaf holds ledger state outside the reader's region: its bytes "
                                "are not served (the gateway README, What a region sees)")
    entry_id: uuid.UUID
    inclusion_proof: InclusionProof


class ConsistencyOut(_Out):
    """Proof that the log of `old_size` leaves is a prefix of the log of `new_size` leaves."""

    old_checkpoint: Checkpoint | None = Field(description="The signed head of old_size, when one was stored")
    new_checkpoint: Checkpoint
    consistency_proof: ConsistencyProof


class DepartmentOut(_Out):
    code: str
    name_zh: str
    name_en: str
    violations_topic: str
    pack_version: int | None
    rules: int


class RulePackSummary(_Out):
    department: str
    pack_version: int
    description: str
    rules: int
    links: dict[str, str]


class RuleVersions(_Out):
    """Every version of one rule with its effective dates."""

    rule_id: str
    department: str
    catalogue_no: int | None
    summary: str | None
    versions: list[Rule]


class PackPublished(_Out):
    department: str
    pack_version: int
    rules: int
    topic: str
    partition: int
    offset: int


class Health(_Out):
    status: Literal["ok"]


class Readiness(_Out):
    status: Literal["ready"]
    checks: dict[str, Literal["ok"]] = Field(description="Each dependency checked: postgresql, kafka")


class CosignatureOut(_Out):
    witness: str = Field(description="The witness's key name")
    key_hash: str = Field(description="Signed-note key hash, 8 hex digits")
    timestamp: datetime = Field(description="The signed time of the cosignature (tlog-cosignature/v1)")


class CheckpointEntryOut(Checkpoint):
    """A stored checkpoint; `note` carries the log's signature and every valid configured witness cosignature."""

    cosignatures: list[CosignatureOut]
    links: dict[str, str]


class CheckpointsPage(_Out):
    items: list[CheckpointEntryOut]
    next: str | None = Field(description="Link to the next page (larger tree sizes), or null")


class LogKeyOut(_Out):
    """Where and how to verify this log's checkpoints."""

    origin: str | None = Field(description="The checkpoint origin line, also the log key's name")
    vkey: str | None = Field(description="Note verifier key <name>+<key hash>+<base64(0x01 || Ed25519 key)>")
    key_hash: str | None
    public_key: str | None = Field(description="The raw 32-byte Ed25519 public key, base64")
    witnesses: list[str] = Field(description="Cosigner vkeys (type 0x04) whose cosignatures are served")
    checkpoints: str
    latest_note: str


class CosignaturesAccepted(_Out):
    """The cosignatures verified and were published; they are served once fund-tracker stored them."""

    tree_size: int
    accepted: list[CosignatureOut]
    topic: str
