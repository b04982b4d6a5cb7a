"""A small reference reading of the 30 catalogue rules, used to check the generator's own output.

It applies the default parameters of services/compliance/rulepacks (the versions effective in the
demo year) with the
ledger semantics of fund-tracker (positions per fund, level and region; a contract's value is its
amount plus approved amendments) to a time-ordered stream, and returns (rule id, triggering event
id) pairs. It is not the compliance engine: it exists so the generator's tests can prove that the
dataset raises exactly the violations its manifest lists, no accidental extra ones.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from ..catalogue import parameters
from ..events import (
    BudgetAdjusted,
    ContractAmended,
    ContractSigned,
    Envelope,
    FundAllocated,
    FundReturned,
    FundTransferred,
    PaymentDisbursed,
    ProcurementAwarded,
    ProjectAccepted,
    ProjectApproved,
    ProjectSettled,
    RelationDeclared,
    VendorDebarred,
    VendorRegistered,
)
from ..types import NEGATIVE_LIST, TENDER_METHODS, Level, PaymentKind, ProcurementMethod
from .plan import (
    AMENDMENT_BPS,
    BUDGET_OVERRUN_BPS,
    MIN_BIDS,
    MIN_TENDER_DAYS,
    NEW_VENDOR_DAYS,
    PERSONAL_THRESHOLD,
    PLATFORM_THRESHOLD,
    PREPAY_BPS,
    RETENTION_BPS,
    SIMILAR_BPS,
    SIMILAR_DAYS,
    SPLIT_DAYS,
    TENDER_THRESHOLD,
)

PASS_DOWN_DAYS: int = parameters("audit.idle_funds")["pass_down_days"]
SPEND_DAYS: int = parameters("audit.idle_funds")["spend_days"]
WARRANTY_DAYS: int = parameters("housing.retention_below_warranty")["warranty_days"]
BACKDATING_TOLERANCE_DAYS: int = parameters("audit.backdated_entry")["tolerance_days"]
_CHINA = timedelta(hours=8)  # Asia/Shanghai, UTC+8 all year since 1991


def _china_day(at: datetime) -> date:
    return (at + _CHINA).date()
COMPETITIVE = frozenset({ProcurementMethod.OPEN_TENDER, ProcurementMethod.INVITATION, ProcurementMethod.NEGOTIATION,
                         ProcurementMethod.INQUIRY})

Hit = tuple[str, uuid.UUID]


@dataclass
class _Position:
    received: int = 0
    out: int = 0


@dataclass
class _Project:
    approved: bool = False
    accepted: bool = False
    accepted_progress: int = 0
    accepted_at: datetime | None = None
    settled: bool = False
    closed: bool = False
    budget: int = 0
    contracted: int = 0
    official: str | None = None


@dataclass
class _Contract:
    signed: bool = False
    amount: int = 0
    amendments: int = 0
    approved: int = 0
    paid: int = 0
    prepaid: int = 0


@dataclass
class Oracle:
    """Feed events in order with `feed`; read `hits` (call `close()` at the end for pending timers)."""

    hits: list[Hit] = field(default_factory=list)
    positions: dict[tuple[str, str, str], _Position] = field(default_factory=dict)
    purpose: dict[str, str] = field(default_factory=dict)
    projects: dict[str, _Project] = field(default_factory=dict)
    contracts: dict[str, _Contract] = field(default_factory=dict)
    contract_project: dict[str, str] = field(default_factory=dict)
    invoices: dict[str, list[str]] = field(default_factory=dict)
    pay_window: dict[str, list[tuple[datetime, int]]] = field(default_factory=dict)
    award_window: dict[tuple[str, str, str], list[tuple[datetime, int]]] = field(default_factory=dict)
    tender_window: dict[tuple[str, str, str], list[tuple[datetime, int]]] = field(default_factory=dict)
    # Back-dating (catalogue no. 23): contracts and approvals by id -> (dated, recorded, event id).
    entries: dict[tuple[str, str], tuple[datetime, datetime, uuid.UUID]] = field(default_factory=dict)
    backdated: set[uuid.UUID] = field(default_factory=set)
    founded: dict[str, date] = field(default_factory=dict)
    debarred: dict[str, list[tuple[date, date | None]]] = field(default_factory=dict)
    related: dict[str, set[str]] = field(default_factory=dict)
    timers: list[tuple[datetime, int, tuple[str, str, str], uuid.UUID]] = field(default_factory=list)
    timed: set[tuple[str, str, str]] = field(default_factory=set)
    watermark: datetime | None = None

    def _pos(self, fund: str, level: Level, region: str) -> _Position:
        return self.positions.setdefault((fund, level.value, region), _Position())

    def _hit(self, rule_id: str, event: Envelope) -> None:
        self.hits.append((rule_id, event.event_id))

    def _receive(self, event: Envelope, fund: str, level: Level, region: str, amount: int, start_timer: bool) -> None:
        self._pos(fund, level, region).received += amount
        key = (fund, level.value, region)
        if start_timer and key not in self.timed:
            # One timer per position, started by its first receipt (as the compliance timers are).
            days = PASS_DOWN_DAYS if level in (Level.PROVINCE, Level.CITY, Level.COUNTY) else SPEND_DAYS
            self.timed.add(key)
            due = event.occurred_at + timedelta(days=days)
            heapq.heappush(self.timers, (due, len(self.timed), key, event.event_id))

    def _fire(self, until: datetime) -> None:
        while self.timers and self.timers[0][0] <= until:
            _, _, key, trigger = heapq.heappop(self.timers)
            pos = self.positions[key]
            if pos.received > 0 and pos.out == 0:
                self.hits.append(("audit.idle_funds", trigger))

    def _depends(self, kind: str, key: str | None, event: Envelope) -> None:
        """An event that needs an entry (a contract, an approval) made while the entry was not yet recorded."""
        entry = self.entries.get((kind, key or ""))
        if entry is None or entry[2] in self.backdated or event.occurred_at < entry[0]:
            return
        if (_china_day(entry[1]) - _china_day(event.occurred_at)).days > BACKDATING_TOLERANCE_DAYS:
            self.backdated.add(entry[2])
            self.hits.append(("audit.backdated_entry", entry[2]))

    def _debarred_on(self, vendor: str | None, on: date) -> bool:
        spans = self.debarred.get(vendor or "", ())
        return any(start <= on and (until is None or on <= until) for start, until in spans)

    def feed(self, event: Envelope) -> None:
        """Apply one event: evaluate the rules that read it, then update the state."""
        if self.watermark is None or event.occurred_at > self.watermark:
            self.watermark = event.occurred_at
            self._fire(self.watermark)
        on = event.occurred_at.date()
        match event:
            case VendorRegistered():
                self.founded[event.vendor_id] = event.founded_on
            case VendorDebarred():
                self.debarred.setdefault(event.vendor_id, []).append((event.debarred_from, event.debarred_until))
            case RelationDeclared():
                self.related.setdefault(event.vendor_id, set()).add(event.official_id)
            case FundAllocated():
                self.purpose.setdefault(event.fund_doc_no, event.purpose_category.value)
                origin = self._pos(event.fund_doc_no, event.level, event.region_code)
                origin.received += event.amount_fen
                origin.out += event.amount_fen
                self._receive(event, event.fund_doc_no, event.recipient_level, event.recipient_region_code,
                              event.amount_fen, True)
            case FundTransferred():
                pos = self._pos(event.fund_doc_no, event.level, event.region_code)
                pos.out += event.amount_fen
                if pos.out > pos.received:
                    self._hit("audit.transfer_exceeds_received", event)
                self._receive(event, event.fund_doc_no, event.to_level, event.to_region_code, event.amount_fen, True)
            case FundReturned():
                self._pos(event.fund_doc_no, event.level, event.region_code).out += event.amount_fen
                self._receive(event, event.fund_doc_no, event.to_level, event.to_region_code, event.amount_fen, False)
            case ProjectApproved():
                self._approved(event)
            case ProcurementAwarded():
                self._awarded(event, on)
            case ContractSigned():
                self.entries[("contract", event.contract_id)] = (event.occurred_at, event.published_at, event.event_id)
                self._depends("project", event.project_id, event)
                project = self.projects.get(event.project_id)
                if project is None or not project.approved:
                    self._hit("development.contract_before_approval", event)
                if self._debarred_on(event.vendor_id, on):
                    self._hit("discipline.debarred_vendor", event)
                c = self.contracts.setdefault(event.contract_id, _Contract())
                old = c.amount + c.approved
                c.signed, c.amount = True, event.amount_fen
                self.contract_project[event.contract_id] = event.project_id
                project = self.projects.setdefault(event.project_id, _Project())
                project.contracted += c.amount + c.approved - old
                if project.approved and project.contracted * 10_000 > project.budget * (10_000 + BUDGET_OVERRUN_BPS):
                    self._hit("development.contract_exceeds_budget", event)
            case ContractAmended():
                c = self.contracts.setdefault(event.contract_id, _Contract())
                c.amendments += event.delta_fen
                if event.approved:
                    c.approved += event.delta_fen
                    self.projects.setdefault(event.project_id, _Project()).contracted += event.delta_fen
                if c.signed and c.amendments * 10_000 > c.amount * AMENDMENT_BPS:
                    self._hit("finance.amendment_share", event)
            case PaymentDisbursed():
                self._paid(event, on)
            case ProjectAccepted():
                p = self.projects.setdefault(event.project_id, _Project())
                if event.passed:
                    p.accepted = True
                    p.accepted_at = p.accepted_at or event.occurred_at
                    p.accepted_progress = max(p.accepted_progress, event.progress_bps)
            case BudgetAdjusted():
                self.projects.setdefault(event.project_id, _Project()).budget = event.new_budget_fen
            case ProjectSettled():
                p = self.projects.setdefault(event.project_id, _Project())
                p.settled = True
                p.closed = p.closed or event.closed

    def _approved(self, event: ProjectApproved) -> None:
        purpose = self.purpose.get(event.fund_doc_no)
        if purpose is not None and event.category.value != purpose:
            self._hit("agriculture.category_mismatch", event)
        if event.category in NEGATIVE_LIST:
            self._hit("agriculture.negative_list", event)
        if event.procurement_category.value == "construction" and event.land_use_approval_ref is None:
            self._hit("natural_resources.no_land_use_approval", event)
        p = self.projects.setdefault(event.project_id, _Project())
        p.approved, p.budget, p.official = True, event.budget_fen, event.approving_official_id
        self.entries[("project", event.project_id)] = (event.occurred_at, event.published_at, event.event_id)

    def _awarded(self, event: ProcurementAwarded, on: date) -> None:
        self._depends("project", event.project_id, event)
        amount = event.amount_fen
        threshold = TENDER_THRESHOLD[event.procurement_category]
        if event.method not in TENDER_METHODS and amount < threshold:
            key = (event.owner_unit, event.winner_vendor_id, event.procurement_category.value)
            window = self.tender_window.setdefault(key, [])
            near = [a for t, a in window if abs(t - event.occurred_at) <= timedelta(days=SPLIT_DAYS)]
            if near and sum(near) + amount >= threshold:
                self._hit("trading.split_tender", event)
            window.append((event.occurred_at, amount))
        if event.method not in TENDER_METHODS and amount >= TENDER_THRESHOLD[event.procurement_category]:
            self._hit("trading.tender_threshold", event)
        if amount < PLATFORM_THRESHOLD:
            key = (event.owner_unit, event.winner_vendor_id, event.procurement_category.value)
            window = self.award_window.setdefault(key, [])
            near = [a for t, a in window if abs(t - event.occurred_at) <= timedelta(days=SPLIT_DAYS)]
            if len(near) + 1 >= 2 and sum(near) + amount >= PLATFORM_THRESHOLD:
                self._hit("trading.split_purchase", event)
            window.append((event.occurred_at, amount))
        if amount >= PLATFORM_THRESHOLD and event.platform_ref is None:
            self._hit("trading.platform_required", event)
        if event.method in COMPETITIVE and len(event.bidders) < MIN_BIDS:
            self._hit("development.insufficient_bids", event)
        if (event.method in TENDER_METHODS and event.tender_published_on and event.bids_opened_on
                and (event.bids_opened_on - event.tender_published_on).days < MIN_TENDER_DAYS):
            self._hit("development.short_tender_period", event)
        project = self.projects.get(event.project_id)
        officials = self.related.get(event.winner_vendor_id, set())
        if event.approving_official_id in officials or (project is not None and project.official in officials):
            self._hit("inspection.related_vendor", event)
        if self._debarred_on(event.winner_vendor_id, on):
            self._hit("discipline.debarred_vendor", event)
        founded = self.founded.get(event.winner_vendor_id)
        if founded is not None and (on - founded).days < NEW_VENDOR_DAYS:
            self._hit("discipline.new_vendor", event)
        seen: dict[str, set[str]] = {}
        for b in event.bidders:
            for attr in (b.legal_rep_id, b.phone, b.bank_account, b.address):
                seen.setdefault(attr, set()).add(b.vendor_id)
        if any(len(v) > 1 for v in seen.values()):
            self._hit("discipline.bidder_collusion", event)

    def _paid(self, event: PaymentDisbursed, on: date) -> None:
        self._depends("contract", event.contract_id, event)
        self._depends("project", event.project_id, event)
        project = self.projects.get(event.project_id) if event.project_id else None
        contract = self.contracts.get(event.contract_id) if event.contract_id else None
        if project is None or not project.approved or contract is None or not contract.signed:
            self._hit("finance.payment_without_approval_or_contract", event)
        if event.payment_kind is PaymentKind.FINAL and (project is None or not project.accepted):
            self._hit("housing.final_without_acceptance", event)
        if project is not None and (project.closed or (project.settled and event.payment_kind in (
                PaymentKind.PREPAYMENT, PaymentKind.PROGRESS))):
            self._hit("audit.payment_after_settlement", event)
        if any(p != event.payment_id for p in self.invoices.get(event.invoice_no, ())):
            self._hit("finance.duplicate_invoice", event)
        self.invoices.setdefault(event.invoice_no, []).append(event.payment_id)
        window = self.pay_window.setdefault(event.payee_account, [])
        similar = [a for t, a in window if abs(t - event.occurred_at) <= timedelta(days=SIMILAR_DAYS)
                   and abs(a - event.amount_fen) * 10_000 <= event.amount_fen * SIMILAR_BPS]
        if similar:
            self._hit("finance.similar_payment_review", event)
        window.append((event.occurred_at, event.amount_fen))
        if event.project_id and event.account_kind.value == "personal" and event.amount_fen > PERSONAL_THRESHOLD:
            self._hit("finance.personal_account_payment", event)
        if event.handler_id == event.approver_id:
            self._hit("inspection.same_handler_approver", event)
        if event.approver_id in self.related.get(event.payee_vendor_id or "", set()):
            self._hit("inspection.related_vendor", event)
        if self._debarred_on(event.payee_vendor_id, on):
            self._hit("discipline.debarred_vendor", event)
        pos = self._pos(event.fund_doc_no, event.level, event.region_code)
        pos.out += event.amount_fen
        if pos.out > pos.received:
            self._hit("audit.paid_exceeds_received", event)
        if event.project_id:
            self.projects.setdefault(event.project_id, _Project())
        if event.contract_id:
            c = self.contracts.setdefault(event.contract_id, _Contract())
            c.paid += event.amount_fen
            if event.payment_kind is PaymentKind.PREPAYMENT:
                c.prepaid += event.amount_fen
            p = self.projects.get(event.project_id or "")
            total = c.amount + c.approved
            # The amount rules judge only against a contract signed by then (a payment before its
            # contract is rule 1 alone).
            if c.signed and c.paid > total:
                self._hit("finance.paid_exceeds_contract", event)
            if (c.signed and event.payment_kind is PaymentKind.PREPAYMENT
                    and (p is None or (not p.accepted and p.accepted_progress == 0))
                    and c.prepaid * 10_000 > c.amount * PREPAY_BPS):
                self._hit("housing.prepayment_share", event)
            if (c.signed and event.payment_kind is not PaymentKind.PREPAYMENT
                    and c.paid * 10_000 > total * (10_000 - RETENTION_BPS)
                    and (p is None or p.accepted_at is None
                         or (event.occurred_at - p.accepted_at).days < WARRANTY_DAYS)):
                self._hit("housing.retention_below_warranty", event)

    def close(self) -> list[Hit]:
        """Fire the timers the last event time has reached and return every hit."""
        if self.watermark is not None:
            self._fire(self.watermark)
        return self.hits


def check(events: Iterable[Envelope]) -> list[Hit]:
    """Every (rule id, triggering event id) the reference reading finds in a time-ordered stream."""
    oracle = Oracle()
    for event in events:
        oracle.feed(event)
    return oracle.close()
