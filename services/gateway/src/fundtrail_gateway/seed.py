"""Fixture data for tests and the benchmark: a real Merkle log and ledger rows, inserted with SQLModel.

In production fund-tracker and compliance write these tables; the gateway only reads them. Tests
and the benchmark need rows without running the workers, so this builder writes exactly what the
table contract describes: contract events, RFC 9162 leaves and nodes, signed checkpoints.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel

from fundtrail_runtime.store.compliance import CaseAction, Violation
from fundtrail_runtime.store.tracker import (
    Fund,
    FundPosition,
    Payment,
    ProcessedEvent,
    TrailCheckpoint,
    TrailEntry,
    TrailNode,
)
from fundtrail_schemas.decode import encode_event
from fundtrail_schemas.events import (
    ContractSigned,
    Envelope,
    Evidence,
    FundAllocated,
    FundTransferred,
    PaymentDisbursed,
    ProjectApproved,
    ViolationAcknowledged,
    ViolationDismissed,
    ViolationRaised,
    ViolationRectified,
    ViolationResolved,
)
from fundtrail_schemas.eventspec import TRAIL_COLUMNS, trail_columns
from fundtrail_schemas.leaf import SUBJECTS, encode_leaf
from fundtrail_schemas.ledger import Ledger
from fundtrail_schemas.ledger_state import dumps
from fundtrail_schemas.topics import raw_topic
from fundtrail_schemas.types import (
    AccountKind,
    Category,
    Department,
    Level,
    PaymentKind,
    ProcurementCategory,
    ProcurementMethod,
    Severity,
)
from fundtrail_verify import merkle
from fundtrail_verify.checkpoint import sign_checkpoint

LOG_ID = "fundtrail.test/log"
T0 = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
CITY = "440700"
COUNTIES = ("440705", "440781", "440783")


def _uuid(*parts: object) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, "fundtrail-seed/" + "/".join(str(p) for p in parts))



@dataclass
class TrailBuilder:
    """Appends events, violations and case actions to a Merkle log and the ledger tables.

    Leaves are built by the contract's `fundtrail_schemas.leaf.encode_leaf`, as fund-tracker builds them;
    the ledger states each event's leaf commits (`before` / `after`) come from the same ledger core."""

    rows: list[SQLModel] = field(default_factory=list)
    tree: merkle.CompactRange = field(default_factory=merkle.CompactRange)
    checkpoints: list[TrailCheckpoint] = field(default_factory=list)
    heads: dict[tuple[str, str], int] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)
    links: dict[uuid.UUID, dict[str, str | None]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.tree.size

    def _append(self, kind: str, entry_id: uuid.UUID, event: Envelope, violation_id: uuid.UUID | None,
                *, inherit: dict[str, str | None] | None = None, before: dict[str, Any] | None = None,
                after: dict[str, Any] | None = None, publisher: dict[str, str | None] | None = None) -> int:
        seq = self.tree.size
        inherited = inherit or {}
        # The registry names the columns an event fills itself (violations and case actions: none).
        own = trail_columns(event)
        cols: dict[str, Any] = {
            "fund_doc_no": event.fund_doc_no or inherited.get("fund_doc_no"),
            "project_id": event.project_id or inherited.get("project_id"),
            **{c: own[c] or inherited.get(c) for c in TRAIL_COLUMNS},
        }
        subjects = [(k, cols[c]) for k, c in SUBJECTS.items() if cols[c] is not None]
        appended_at = event.published_at + timedelta(seconds=1)
        trace_id = uuid.uuid5(uuid.NAMESPACE_OID, str(entry_id)).hex
        data = encode_leaf(
            kind=kind, entry_id=entry_id, event_type=event.event_type, payload=encode_event(event),
            region_code=event.region_code, occurred_at=event.occurred_at, appended_at=appended_at,
            trace_id=trace_id, prev={k: self.heads.get((k, v)) for k, v in subjects}, violation_id=violation_id,
            before=before, after=after, publisher=publisher, **cols,
        )
        for subject in subjects:
            self.heads[subject] = seq
        self.links[entry_id] = cols
        leaf = merkle.leaf_hash(data)
        for level, idx, h in self.tree.append(leaf):
            self.rows.append(TrailNode(level=level, idx=idx, hash=h))
        self.rows.append(
            TrailEntry(
                seq=seq,
                entry_kind=kind,
                entry_id=entry_id,
                event_type=event.event_type,
                violation_id=violation_id,
                region_code=event.region_code,
                occurred_at=event.occurred_at,
                appended_at=appended_at,
                leaf_data=data,
                leaf_hash=leaf,
                trace_id=trace_id,
                **cols,
            )
        )
        return seq

    def event(self, event: Envelope, state_after: dict[str, Any] | None = None) -> int:
        """An accepted event: processed_event row plus a trail leaf (and a payment row for payments).

        The ledger states are fund-tracker's ledger core applying the event; `state_after`, when given,
        replaces them (the benchmark's log, which no audit reads)."""
        transition = self.ledger.apply(event)
        before, after = orjson.loads(transition.before_json), orjson.loads(transition.after_json)
        if state_after is not None:
            before, after = {}, state_after
        # As fund-tracker records it: the region's raw topic and the bureau as the publishing subject.
        publisher: dict[str, str | None] = {"topic": raw_topic(event.region_code), "principal": event.source_bureau}
        seq = self._append("event", event.event_id, event, None, before=before, after=after, publisher=publisher)
        self.rows.append(
            ProcessedEvent(
                event_id=event.event_id,
                sequence=seq,
                event_type=event.event_type,
                fund_doc_no=event.fund_doc_no,
                project_id=event.project_id,
                region_code=event.region_code,
                level=event.level.value,
                occurred_at=event.occurred_at,
                accepted_at=event.published_at + timedelta(seconds=1),
                payload=orjson.loads(encode_event(event)),
                state_after=after,
                trace_id=uuid.uuid5(uuid.NAMESPACE_OID, str(event.event_id)).hex,
            )
        )
        if isinstance(event, PaymentDisbursed):
            self.rows.append(
                Payment(
                    payment_id=event.payment_id,
                    event_id=event.event_id,
                    fund_doc_no=event.fund_doc_no,
                    project_id=event.project_id,
                    contract_id=event.contract_id,
                    payee_vendor_id=event.payee_vendor_id,
                    invoice_no=event.invoice_no,
                    amount_fen=event.amount_fen,
                    region_code=event.region_code,
                    paid_at=event.occurred_at,
                )
            )
        return seq

    def position_rows(self) -> list[FundPosition]:
        """The fund_position rows the committed ledger states describe."""
        return [FundPosition(**orjson.loads(dumps(p))) for _, p in sorted(self.ledger.positions.items())]

    def violation(self, v: ViolationRaised, status: str = "raised") -> int:
        """A raised violation: violation row plus a trail leaf."""
        seq = self._append("violation", v.violation_id, v, v.violation_id,
                           inherit=self.links.get(v.triggering_event_id))
        self.rows.append(
            Violation(
                violation_id=v.violation_id,
                rule_id=v.rule_id,
                rule_version=v.rule_version,
                department=v.department.value,
                severity=v.severity.value,
                status=status,
                triggering_event_id=v.triggering_event_id,
                fund_doc_no=v.fund_doc_no,
                project_id=v.project_id,
                region_code=v.region_code,
                occurred_at=v.occurred_at,
                raised_at=v.published_at,
                status_changed_at=v.published_at,
                explanation_zh=v.explanation_zh,
                explanation_en=v.explanation_en,
                legal_basis=v.legal_basis,
                evidence=v.evidence.model_dump(mode="json"),
                payload=orjson.loads(encode_event(v)),
                trace_id=v.trace_id,
            )
        )
        return seq

    def case(
        self, action: ViolationAcknowledged | ViolationRectified | ViolationDismissed | ViolationResolved, kind: str
    ) -> int:
        """A recorded case action: case_action row plus a trail leaf."""
        violation_id = action.violation_id
        seq = self._append("case", action.event_id, action, violation_id, inherit=self.links.get(violation_id))
        self.rows.append(
            CaseAction(
                event_id=action.event_id,
                violation_id=violation_id,
                action=kind,
                actor=action.actor,
                at=action.occurred_at,
                payload=orjson.loads(encode_event(action)),
            )
        )
        return seq

    def checkpoint(self, key: Ed25519PrivateKey, log_id: str = LOG_ID, at: datetime | None = None) -> TrailCheckpoint:
        """Sign the current tree head."""
        cp = sign_checkpoint(key, log_id, self.tree.size, self.tree.root(), at or T0 + timedelta(days=400))
        sig = cp.parsed_note().signatures[0]
        row = TrailCheckpoint(
            tree_size=cp.tree_size,
            root_hash=cp.root_hash,
            signed_at=cp.timestamp,
            log_id=cp.log_id,
            key_id=f"{sig.key_hash:08x}",
            signature=base64.b64encode(sig.signature).decode("ascii"),
            note=cp.note,
        )
        self.checkpoints.append(row)
        self.rows.append(row)
        return row

    def write(self, engine: Engine) -> None:
        """Insert everything in one transaction."""
        with Session(engine) as session:
            session.add_all(self.rows)
            session.commit()
        self.rows = []


def _env(n: object, level: Level, region: str, days: float, fund: str | None, project: str | None = None) -> dict:
    at = T0 + timedelta(days=days)
    return {
        "event_id": _uuid("event", n),
        "occurred_at": at,
        "published_at": at + timedelta(minutes=3),
        "source_bureau": f"{region}-CZ",
        "level": level,
        "region_code": region,
        "fund_doc_no": fund,
        "project_id": project,
    }


@dataclass(frozen=True)
class CountyWorld:
    """Ids of what was seeded for one county (tests ask for them)."""

    county: str
    town: str
    village: str
    fund_doc_no: str
    project_id: str
    payment_id: str
    vendor_id: str
    contract_id: str
    violation_id: uuid.UUID
    open_violation_id: uuid.UUID
    event_ids: tuple[uuid.UUID, ...]
    leaf_indexes: tuple[int, ...]


def seed_county(b: TrailBuilder, county: str, n_payments: int = 2) -> CountyWorld:
    """A fund allocated by the city to `county`, passed to a town, a project, a contract, payments, violations."""
    town, village = county + "101", county + "101201"
    fund = f"F-{county}-2026-01"
    project = f"P-{town}-2026-001"
    contract = f"HT-{town}-2026-001"
    vendor = f"V-{county}-0001"
    seqs: list[int] = []
    events: list[Envelope] = [
        FundAllocated(**_env((county, 1), Level.CITY, CITY, 0, fund), amount_fen=1_000_000_000,
                      purpose_category=Category.INFRASTRUCTURE, recipient_level=Level.COUNTY,
                      recipient_region_code=county, deadline=date(2026, 12, 31), title=f"{county} 基础设施专项"),
        FundTransferred(**_env((county, 2), Level.COUNTY, county, 5, fund), transfer_id=f"ZF-{county}-1",
                        amount_fen=400_000_000, to_level=Level.TOWN, to_region_code=town),
        ProjectApproved(**_env((county, 3), Level.TOWN, town, 10, fund, project), project_name="村道硬底化",
                        owner_unit=f"{town}-JSB", category=Category.INFRASTRUCTURE, budget_fen=200_000_000,
                        planned_procurement_method=ProcurementMethod.OPEN_TENDER,
                        procurement_category=ProcurementCategory.CONSTRUCTION, approval_doc_no=f"A-{town}-1",
                        approving_official_id=f"OFF-{town}-1"),
        ContractSigned(**_env((county, 4), Level.TOWN, town, 40, fund, project), contract_id=contract,
                       vendor_id=vendor, amount_fen=180_000_000),
        FundTransferred(**_env((county, 5), Level.TOWN, town, 45, fund, project), transfer_id=f"ZF-{town}-1",
                        amount_fen=50_000_000, to_level=Level.VILLAGE, to_region_code=village),
    ]
    payments = [
        PaymentDisbursed(**_env((county, "pay", i), Level.TOWN, town, 50 + i, fund, project),
                         payment_id=f"ZF-{town}-{i:04d}", contract_id=contract, payee_vendor_id=vendor,
                         payee_name="江门市绿野建设工程有限公司", payee_account="6222-0001",
                         account_kind=AccountKind.CORPORATE,
                         amount_fen=10_000_000 + i, invoice_no=f"INV-{town}-{i}", payment_kind=PaymentKind.PROGRESS,
                         handler_id="STAFF-1", approver_id="STAFF-1" if i == 0 else "STAFF-2", purpose="进度款")
        for i in range(n_payments)
    ]
    for ev in [*events, *payments]:
        seqs.append(b.event(ev))
    first_payment = payments[0]

    def raised(n: int, rule: str, dept: Department, trigger: Envelope) -> ViolationRaised:
        return ViolationRaised(
            **_env((county, "vio", n), Level.TOWN, town, 51 + n, fund, project),
            violation_id=_uuid("violation", county, n), rule_id=rule, rule_version=1, department=dept,
            severity=Severity.HIGH, triggering_event_id=trigger.event_id,
            evidence=Evidence(event_ids=[trigger.event_id], values={
                "read": {"event.handler_id": "STAFF-1", "event.approver_id": "STAFF-1"}, "params": {}}),
            explanation_zh="经办人与审批人相同", explanation_en="Handler and approver are the same person",
            legal_basis="《行政事业单位内部控制规范（试行）》第十二条", trace_id=_uuid("trace", county, n).hex,
        )

    v1 = raised(1, "inspection.same_handler_approver", Department.INSPECTION, first_payment)
    v2 = raised(2, "finance.duplicate_invoice", Department.FINANCE, first_payment)
    seqs.append(b.violation(v1, status="acknowledged"))
    ack = ViolationAcknowledged(**_env((county, "ack", 1), Level.TOWN, town, 53, fund, project),
                                violation_id=v1.violation_id, actor=f"USER-{county}-1", note="已收到")
    seqs.append(b.case(ack, "acknowledged"))
    seqs.append(b.violation(v2, status="raised"))
    b.rows.append(Fund(fund_doc_no=fund, title=f"{county} 基础设施专项", purpose_category="infrastructure",
                       allocated_fen=1_000_000_000, deadline=date(2026, 12, 31), allocated_at=T0, region_code=CITY))
    return CountyWorld(
        county=county, town=town, village=village, fund_doc_no=fund, project_id=project,
        payment_id=first_payment.payment_id, vendor_id=vendor, contract_id=contract,
        violation_id=v1.violation_id, open_violation_id=v2.violation_id,
        event_ids=tuple(e.event_id for e in [*events, *payments]), leaf_indexes=tuple(seqs),
    )


@dataclass(frozen=True)
class World:
    counties: dict[str, CountyWorld]
    checkpoints: tuple[int, ...]
    log_id: str


def seed_world(engine: Engine, key: Ed25519PrivateKey, counties: Iterable[str] = COUNTIES) -> World:
    """Three counties' funds in one log, with a checkpoint after each county."""
    b = TrailBuilder()
    worlds = {}
    for county in counties:
        worlds[county] = seed_county(b, county)
        b.checkpoint(key, at=T0 + timedelta(days=400 + len(worlds)))
    sizes = tuple(cp.tree_size for cp in b.checkpoints)
    b.rows.extend(b.position_rows())
    b.write(engine)
    return World(worlds, sizes, LOG_ID)


def seed_big_fund(engine: Engine, key: Ed25519PrivateKey, n_events: int, county: str = "440784") -> str:
    """One fund with `n_events` trail entries (the benchmark's subject); returns its document number."""
    b = TrailBuilder()
    town = county + "101"
    fund = f"F-{county}-BENCH"
    project = f"P-{town}-BENCH"
    for i in range(n_events):
        b.event(PaymentDisbursed(
            **_env(("bench", county, i), Level.TOWN, town, i / 100, fund, project), payment_id=f"B-{county}-{i:06d}",
            payee_name="供应商", payee_account="6222", account_kind=AccountKind.CORPORATE, amount_fen=1000 + i,
            invoice_no=f"BI-{i}", payment_kind=PaymentKind.PROGRESS, handler_id="H", approver_id="A", purpose="bench",
        ), state_after={"position": {"region_code": town, "paid_fen": 1000 * (i + 1)}})
    b.checkpoint(key)
    b.write(engine)
    return fund
