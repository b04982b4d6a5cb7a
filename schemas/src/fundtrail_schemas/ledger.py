"""The fund ledger: pure state transitions from accepted events (no Kafka, no SQL).

In the contract package because two services run it: fund-tracker applies events with it, and the
gateway's audit replays the trail's leaves through it to redo the arithmetic (services never import
each other).

Order independence: every figure is a sum, a count, a min or max of event times, or a flag that
only ever turns on, so it does not depend on arrival order. Descriptive attributes that a later
event may replace (a project's budget, a settlement amount, a fund's purpose) are last-writer-wins
registers ordered by business time: the event with the greatest (occurred_at, rank, event_id)
wins wherever it arrives, and `provenance` remembers which event that was.

Money flow per fund and position (level + region):
- FundAllocated: the allocating position receives and passes down the amount (it is the origin),
  the recipient position receives it, the fund's allocated total grows.
- FundTransferred: the sender passes down, the receiver receives.
- FundReturned: the sender returns, the receiver receives.
- PaymentDisbursed: the paying position, the project, the contract and the payee vendor pay.
- ContractSigned / ContractAmended: the contract value is the signed amount plus approved
  amendments; its change is added to the event's position and the project as `contracted_fen`.
So the sum of all balances of a fund is allocated − paid (conservation across levels).

Each event type a bureau may publish has exactly one handler, registered with `@handles`;
`missing_handlers` lists the registry's types that lack one (a test asserts there are none), and
`apply` refuses an event of such a type rather than ignore it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from .enriched import LedgerState
from .events import (
    BudgetAdjusted,
    ContractAmended,
    ContractSigned,
    Envelope,
    FundAllocated,
    FundEventBase,
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
from .eventspec import SPECS, EventSpec, contract_of, counterparty_of, vendor_of
from .ledger_state import Contract, Fund, Position, Project, Vendor, dumps
from .types import Level, PaymentKind

PositionKey = tuple[str, str, str]
"""(fund_doc_no, level, region_code)."""

# Enum `.value` is a slow descriptor; position keys are built for every event.
_LEVEL = {lv: lv.value for lv in Level}

# A provenance key: ISO-8601 UTC occurred_at with microseconds, a rank, the event id. Lists so
# they round-trip through JSON unchanged; ordered lexicographically.
ProvKey = list[str]


def prov_key(event: Envelope, rank: int = 0) -> ProvKey:
    """Business-time order key of an event (greater wins a last-writer-wins register)."""
    at = event.occurred_at.astimezone(UTC).isoformat(timespec="microseconds")
    return [at, str(rank), str(event.event_id)]


def _min_time(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def _max_time(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current


@dataclass
class FundRecord:
    """A fund plus the attributes the contract state does not carry."""

    state: Fund
    title: str | None = None
    region_code: str | None = None
    provenance: dict[str, ProvKey] = field(default_factory=dict)


@dataclass
class ProjectRecord:
    state: Project
    fund_doc_no: str | None = None
    settlement_amount_fen: int | None = None
    provenance: dict[str, ProvKey] = field(default_factory=dict)


@dataclass
class ContractRecord:
    state: Contract
    project_id: str | None = None
    fund_doc_no: str | None = None


@dataclass(frozen=True)
class PaymentRecord:
    payment_id: str
    event_id: str
    fund_doc_no: str
    project_id: str | None
    contract_id: str | None
    payee_vendor_id: str | None
    invoice_no: str
    amount_fen: int
    region_code: str
    paid_at: datetime


@dataclass(frozen=True, slots=True)
class Transition:
    """The ledger slice an event touched, before and after it, as `LedgerState` JSON.

    JSON because that is what gets stored and sent, and because serializing the live rows is a
    snapshot that costs less than copying them.
    """

    before_json: bytes
    after_json: bytes

    @property
    def before(self) -> LedgerState:
        return LedgerState.model_validate_json(self.before_json)

    @property
    def after(self) -> LedgerState:
        return LedgerState.model_validate_json(self.after_json)


@dataclass(frozen=True)
class LedgerKeys:
    """Which rows a set of events touches (what an adapter must load)."""

    funds: frozenset[str] = frozenset()
    positions: frozenset[PositionKey] = frozenset()
    projects: frozenset[str] = frozenset()
    contracts: frozenset[str] = frozenset()
    vendors: frozenset[str] = frozenset()
    invoices: frozenset[str] = frozenset()


def counterparty_key(event: Envelope) -> PositionKey | None:
    """The receiving position of an allocation, transfer or return (the registry's `counterparty`)."""
    cp = counterparty_of(event)
    if cp is None or not isinstance(event, FundEventBase):
        return None
    return (event.fund_doc_no, _LEVEL[cp[0]], cp[1])


# The event-type registry says which field holds an event's contract and vendor.
contract_id_of = contract_of
vendor_id_of = vendor_of


def keys_of(events: Iterable[Envelope]) -> LedgerKeys:
    """Every row the events read or write."""
    funds: set[str] = set()
    positions: set[PositionKey] = set()
    projects: set[str] = set()
    contracts: set[str] = set()
    vendors: set[str] = set()
    invoices: set[str] = set()
    for ev in events:
        if isinstance(ev, FundEventBase):
            funds.add(ev.fund_doc_no)
            positions.add((ev.fund_doc_no, _LEVEL[ev.level], ev.region_code))
            cp = counterparty_key(ev)
            if cp:
                positions.add(cp)
        if ev.project_id:
            projects.add(ev.project_id)
        cid = contract_id_of(ev)
        if cid:
            contracts.add(cid)
        vid = vendor_id_of(ev)
        if vid:
            vendors.add(vid)
        if isinstance(ev, PaymentDisbursed):
            invoices.add(ev.invoice_no)
    return LedgerKeys(
        frozenset(funds), frozenset(positions), frozenset(projects), frozenset(contracts),
        frozenset(vendors), frozenset(invoices),
    )


def contract_value(contract: Contract) -> int:
    """What a contract is worth now: the signed amount plus approved amendments."""
    return (contract.amount_fen if contract.signed else 0) + contract.approved_amendments_fen


class UnhandledEventType(LookupError):
    """`Ledger.apply` got an event type no handler is registered for."""


_Handler = TypeVar("_Handler", bound=Callable[..., None])
# Event model -> the Ledger method applying it; filled by @handles as the class body runs.
_HANDLERS: dict[type[Envelope], Callable[[Ledger, Any], None]] = {}


def handles(*models: type[Envelope]) -> Callable[[_Handler], _Handler]:
    """Register a Ledger method as the transition of `models` (one handler per type)."""
    def register(fn: _Handler) -> _Handler:
        for model in models:
            if model in _HANDLERS:
                raise ValueError(f"{model.__name__} has two ledger handlers")
            _HANDLERS[model] = fn
        return fn
    return register


@dataclass
class Ledger:
    """A slice of the ledger in memory. `apply` mutates it and records which rows changed."""

    funds: dict[str, FundRecord] = field(default_factory=dict)
    positions: dict[PositionKey, Position] = field(default_factory=dict)
    projects: dict[str, ProjectRecord] = field(default_factory=dict)
    contracts: dict[str, ContractRecord] = field(default_factory=dict)
    vendors: dict[str, Vendor] = field(default_factory=dict)
    invoices: dict[str, list[str]] = field(default_factory=dict)
    new_payments: list[PaymentRecord] = field(default_factory=list)
    dirty_funds: set[str] = field(default_factory=set)
    dirty_positions: set[PositionKey] = field(default_factory=set)
    dirty_projects: set[str] = field(default_factory=set)
    dirty_contracts: set[str] = field(default_factory=set)
    dirty_vendors: set[str] = field(default_factory=set)

    # ------------------------------------------------------------------ reading

    def fund_known(self, fund_doc_no: str) -> bool:
        """True once an allocation of the fund has been recorded."""
        rec = self.funds.get(fund_doc_no)
        return rec is not None and rec.state.known

    def _slice(self, event: Envelope) -> tuple[Any, ...]:
        # (fund, position, counterparty, project, contract, vendor, other payments with the invoice)
        fund = pos = cp = None
        if isinstance(event, FundEventBase):
            frec = self.funds.get(event.fund_doc_no)
            fund = frec.state if frec else None
            pos = self.positions.get((event.fund_doc_no, _LEVEL[event.level], event.region_code))
            cpk = counterparty_key(event)
            cp = self.positions.get(cpk) if cpk else None
        prec = self.projects.get(event.project_id) if event.project_id else None
        cid = contract_id_of(event)
        crec = self.contracts.get(cid) if cid else None
        vid = vendor_id_of(event)
        invoice_ids: list[str] = []
        if isinstance(event, PaymentDisbursed):
            invoice_ids = [p for p in self.invoices.get(event.invoice_no, ()) if p != event.payment_id]
        return (fund, pos, cp, prec.state if prec else None, crec.state if crec else None,
                self.vendors.get(vid) if vid else None, invoice_ids)

    def view(self, event: Envelope) -> LedgerState:
        """A copy of the slice `event` touches (absent rows are None)."""
        return LedgerState.model_validate_json(self.view_json(event))

    def view_json(self, event: Envelope) -> bytes:
        """The slice `event` touches as `LedgerState` JSON: a snapshot later changes do not affect."""
        fund, pos, cp, project, contract, vendor, invoice_ids = self._slice(event)
        return dumps({
            "fund": fund, "position": pos, "counterparty": cp, "project": project, "contract": contract,
            "vendor": vendor, "invoice_payment_ids": invoice_ids,
        })

    # ------------------------------------------------------------------ row access

    def _position(self, key: PositionKey) -> Position:
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = Position(key[0], Level(key[1]), key[2])
        self.dirty_positions.add(key)
        return pos

    def _project(self, project_id: str, fund_doc_no: str | None) -> ProjectRecord:
        rec = self.projects.get(project_id)
        if rec is None:
            rec = self.projects[project_id] = ProjectRecord(Project(project_id))
        if rec.fund_doc_no is None and fund_doc_no:
            rec.fund_doc_no = fund_doc_no
        self.dirty_projects.add(project_id)
        return rec

    def _contract(self, contract_id: str, project_id: str | None, fund_doc_no: str | None) -> ContractRecord:
        rec = self.contracts.get(contract_id)
        if rec is None:
            rec = self.contracts[contract_id] = ContractRecord(Contract(contract_id))
        if rec.project_id is None and project_id:
            rec.project_id = project_id
        if rec.fund_doc_no is None and fund_doc_no:
            rec.fund_doc_no = fund_doc_no
        self.dirty_contracts.add(contract_id)
        return rec

    def _vendor(self, vendor_id: str) -> Vendor:
        v = self.vendors.get(vendor_id)
        if v is None:
            v = self.vendors[vendor_id] = Vendor(vendor_id)
        self.dirty_vendors.add(vendor_id)
        return v

    # ------------------------------------------------------------------ transitions

    def apply(self, event: Envelope) -> Transition:
        """Apply one accepted event; return the touched slice before and after."""
        handler = _HANDLERS.get(type(event))
        if handler is None:
            # A type the ledger does not know would silently change nothing: refuse it instead
            # (the completeness test, `missing_handlers`, catches this before it ships).
            raise UnhandledEventType(f"no ledger handler for {event.event_type}: register one with @handles")
        before = self.view_json(event)
        handler(self, event)
        return Transition(before, self.view_json(event))

    @handles(VendorRegistered, VendorDebarred, RelationDeclared)
    def _reference(self, ev: Envelope) -> None:
        """Reference data moves no money: compliance keeps the vendor registry (its `core/reference.py`)."""

    @handles(FundAllocated)
    def _allocated(self, ev: FundAllocated) -> None:
        rec = self.funds.get(ev.fund_doc_no)
        if rec is None:
            rec = self.funds[ev.fund_doc_no] = FundRecord(Fund(ev.fund_doc_no))
        self.dirty_funds.add(ev.fund_doc_no)
        st = rec.state
        st.known = True
        st.allocated_fen += ev.amount_fen
        st.allocated_at = _min_time(st.allocated_at, ev.occurred_at)
        # The earliest allocation document defines what the fund is for.
        key = prov_key(ev)
        current = rec.provenance.get("attrs")
        if current is None or key < current:
            rec.provenance["attrs"] = key
            st.purpose_category = ev.purpose_category
            st.deadline = ev.deadline
            rec.title = ev.title
            rec.region_code = ev.region_code
        origin = self._position((ev.fund_doc_no, _LEVEL[ev.level], ev.region_code))
        origin.received_fen += ev.amount_fen
        origin.passed_down_fen += ev.amount_fen
        origin.first_received_at = _min_time(origin.first_received_at, ev.occurred_at)
        origin.last_outflow_at = _max_time(origin.last_outflow_at, ev.occurred_at)
        self._receive(ev)

    def _receive(self, ev: FundAllocated | FundTransferred | FundReturned) -> None:
        key = counterparty_key(ev)
        if key is None:
            raise UnhandledEventType(f"{ev.event_type} names no counterparty in the event-type registry")
        pos = self._position(key)
        pos.received_fen += ev.amount_fen
        pos.first_received_at = _min_time(pos.first_received_at, ev.occurred_at)

    def _own(self, ev: FundEventBase) -> Position:
        return self._position((ev.fund_doc_no, _LEVEL[ev.level], ev.region_code))

    @handles(FundTransferred)
    def _transferred(self, ev: FundTransferred) -> None:
        pos = self._own(ev)
        pos.passed_down_fen += ev.amount_fen
        pos.last_outflow_at = _max_time(pos.last_outflow_at, ev.occurred_at)
        self._receive(ev)

    @handles(FundReturned)
    def _returned(self, ev: FundReturned) -> None:
        pos = self._own(ev)
        pos.returned_fen += ev.amount_fen
        pos.last_outflow_at = _max_time(pos.last_outflow_at, ev.occurred_at)
        self._receive(ev)

    @handles(ProjectApproved)
    def _approved(self, ev: ProjectApproved) -> None:
        rec = self._project(ev.project_id, ev.fund_doc_no)
        st = rec.state
        st.approved = True
        st.approved_at = _min_time(st.approved_at, ev.occurred_at)
        key = prov_key(ev)
        current = rec.provenance.get("approval")
        if current is None or key > current:
            rec.provenance["approval"] = key
            st.region_code = ev.region_code
            st.owner_unit = ev.owner_unit
            st.category = ev.category
            st.procurement_category = ev.procurement_category
            st.land_use_approval_ref = ev.land_use_approval_ref
            st.approving_official_id = ev.approving_official_id
        self._set_budget(rec, prov_key(ev, rank=0), ev.budget_fen)

    @handles(BudgetAdjusted)
    def _budget_adjusted(self, ev: BudgetAdjusted) -> None:
        rec = self._project(ev.project_id, ev.fund_doc_no)
        # rank 1: an adjustment dated the same instant as the approval still supersedes it.
        self._set_budget(rec, prov_key(ev, rank=1), ev.new_budget_fen)

    @staticmethod
    def _set_budget(rec: ProjectRecord, key: ProvKey, budget_fen: int) -> None:
        current = rec.provenance.get("budget")
        if current is None or key > current:
            rec.provenance["budget"] = key
            rec.state.budget_fen = budget_fen

    @handles(ProcurementAwarded)
    def _awarded(self, ev: ProcurementAwarded) -> None:
        prj = self._project(ev.project_id, ev.fund_doc_no).state
        prj.awards_count += 1
        prj.awarded_fen += ev.amount_fen
        vendor = self._vendor(ev.winner_vendor_id)
        vendor.awards_count += 1
        vendor.awarded_fen += ev.amount_fen

    def _contract_changed(self, ev: ContractSigned | ContractAmended, rec: ContractRecord, old_value: int) -> None:
        delta = contract_value(rec.state) - old_value
        if delta:
            self._own(ev).contracted_fen += delta
            self._project(ev.project_id, ev.fund_doc_no).state.contracted_fen += delta

    @handles(ContractSigned)
    def _signed(self, ev: ContractSigned) -> None:
        rec = self._contract(ev.contract_id, ev.project_id, ev.fund_doc_no)
        st = rec.state
        old_value = contract_value(st)
        st.signed = True
        st.signed_at = _min_time(st.signed_at, ev.occurred_at)
        st.vendor_id = ev.vendor_id
        st.amount_fen = ev.amount_fen
        st.retention_share_bps = ev.retention_share_bps
        self._contract_changed(ev, rec, old_value)

    @handles(ContractAmended)
    def _amended(self, ev: ContractAmended) -> None:
        rec = self._contract(ev.contract_id, ev.project_id, ev.fund_doc_no)
        st = rec.state
        old_value = contract_value(st)
        st.amendments_fen += ev.delta_fen
        if ev.approved:
            st.approved_amendments_fen += ev.delta_fen
        self._contract_changed(ev, rec, old_value)

    @handles(PaymentDisbursed)
    def _paid(self, ev: PaymentDisbursed) -> None:
        pos = self._own(ev)
        pos.paid_fen += ev.amount_fen
        pos.last_outflow_at = _max_time(pos.last_outflow_at, ev.occurred_at)
        if ev.project_id:
            self._project(ev.project_id, ev.fund_doc_no).state.paid_fen += ev.amount_fen
        if ev.contract_id:
            c = self._contract(ev.contract_id, ev.project_id, ev.fund_doc_no).state
            c.paid_fen += ev.amount_fen
            c.payments_count += 1
            if ev.payment_kind is PaymentKind.PREPAYMENT:
                c.prepaid_fen += ev.amount_fen
        if ev.payee_vendor_id:
            self._vendor(ev.payee_vendor_id).paid_fen += ev.amount_fen
        ids = self.invoices.setdefault(ev.invoice_no, [])
        if ev.payment_id not in ids:
            ids.append(ev.payment_id)
            ids.sort()
        self.new_payments.append(
            PaymentRecord(
                payment_id=ev.payment_id,
                event_id=str(ev.event_id),
                fund_doc_no=ev.fund_doc_no,
                project_id=ev.project_id,
                contract_id=ev.contract_id,
                payee_vendor_id=ev.payee_vendor_id,
                invoice_no=ev.invoice_no,
                amount_fen=ev.amount_fen,
                region_code=ev.region_code,
                paid_at=ev.occurred_at,
            )
        )

    @handles(ProjectAccepted)
    def _accepted(self, ev: ProjectAccepted) -> None:
        st = self._project(ev.project_id, ev.fund_doc_no).state
        if ev.passed:
            st.accepted = True
            st.accepted_at = _min_time(st.accepted_at, ev.occurred_at)
            st.accepted_progress_bps = max(st.accepted_progress_bps, ev.progress_bps)

    @handles(ProjectSettled)
    def _settled(self, ev: ProjectSettled) -> None:
        rec = self._project(ev.project_id, ev.fund_doc_no)
        st = rec.state
        st.settled = True
        st.settled_at = _min_time(st.settled_at, ev.occurred_at)
        st.closed = st.closed or ev.closed
        key = prov_key(ev)
        current = rec.provenance.get("settlement")
        if current is None or key > current:
            rec.provenance["settlement"] = key
            rec.settlement_amount_fen = ev.settlement_amount_fen


def missing_handlers(specs: Iterable[EventSpec] = SPECS.values()) -> list[str]:
    """The types bureaus may publish that have no ledger handler (the completeness test wants none)."""
    return [s.name for s in specs if s.bureau and s.model not in _HANDLERS]
