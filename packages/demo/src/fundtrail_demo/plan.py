"""The planning engine: funds, projects and money flows as compact items, built into events on emission.

A fund is planned in one go (its projects, then the transfers that feed their payments, then the
allocations that feed the transfers) into a list of `Item`s; `Context` holds what funds share: the
vendor pool and the registries that keep clean data clean (no accidental similar payments, no
accidental split purchases). Funds are planned in the order of their allocation day, so a second
planning pass over the same seed reproduces the same items and ids.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from fundtrail_schemas.catalogue import parameters
from fundtrail_schemas.events import EVENT_TYPES, Bidder, Envelope
from fundtrail_schemas.regions import CITY, Region, counties, region, towns, villages
from fundtrail_schemas.types import (
    AccountKind,
    Category,
    Level,
    PaymentKind,
    ProcurementCategory,
    ProcurementMethod,
)

from . import names

YEAR = 2025
EPOCH = datetime(YEAR, 1, 1, tzinfo=UTC)
HOUR = 60
DAY = 24 * HOUR
# Working hours in Asia/Shanghai (08:30-17:30) expressed in UTC minutes of the day.
WORK_START, WORK_END = 30, 570
# Ordinary lifecycles stop before this day (Dec 23) and year-end returns happen after it.
LAST_WORK_DAY = 356
YEAR_END_DAYS = (357, 362)

# The default rule parameters (the packs' current versions, via the derived catalogue): the demo
# seeds just past them and keeps clean data clear of them.
_P = parameters
TENDER_THRESHOLD = {
    ProcurementCategory.CONSTRUCTION: _P("trading.tender_threshold")["construction_fen"],
    ProcurementCategory.GOODS: _P("trading.tender_threshold")["goods_fen"],
    ProcurementCategory.SERVICES: _P("trading.tender_threshold")["services_fen"],
}
PLATFORM_THRESHOLD: int = _P("trading.platform_required")["threshold_fen"]
RETENTION_BPS: int = _P("housing.retention_below_warranty")["retention_bps"]
MIN_BIDS: int = _P("development.insufficient_bids")["min_bids"]
IDLE_DAYS: int = _P("audit.idle_funds")["pass_down_days"]
SIMILAR_DAYS: int = _P("finance.similar_payment_review")["window_days"]
SIMILAR_BPS: int = _P("finance.similar_payment_review")["tolerance_bps"]
SPLIT_DAYS: int = _P("trading.split_purchase")["window_days"]

# Clean data keeps this far from the review rules (margins over the thresholds above).
_SIMILAR_GUARD_DAYS = SIMILAR_DAYS + 5
_SIMILAR_GUARD_BPS = SIMILAR_BPS * 2
_SPLIT_GUARD_DAYS = SPLIT_DAYS + 10


def cny(yuan: float) -> int:
    """Yuan to fen."""
    return round(yuan * 100)


def day_of(t: int) -> int:
    return t // DAY


def to_datetime(t: int) -> datetime:
    """Plan time (minutes since Jan 1 UTC) to an aware datetime."""
    return EPOCH + timedelta(minutes=t)


def to_date(t: int) -> date:
    return (EPOCH + timedelta(minutes=t)).date()


class Item:
    """One planned event: where, when and its type-specific fields; the event is built on emission."""

    __slots__ = ("bureau", "delay", "etype", "event_id", "fields", "fund", "level", "project", "recorded_late_days",
                 "region", "seq", "t")

    def __init__(
        self,
        t: int,
        seq: int,
        etype: str,
        level: Level,
        region_code: str,
        bureau: str,
        fund: str | None,
        project: str | None,
        fields: dict[str, Any],
    ) -> None:
        self.t, self.seq, self.etype = t, seq, etype
        self.level, self.region, self.bureau = level, region_code, bureau
        self.fund, self.project, self.fields = fund, project, fields
        self.event_id = 0
        self.delay = 0
        self.recorded_late_days = 0  # a back-dated entry (补录): recorded this many days after its date

    def build(self) -> Envelope:
        """The validated contract event."""
        occurred = to_datetime(self.t)
        return EVENT_TYPES[self.etype](
            event_id=uuid.UUID(int=self.event_id, version=4),
            occurred_at=occurred,
            published_at=occurred + timedelta(minutes=self.delay),
            source_bureau=self.bureau,
            level=self.level,
            region_code=self.region,
            fund_doc_no=self.fund,
            project_id=self.project,
            **self.fields,
        )

    @property
    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.event_id, version=4)


def finance_bureau(reg: Region) -> str:
    """Code of the finance bureau publishing for a region (village books are kept by the town)."""
    if reg.level is Level.VILLAGE:
        return f"{reg.code[:9]}-CZS"
    if reg.level is Level.TOWN:
        return f"{reg.code}-CZS"
    return f"{reg.code}-CZJ"


@dataclass(frozen=True)
class Vendor:
    """A company (or, for personal contracts, a person) that can win and be paid."""

    vendor_id: str
    name: str
    legal_rep_id: str
    phone: str
    bank_account: str
    address: str
    founded_on: date
    county_code: str
    personal: bool = False

    @property
    def wage_account(self) -> str:
        return f"{self.bank_account}-W"

    def bidder(self, amount: int) -> Bidder:
        return Bidder(
            vendor_id=self.vendor_id,
            name=self.name,
            legal_rep_id=self.legal_rep_id,
            phone=self.phone,
            bank_account=self.bank_account,
            address=self.address,
            bid_amount_fen=amount,
        )

    def registration(self) -> dict[str, Any]:
        return {
            "vendor_id": self.vendor_id,
            "name": self.name,
            "legal_rep_id": self.legal_rep_id,
            "phone": self.phone,
            "bank_account": self.bank_account,
            "address": self.address,
            "founded_on": self.founded_on,
        }


def make_vendor(index: int, county_code: str, founded_on: date | None = None, **overrides: Any) -> Vendor:
    """The vendor of a global index; every attribute is unique to the index unless overridden."""
    county = region(county_code)
    county_towns = towns(county_code)
    town = county_towns[index % len(county_towns)]
    word, _ = names.industry(index)
    values: dict[str, Any] = {
        "vendor_id": f"9144{county_code[2:6]}MA{index:08X}",
        "name": f"江门市{county.name}{names.trade_name(index)}{word}有限公司"
        if index % 3
        else f"江门{names.trade_name(index)}{word}有限公司",
        "legal_rep_id": f"ID-4407-{index:08d}",
        "phone": f"0750-{3_000_000 + index % 6_000_000:07d}" if index < 6_000_000 else f"1390750{index:08d}",
        "bank_account": f"44{county_code[4:6]}01{index:010d}",
        "address": f"{county.name}{town.name}{names.road(index)}{index + 1}号",
        "founded_on": founded_on or date(2004 + index % 18, 1 + index % 12, 1 + index % 28),
        "county_code": county_code,
    }
    values.update(overrides)
    return Vendor(**values)


@dataclass
class Expect:
    """A seeded violation, resolved to ids once the fund's items are sorted."""

    rule_id: str
    item: Item
    scenario: str
    note: str
    due_t: int | None = None


@dataclass
class Clean:
    """A near-miss that must not trigger the listed rules."""

    scenario: str
    rule_ids: tuple[str, ...]
    items: list[Item]
    note: str


@dataclass
class Context:
    """What all funds of one dataset share."""

    seed: int
    size: float
    per_county: int
    pay_index: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    award_index: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    pruned_day: int = 0

    def pool(self, county_code: str) -> range:
        """Global vendor indices of a county's pool."""
        n = [c.code for c in counties()].index(county_code)
        return range(n * self.per_county, (n + 1) * self.per_county)

    def vendor(self, index: int) -> Vendor:
        return _pool_vendor(index, self.per_county)

    def payment_clash(self, key: str, day: int, amount: int) -> bool:
        """Whether a payment would look like a similar payment of the same payee (with a margin)."""
        for d, a in self.pay_index.get(key, ()):
            if abs(d - day) <= _SIMILAR_GUARD_DAYS and abs(a - amount) * 10_000 <= _SIMILAR_GUARD_BPS * max(a, amount):
                return True
        return False

    def add_payment(self, key: str, day: int, amount: int) -> None:
        self.pay_index.setdefault(key, []).append((day, amount))

    def award_clash(self, owner: str, vendor_id: str, proc: ProcurementCategory, day: int) -> bool:
        """Whether an award would join another award of the same owner, vendor and category in the window."""
        return any(abs(d - day) <= _SPLIT_GUARD_DAYS for d in self.award_index.get((owner, vendor_id, proc), ()))

    def add_award(self, owner: str, vendor_id: str, proc: ProcurementCategory, day: int) -> None:
        self.award_index.setdefault((owner, vendor_id, proc), []).append(day)

    def prune(self, before_day: int) -> None:
        """Forget entries no fund planned from now on can reach (funds are planned by start day)."""
        if before_day - self.pruned_day < 14:
            return
        self.pruned_day = before_day
        limit = before_day - max(_SIMILAR_GUARD_DAYS, _SPLIT_GUARD_DAYS) - 1
        for key in list(self.pay_index):
            kept = [e for e in self.pay_index[key] if e[0] >= limit]
            if kept:
                self.pay_index[key] = kept
            else:
                del self.pay_index[key]
        for akey in list(self.award_index):
            days = [d for d in self.award_index[akey] if d >= limit]
            if days:
                self.award_index[akey] = days
            else:
                del self.award_index[akey]


@lru_cache(maxsize=8192)
def _pool_vendor(index: int, per_county: int) -> Vendor:
    county = counties()[index // per_county]
    return make_vendor(index, county.code)


@dataclass
class Flow:
    """Money leaving a position: a payment or a transfer down."""

    t: int
    amount: int
    item: Item


@dataclass
class CountyOpts:
    """How a county position of a fund is fed and drained."""

    dedicated: bool = False
    buffer_bps: int | None = None  # None: random buffer kept at the county
    deficit: bool = False  # allocation short of the last transfer (rule 3 at county level)
    first_transfer_day: float | None = None  # days after allocation of the first transfer down
    idle_allocation_fen: int = 0  # allocated and never passed down (rule 10)
    over_transfer: list[Item] = field(default_factory=list)
    first_transfer: list[Item] = field(default_factory=list)
    year_end_return: bool | None = None


@dataclass
class PositionOpts:
    """Scenario tweaks of a town or village position."""

    short_last_fen: int = 0  # last tranche received short (rule 2)
    over_last_fen: int = 0  # last transfer down exceeds what was received (rule 3 at town level)
    over_transfer: list[Item] = field(default_factory=list)
    idle_fen: int = 0  # receives once and never spends (rule 10)
    idle_transfer: list[Item] = field(default_factory=list)
    first_lead_days: int = 0  # first money arrives this many days before the first spending
    first_receipt: list[Item] = field(default_factory=list)


@dataclass
class Payee:
    vendor_id: str | None
    name: str
    account: str
    kind: AccountKind


@dataclass
class PayPlan:
    """A planned payment of a project."""

    t: int
    amount: int
    kind: PaymentKind
    account_kind: AccountKind = AccountKind.CORPORATE
    contract: bool = True
    same_person: bool = False
    invoice_of: PayPlan | None = None
    similar_ok: bool = False  # part of a deliberate similar pair: skip the guard between the two
    item: Item | None = None
    invoice: str = ""


@dataclass
class LifecycleOpts:
    """Knobs of the standard project lifecycle (defaults: a clean, ordinary project)."""

    fast: bool = False
    compact: bool = False
    approve_days: tuple[int, int] = (3, 60)
    contract_fen: int | None = None
    with_award: bool | None = None
    method: ProcurementMethod | None = None
    bidders: int | None = None
    tender_days: int | None = None
    platform: bool = True
    land_use: bool | None = None
    prepay_bps: int | None = None
    final_bps: int = 10_000 - RETENTION_BPS
    progress_count: int | None = None
    amend_bps: int = 0
    amend_approved: bool = True
    final_before_acceptance: bool = False
    settle: bool | None = None
    stop_after: str | None = None  # "approval", "award", "contract"
    personal: bool = False
    wage: bool | None = None
    winner: Vendor | None = None
    losers: list[Vendor] | None = None
    owner: str | None = None
    official: str | None = None
    approve_after_contract: bool = False
    vendor_filter: Callable[[Vendor], bool] | None = None
    category: Category | None = None
    progress: list[tuple[int, tuple[int, int]]] | None = None  # explicit (share bps of total, gap days)
    contract_gap: tuple[int, int] | None = None
    split_ok: bool = False  # a deliberate pair of awards to one vendor: skip the split guard
    prepay_gap: tuple[int, int] | None = None


@dataclass
class Lifecycle:
    """What a planned project produced, for scenarios to point at."""

    project: Project
    approval: Item | None = None
    award: Item | None = None
    contract: Item | None = None
    amendment: Item | None = None
    acceptance: Item | None = None
    settlement: Item | None = None
    payments: list[PayPlan] = field(default_factory=list)
    vendor: Vendor | None = None
    award_fen: int = 0
    contract_fen: int = 0


class FundPlanner:
    """Plans one special fund: its projects, the flows that feed them, and its scenarios."""

    def __init__(self, ctx: Context, fund_no: int, doc_no: str, category: Category, start_day: int,
                 county_codes: tuple[str, ...], title: str) -> None:
        self.ctx = ctx
        self.fund_no = fund_no
        self.doc_no = doc_no
        self.category = category
        self.title = title
        self.rng = random.Random(f"{ctx.seed}:fund:{fund_no}")
        self.start = start_day * DAY + 60  # allocation at 09:00 Beijing time
        self.counties = list(county_codes)
        self.items: list[Item] = []
        self.outflows: dict[str, list[Flow]] = {}
        self.county_opts: dict[str, CountyOpts] = {c: CountyOpts() for c in county_codes}
        self.pos_opts: dict[str, PositionOpts] = {}
        self.used_towns: dict[str, bool] = {}  # town code -> exclusive
        self.expected: list[Expect] = []
        self.clean: list[Clean] = []
        self.after_money: list[Callable[[], None]] = []
        self._seq = 0
        self._project_no = 0
        self._invoice_no = 0
        self._payment_no = 0
        self._transfer_no = 0
        self._vendor_no = 0

    # --- bookkeeping ------------------------------------------------------------------------

    def emit(self, t: int, etype: str, reg: Region, project: str | None = None, *, fund: bool = True,
             bureau: str | None = None, **fields: Any) -> Item:
        """Plan one event."""
        self._seq += 1
        item = Item(t, self._seq, etype, reg.level, reg.code, bureau or finance_bureau(reg),
                    self.doc_no if fund else None, project, fields)
        self.items.append(item)
        return item

    def at_day(self, day: int) -> int:
        return day * DAY + self.rng.randint(WORK_START, WORK_END)

    def later(self, t: int, dmin: int, dmax: int) -> int:
        """A time dmin..dmax days after t, during working hours, strictly after t."""
        d = day_of(t) + self.rng.randint(dmin, dmax)
        if d <= day_of(t):
            return t + self.rng.randint(10, 90)
        return self.at_day(d)

    def expect(self, rule_id: str, item: Item | None, scenario: str, note: str, due_t: int | None = None) -> None:
        """Record a seeded violation (the scenario must have planned its triggering event)."""
        if item is None:
            raise RuntimeError(f"fund {self.doc_no}: scenario {scenario} did not plan its triggering event")
        self.expected.append(Expect(rule_id, item, scenario, note, due_t))

    def near_miss(self, scenario: str, rule_ids: tuple[str, ...], items: Sequence[Item | None], note: str) -> None:
        """Record a near-miss and the events that must not trigger its rules."""
        planned = [i for i in items if i is not None]
        if len(planned) != len(items):
            raise RuntimeError(f"fund {self.doc_no}: near-miss {scenario} did not plan all its events")
        self.clean.append(Clean(scenario, rule_ids, planned, note))

    def next_project(self) -> int:
        self._project_no += 1
        return self._project_no

    def invoice(self, reg: Region) -> str:
        self._invoice_no += 1
        return f"26{reg.code[:6]}{self.fund_no:05d}{self._invoice_no:05d}"

    def scenario_vendor(self, county_code: str, founded_on: date | None = None, **overrides: Any) -> Vendor:
        """A vendor outside the pool, for a scenario that needs its own (debarred, related, colluding...)."""
        self._vendor_no += 1
        index = 0x40000000 + self.fund_no * 256 + self._vendor_no
        return make_vendor(index, county_code, founded_on or date(2012, 5, 1 + self._vendor_no % 28), **overrides)

    def register_vendor(self, t: int, vendor: Vendor) -> Item:
        """A VendorRegistered reference event (market regulator, city level)."""
        return self.emit(t, "VendorRegistered", CITY, fund=False, bureau="440700-SCJGJ", **vendor.registration())

    def flow(self, reg: Region, f: Flow) -> None:
        self.outflows.setdefault(reg.code, []).append(f)

    # --- locations ----------------------------------------------------------------------------

    def pick_town(self, county_code: str | None = None, *, exclusive: bool = False) -> Region:
        """A town of the fund's counties; an exclusive one hosts nothing else of this fund."""
        options = [t for c in ([county_code] if county_code else self.counties) for t in towns(c)]
        if exclusive:
            free = [t for t in options if t.code not in self.used_towns]
            if not free and county_code is None:
                # Small counties fill up: use (or open) a plain extra county of this fund.
                plain = [c for c, o in self.county_opts.items() if c not in self.counties and o == CountyOpts(True)]
                free = [t for c in plain for t in towns(c) if t.code not in self.used_towns]
                if not free:
                    extra = self.free_county()
                    free = list(towns(extra)) if extra else []
            if not free:
                raise RuntimeError(f"fund {self.doc_no}: no free town left for an exclusive scenario")
            town = self.rng.choice(free)
            self.used_towns[town.code] = True
            return town
        shared = [t for t in options if not self.used_towns.get(t.code, False)]
        town = self.rng.choice(shared)
        self.used_towns.setdefault(town.code, False)
        return town

    def pick_location(self, county_code: str | None = None, village_share: float = 0.35) -> Region:
        town = self.pick_town(county_code)
        if self.rng.random() < village_share:
            return self.rng.choice(villages(town.code))
        return town

    def free_county(self) -> str | None:
        """A county of Jiangmen this fund does not use yet (for position-level scenarios)."""
        free = [c.code for c in counties() if c.code not in self.county_opts]
        if not free:
            return None
        code = self.rng.choice(free)
        self.county_opts[code] = CountyOpts(dedicated=True)
        return code

    # --- the money layer ----------------------------------------------------------------------

    def _tranches(self, flows: list[Flow], floor: int, first_lead_days: int = 0) -> list[tuple[int, int, int]]:
        """Just-in-time funding: (time, amount, first flow time) transfers that cover the flows."""
        flows = sorted(flows, key=lambda f: f.t)
        if first_lead_days and flows:
            # Only the first flow is funded early; the others are funded just in time as usual.
            t = flows[0].t - first_lead_days * DAY
            if t < floor:
                raise RuntimeError(f"fund {self.doc_no}: cannot fund {first_lead_days} days ahead")
            return [(t, flows[0].amount, flows[0].t), *self._tranches(flows[1:], flows[0].t)]
        out: list[tuple[int, int, int]] = []
        i = 0
        while i < len(flows):
            first = flows[i].t
            amount = 0
            while i < len(flows) and flows[i].t <= first + 20 * DAY:
                amount += flows[i].amount
                i += 1
            t = max(first - self.rng.randint(DAY, 8 * DAY), floor)
            if t >= first:
                t = first - self.rng.randint(20, 60)
            out.append((t, amount, first))
        return out

    def _transfer(self, t: int, src: Region, dst: Region, amount: int) -> Item:
        self._transfer_no += 1
        return self.emit(
            t, "FundTransferred", src, transfer_id=f"XD-{src.code}-{self.fund_no:05d}-{self._transfer_no:04d}",
            amount_fen=amount, to_level=dst.level, to_region_code=dst.code,
        )

    def settle_money(self) -> None:
        """Plan transfers and allocations so every payment is covered just in time."""
        floor_town = self.start + 2 * HOUR
        # Villages are fed by their town.
        town_extra: dict[str, list[Flow]] = {}
        for code in sorted(c for c in self.outflows if len(c) == 12):
            vil = region(code)
            town = region(code[:9])
            opts = self.pos_opts.get(town.code, PositionOpts())
            plan = self._tranches(self.outflows[code], floor_town + DAY)
            for n, (t, amount, _) in enumerate(plan):
                extra = opts.over_last_fen if n == len(plan) - 1 else 0
                item = self._transfer(t, town, vil, amount + extra)
                if extra:
                    opts.over_transfer.append(item)
                town_extra.setdefault(town.code, []).append(Flow(t, amount, item))
        for code, flows in town_extra.items():
            self.outflows.setdefault(code, []).extend(flows)
        # Towns are fed by their county.
        county_flows: dict[str, list[Flow]] = {}
        for code in sorted(c for c in self.outflows if len(c) == 9):
            town = region(code)
            county = region(code[:6])
            opts = self.pos_opts.get(code, PositionOpts())
            plan = self._tranches(self.outflows[code], floor_town, opts.first_lead_days)
            for n, (t, amount, _) in enumerate(plan):
                short = opts.short_last_fen if n == len(plan) - 1 else 0
                item = self._transfer(t, county, town, amount - short)
                if n == 0:
                    opts.first_receipt.append(item)
                county_flows.setdefault(county.code, []).append(Flow(t, amount - short, item))
        for code, opts in self.pos_opts.items():
            if opts.idle_fen:
                town = region(code)
                t = self.later(self.start, 2, 10)
                item = self._transfer(t, region(code[:6]), town, opts.idle_fen)
                opts.idle_transfer.append(item)
                county_flows.setdefault(code[:6], []).append(Flow(t, opts.idle_fen, item))
        # Counties are fed by the city's allocation, and pass their first money down within 30 days.
        for code, copts in sorted(self.county_opts.items()):
            flows = sorted(county_flows.get(code, []), key=lambda f: f.t)
            if flows:
                first = flows[0]
                limit = self.start + 27 * DAY
                if copts.first_transfer_day is not None:
                    first.item.t = first.t = self.start + int(copts.first_transfer_day * DAY)
                elif first.t > limit:
                    first.item.t = first.t = self.start + self.rng.randint(16 * DAY, 26 * DAY)
                copts.first_transfer.append(first.item)
            passed = sum(f.amount for f in flows)
            if copts.idle_allocation_fen:
                amount = copts.idle_allocation_fen
            elif not flows:
                continue
            elif copts.deficit:
                last = max(flows, key=lambda f: f.t)
                amount = passed - last.amount // 3
                copts.over_transfer.append(last.item)
            else:
                bps = copts.buffer_bps if copts.buffer_bps is not None else self.rng.randint(300, 1500)
                amount = -(-passed * (10_000 + bps) // 10_000 // 1_000_000) * 1_000_000 if bps else passed
                if copts.year_end_return is None:
                    copts.year_end_return = self.rng.random() < 0.6
                if copts.year_end_return and amount > passed:
                    t = self.at_day(self.rng.randint(*YEAR_END_DAYS))
                    self._return(t, region(code), amount - passed)
            item = self.emit(
                self.start + self.rng.randint(0, 20), "FundAllocated", CITY, amount_fen=amount,
                purpose_category=self.category, recipient_level=Level.COUNTY, recipient_region_code=code,
                deadline=date(YEAR, 12, 31) if self.fund_no % 3 else date(YEAR + 1, 6, 30), title=self.title,
            )
            if copts.idle_allocation_fen or copts.first_transfer_day is not None:
                copts.first_transfer.insert(0, item)
        for callback in self.after_money:
            callback()

    def _return(self, t: int, county: Region, amount: int) -> Item:
        self._transfer_no += 1
        return self.emit(
            t, "FundReturned", county, return_id=f"TH-{county.code}-{self.fund_no:05d}-{self._transfer_no:04d}",
            amount_fen=amount, to_level=Level.CITY, to_region_code=CITY.code, reason="unused",
        )

    def finish(self) -> None:
        """Sort the items and give them ids and publication delays."""
        self.items.sort(key=lambda i: (i.t, i.seq))
        for item in self.items:
            item.event_id = self.rng.getrandbits(128)
            item.delay = self.rng.randint(1, 90) + item.recorded_late_days * 24 * 60


class Project:
    """One project of a fund and the steps of its lifecycle."""

    def __init__(self, fp: FundPlanner, reg: Region, category: Category, proc: ProcurementCategory, budget: int,
                 *, owner: str | None = None, official: str | None = None, name: str | None = None) -> None:
        self.fp = fp
        self.region = reg
        self.category = category
        self.proc = proc
        self.budget = budget
        self.no = fp.next_project()
        key = f"{fp.fund_no:04d}{self.no:03d}"
        self.key = key
        self.id = f"P-{reg.code}-{YEAR}-{key}"
        town = reg.code[:9]
        self.owner = owner or (f"{reg.code}-CWH" if reg.level is Level.VILLAGE else f"{town}-JSB")
        self.official = official or f"OFF-{town}-{fp.rng.randint(1, 6):02d}"
        self.name = name or names.project_name(fp.rng, reg, category, proc)
        self.contract_id = f"HT-{reg.code}-{YEAR}-{key}-01"
        self.award_id = f"ZB-{YEAR}-{key}"
        self.staff_handler = f"STAFF-{reg.code}-{fp.rng.randint(10, 39)}"
        self.staff_approver = f"STAFF-{reg.code}-0{fp.rng.randint(1, 6)}"

    def emit(self, t: int, etype: str, **fields: Any) -> Item:
        return self.fp.emit(t, etype, self.region, self.id, **fields)

    def approve(self, t: int, *, land_use: bool, category: Category | None = None) -> Item:
        county = region(self.region.code[:6])
        return self.emit(
            t, "ProjectApproved", project_name=self.name, owner_unit=self.owner,
            category=category or self.category, budget_fen=self.budget,
            planned_procurement_method=ProcurementMethod.OPEN_TENDER
            if self.budget >= TENDER_THRESHOLD[self.proc] else ProcurementMethod.NEGOTIATION,
            procurement_category=self.proc,
            approval_doc_no=f"{county.short}{region(self.region.code[:9]).short}府〔{YEAR}〕{self.key}号",
            approving_official_id=self.official,
            land_use_approval_ref=f"{county.short}自然资〔{YEAR}〕用地{self.key}号" if land_use else None,
        )

    def award(self, t: int, *, amount: int, method: ProcurementMethod, winner: Vendor, losers: list[Vendor],
              published: int, opened: int, platform: bool, bidders: list[Bidder] | None = None) -> Item:
        rng = self.fp.rng
        if bidders is None:
            bidders = [winner.bidder(amount)] + [
                v.bidder(amount + amount * rng.randint(50, 1200) // 10_000) for v in losers
            ]
            rng.shuffle(bidders)
        return self.emit(
            t, "ProcurementAwarded", award_id=self.award_id, owner_unit=self.owner, method=method,
            procurement_category=self.proc, amount_fen=amount, winner_vendor_id=winner.vendor_id, bidders=bidders,
            platform_ref=f"JMGGZY-{YEAR}-{self.key}" if platform else None,
            tender_published_on=to_date(published), bids_opened_on=to_date(opened),
            approving_official_id=self.official,
        )

    def sign(self, t: int, vendor: Vendor, amount: int, prepay_bps: int, with_award: bool) -> Item:
        return self.emit(
            t, "ContractSigned", contract_id=self.contract_id, award_id=self.award_id if with_award else None,
            vendor_id=vendor.vendor_id, amount_fen=amount, prepayment_share_bps=prepay_bps,
            retention_share_bps=RETENTION_BPS,
            payment_terms=f"预付{prepay_bps // 100}%，进度款按月，验收后付至97%，留3%质保金",
        )

    def amend(self, t: int, delta: int, approved: bool, n: int = 1) -> Item:
        county = region(self.region.code[:6])
        return self.emit(
            t, "ContractAmended", contract_id=self.contract_id, amendment_id=f"BG-{self.key}-{n:02d}",
            delta_fen=delta, approved=approved,
            approval_doc_no=f"{county.short}府变〔{YEAR}〕{self.key}{n:02d}号" if approved else None,
            reason="增加工程量（设计变更）" if delta > 0 else "核减工程量",
        )

    def pay(self, p: PayPlan, payee: Payee) -> Item:
        handler = self.staff_approver if p.same_person else self.staff_handler
        if not p.invoice:
            p.invoice = p.invoice_of.invoice if p.invoice_of is not None else self.fp.invoice(self.region)
        self.fp._payment_no += 1
        purpose = {
            PaymentKind.PREPAYMENT: "预付款", PaymentKind.PROGRESS: "进度款", PaymentKind.FINAL: "结算款",
            PaymentKind.OTHER: "款项",
        }[p.kind]
        if p.account_kind is AccountKind.WAGE:
            purpose = "农民工工资"
        item = self.emit(
            p.t, "PaymentDisbursed",
            payment_id=f"ZF-{self.region.code}-{self.fp.fund_no:05d}-{self.fp._payment_no:05d}",
            contract_id=self.contract_id if p.contract else None, payee_vendor_id=payee.vendor_id,
            payee_name=payee.name, payee_account=payee.account, account_kind=payee.kind,
            amount_fen=p.amount, invoice_no=p.invoice, payment_kind=p.kind, handler_id=handler,
            approver_id=self.staff_approver, purpose=f"{self.name}{purpose}",
        )
        p.item = item
        self.fp.flow(self.region, Flow(p.t, p.amount, item))
        return item

    def accept(self, t: int, passed: bool = True, n: int = 1) -> Item:
        return self.emit(t, "ProjectAccepted", acceptance_id=f"YS-{YEAR}-{self.key}-{n}", passed=passed,
                         progress_bps=10_000)

    def settle(self, t: int, amount: int, closed: bool = True) -> Item:
        return self.emit(t, "ProjectSettled", settlement_amount_fen=amount, closed=closed)

    def adjust_budget(self, t: int, new_budget: int) -> Item:
        county = region(self.region.code[:6])
        self.budget = new_budget
        return self.emit(t, "BudgetAdjusted", adjustment_id=f"TJ-{self.key}", new_budget_fen=new_budget,
                         approval_doc_no=f"{county.short}财调〔{YEAR}〕{self.key}号", reason="设计变更调增预算")


def payee_of(vendor: Vendor, kind: AccountKind) -> Payee:
    if kind is AccountKind.WAGE:
        return Payee(vendor.vendor_id, f"{vendor.name}农民工工资专用账户", vendor.wage_account, kind)
    if vendor.personal:
        return Payee(None, vendor.name, vendor.bank_account, AccountKind.PERSONAL)
    return Payee(vendor.vendor_id, vendor.name, vendor.bank_account, kind)


def _payee_key(vendor: Vendor) -> str:
    return vendor.vendor_id


def _plan_clashes(payments: list[PayPlan]) -> bool:
    """Whether two payments of one plan look alike (same payee is implied)."""
    for i, a in enumerate(payments):
        for b in payments[i + 1:]:
            if a.similar_ok and b.similar_ok:
                continue
            if abs(day_of(a.t) - day_of(b.t)) <= _SIMILAR_GUARD_DAYS and \
                    abs(a.amount - b.amount) * 10_000 <= _SIMILAR_GUARD_BPS * max(a.amount, b.amount):
                return True
    return False


def random_budget(rng: random.Random, proc: ProcurementCategory, small: bool = False) -> int:
    """A project budget in fen: mostly below the tender threshold, sometimes above it."""
    if small:
        return cny(rng.uniform(30_000, 98_000)) // 100 * 100
    threshold = TENDER_THRESHOLD[proc]
    if rng.random() < 0.12:
        low, high = threshold * 1.08, threshold * 3.0
    else:
        low, high = PLATFORM_THRESHOLD * 1.6, threshold * 0.9
    value = low * (high / low) ** rng.random()
    return int(value) // 100_000 * 100_000


def lifecycle(fp: FundPlanner, reg: Region, t0: int, opts: LifecycleOpts | None = None,
              proc: ProcurementCategory | None = None, budget: int | None = None,
              tweak: Callable[[Lifecycle, list[PayPlan]], None] | None = None) -> Lifecycle:
    """Plan a project from approval to settlement (or as far as the year allows)."""
    o = opts or LifecycleOpts()
    rng = fp.rng
    category = o.category or fp.category
    if proc is None:
        choices = names.procurement_categories(fp.category)
        proc = rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]
    if budget is None and o.contract_fen is not None:
        budget = -(-o.contract_fen * rng.randint(10_100, 10_800) // 10_000 // 10_000) * 10_000
    elif budget is None:
        budget = random_budget(rng, proc, small=o.personal)
    project = Project(fp, reg, category, proc, budget, owner=o.owner, official=o.official)
    lc = Lifecycle(project)
    contract_fen = o.contract_fen if o.contract_fen is not None else budget * rng.randint(8600, 9900) // 10_000
    with_award = o.with_award if o.with_award is not None else contract_fen >= PLATFORM_THRESHOLD
    short = o.fast or o.compact

    def gap(a: int, b: int, c: int, d: int) -> tuple[int, int]:
        return (a, b) if short else (c, d)

    for _attempt in range(60):
        t_approve = t0
        t = t_approve
        if with_award:
            published = fp.later(t, *gap(1, 2, 2, 15))
            tender_days = o.tender_days if o.tender_days is not None else rng.randint(*gap(21, 22, 21, 35))
            opened = day_of(published) * DAY + tender_days * DAY + rng.randint(60, 180)
            t_award = fp.later(opened, *gap(1, 2, 1, 7))
            t_contract = fp.later(t_award, *(o.contract_gap or gap(2, 3, 3, 20)))
        else:
            published = opened = t_award = 0
            t_contract = fp.later(t, *(o.contract_gap or gap(2, 3, 3, 15)))
        threshold = TENDER_THRESHOLD[proc]
        method = o.method
        if method is None:
            if not with_award:
                method = ProcurementMethod.DIRECT
            elif contract_fen >= threshold * 95 // 100:
                method = ProcurementMethod.OPEN_TENDER if rng.random() < 0.8 else ProcurementMethod.INVITATION
            else:
                method = rng.choice([ProcurementMethod.OPEN_TENDER, ProcurementMethod.NEGOTIATION,
                                     ProcurementMethod.INQUIRY if proc is ProcurementCategory.GOODS
                                     else ProcurementMethod.NEGOTIATION])
        prepay_bps = o.prepay_bps if o.prepay_bps is not None else rng.choice([0, 1000, 2000, 2000, 2500, 3000])
        if o.fast and prepay_bps == 0:
            prepay_bps = 2000
        amend_delta = contract_fen * o.amend_bps // 10_000
        if not o.amend_bps and not short and rng.random() < 0.15:
            amend_delta = contract_fen * rng.randint(150, 800) // 10_000
        approved_delta = amend_delta if o.amend_approved else 0
        total = contract_fen + approved_delta
        target = total * o.final_bps // 10_000
        payments: list[PayPlan] = []
        t_pay = t_contract
        paid = 0
        if prepay_bps:
            t_pay = fp.later(t_contract, *(o.prepay_gap or gap(2, 3, 3, 12)))
            amount = contract_fen * prepay_bps // 10_000
            payments.append(PayPlan(t_pay, amount, PaymentKind.PREPAYMENT))
            paid += amount
        if o.progress is not None:
            shares = [(total * bps // 10_000, days) for bps, days in o.progress]
        else:
            n_progress = o.progress_count if o.progress_count is not None else rng.randint(1, 2 if short else 3)
            progress_total = max(0, total * rng.randint(5500, 8000) // 10_000 - paid)
            weights = [rng.randint(5, 10) for _ in range(n_progress)]
            amounts = [progress_total * w // sum(weights) for w in weights]
            amounts[-1] += progress_total - sum(amounts)
            shares = [(a, gap(15, 20, 20, 45)) for a in amounts]
        t_amend = None
        wage = o.wage if o.wage is not None else (proc is ProcurementCategory.CONSTRUCTION
                                                   and contract_fen >= 100_000_000 and not o.personal)
        for k, (amount, days) in enumerate(shares):
            if amount <= 0:
                continue
            t_pay = fp.later(t_pay, *days)
            if k == 0 and amend_delta:
                t_amend = fp.later(t_pay, 3, 8)
                t_pay = fp.later(t_amend, *gap(15, 18, 15, 30))
            if wage and k == 0:
                part = amount * rng.randint(1200, 2500) // 10_000
                payments.append(PayPlan(t_pay, amount - part, PaymentKind.PROGRESS))
                payments.append(PayPlan(t_pay + rng.randint(10, 40), part, PaymentKind.PROGRESS,
                                        account_kind=AccountKind.WAGE))
            else:
                payments.append(PayPlan(t_pay, amount, PaymentKind.PROGRESS, similar_ok=o.progress is not None))
            paid += amount
        if amend_delta and t_amend is None:
            t_amend = fp.later(t_pay, 3, 8)
            t_pay = t_amend
        t_accept = fp.later(t_pay, *gap(8, 12, 10, 35))
        t_final = fp.later(t_accept, *gap(3, 6, 5, 20))
        if o.final_before_acceptance:
            t_final, t_accept = t_accept, fp.later(t_accept, 12, 20)
        payments.append(PayPlan(t_final, target - paid, PaymentKind.FINAL))
        settle = o.settle if o.settle is not None else rng.random() < 0.6
        t_settle = fp.later(max(t_final, t_accept), *gap(8, 12, 10, 45)) if settle else None
        if o.personal:
            for p in payments:
                p.account_kind = AccountKind.PERSONAL
        if tweak is not None:
            tweak(lc, payments)
        if any(p.amount <= 0 for p in payments):
            raise RuntimeError(f"{project.id}: a planned payment is not positive")
        if _plan_clashes(payments):
            continue
        winner = _choose_vendor(fp, project, o, payments, t_award if with_award else t_contract)
        if winner is None:
            continue
        break
    else:
        raise RuntimeError(f"{project.id}: no clean payment plan found")

    last = max([t_contract, *(p.t for p in payments), t_accept, t_settle or 0])
    if o.compact and day_of(last) >= LAST_WORK_DAY:
        raise RuntimeError(f"{project.id}: a scenario project does not fit in the year (starts {to_date(t0)})")

    def fits(t: int) -> bool:
        return day_of(t) < LAST_WORK_DAY

    lc.vendor = winner
    lc.contract_fen = contract_fen
    lc.award_fen = contract_fen
    land_use = o.land_use if o.land_use is not None else proc is ProcurementCategory.CONSTRUCTION
    if not o.approve_after_contract:
        lc.approval = project.approve(t_approve, land_use=land_use)
    if o.stop_after == "approval":
        return lc
    if with_award and fits(t_award):
        losers = o.losers if o.losers is not None else _losers(fp, project, winner, (o.bidders or 0) or
                                                                 rng.randint(MIN_BIDS, 5))
        lc.award = project.award(t_award, amount=contract_fen, method=method, winner=winner, losers=losers,
                                 published=published, opened=opened, platform=o.platform)
        fp.ctx.add_award(project.owner, winner.vendor_id, proc, day_of(t_award))
    if o.stop_after == "award" or not fits(t_contract):
        return lc
    lc.contract = project.sign(t_contract, winner, contract_fen, prepay_bps, with_award)
    if o.approve_after_contract:
        lc.approval = project.approve(fp.later(t_contract, 3, 6), land_use=land_use)
    if o.stop_after == "contract":
        return lc
    for p in sorted(payments, key=lambda p: p.t):
        if not fits(p.t):
            break
        if t_amend is not None and lc.amendment is None and t_amend < p.t:
            lc.amendment = project.amend(t_amend, amend_delta, o.amend_approved)
        if not o.final_before_acceptance and p.kind is PaymentKind.FINAL and fits(t_accept):
            lc.acceptance = project.accept(t_accept)
        project.pay(p, payee_of(winner, p.account_kind))
        fp.ctx.add_payment(_payee_key(winner), day_of(p.t), p.amount)
        lc.payments.append(p)
    if o.final_before_acceptance and lc.payments and lc.payments[-1].kind is PaymentKind.FINAL and fits(t_accept):
        lc.acceptance = project.accept(t_accept)
    if t_settle is not None and fits(t_settle) and lc.payments and lc.payments[-1].kind is PaymentKind.FINAL:
        lc.settlement = project.settle(t_settle, total)
    return lc


def _choose_vendor(fp: FundPlanner, project: Project, o: LifecycleOpts, payments: list[PayPlan],
                   t_award: int) -> Vendor | None:
    """A winner whose payments and awards stay clear of the similarity and split guards."""
    ctx = fp.ctx
    if o.winner is not None:
        candidates = [o.winner]
    elif o.personal:
        fp._vendor_no += 1
        pid = f"ID-{project.region.code}-{fp.fund_no:04d}{fp._vendor_no:03d}"
        account = f"6217{project.region.code}{fp.fund_no:05d}{fp._vendor_no:03d}"
        candidates = [Vendor(pid, names.person(fp.rng), pid, "-", account, project.region.name, date(1975, 1, 1),
                             project.region.code[:6], personal=True)]
    else:
        pool = ctx.pool(project.region.code[:6])
        candidates = [ctx.vendor(fp.rng.choice(pool)) for _ in range(30)]
    for vendor in candidates:
        if o.vendor_filter is not None and not o.vendor_filter(vendor):
            continue
        if not o.split_ok and ctx.award_clash(project.owner, vendor.vendor_id, project.proc, day_of(t_award)):
            continue
        key = _payee_key(vendor)
        if any(ctx.payment_clash(key, day_of(p.t), p.amount) for p in payments):
            continue
        return vendor
    return None


def _losers(fp: FundPlanner, project: Project, winner: Vendor, n: int) -> list[Vendor]:
    pool = fp.ctx.pool(project.region.code[:6])
    chosen: dict[str, Vendor] = {}
    while len(chosen) < n - 1:
        v = fp.ctx.vendor(fp.rng.choice(pool))
        if v.vendor_id != winner.vendor_id:
            chosen[v.vendor_id] = v
    return list(chosen.values())
