"""Seeded violations (one builder per catalogue rule id) and clean near-misses.

Every builder plans into one fund and records what it expects: `fp.expect(rule_id, item, ...)`
for a violation, `fp.near_miss(name, rule_ids, items, ...)` for a case that must stay silent.
A violation scenario is otherwise clean; where a second rule fires unavoidably it is expected too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fundtrail_schemas.catalogue import parameters
from fundtrail_schemas.regions import CITY, Region, region, villages
from fundtrail_schemas.types import (
    NEGATIVE_LIST,
    AccountKind,
    Category,
    Level,
    PaymentKind,
    ProcurementCategory,
    ProcurementMethod,
)

from .plan import (
    DAY,
    IDLE_DAYS,
    TENDER_THRESHOLD,
    FundPlanner,
    Lifecycle,
    LifecycleOpts,
    PayPlan,
    PositionOpts,
    Project,
    cny,
    day_of,
    lifecycle,
    payee_of,
    random_budget,
    to_date,
)

C, G, S = ProcurementCategory.CONSTRUCTION, ProcurementCategory.GOODS, ProcurementCategory.SERVICES
SPEND_DAYS: int = parameters("audit.idle_funds")["spend_days"]


@dataclass(frozen=True)
class ScenarioKind:
    """A scenario builder and what it needs from its host fund."""

    name: str
    build: Callable[[FundPlanner, int], None]
    rules: tuple[str, ...]
    violation: bool
    latest_start_day: int = 200


def _t0(fp: FundPlanner) -> int:
    return fp.later(fp.start, 3, 12)


def _compact(fp: FundPlanner, reg: Region | None = None, **kw: Any) -> tuple[Region, Lifecycle]:
    proc = kw.pop("proc", None)
    budget = kw.pop("budget", None)
    tweak = kw.pop("tweak", None)
    t0 = kw.pop("t0", None)
    reg = reg or fp.pick_location()
    opts = LifecycleOpts(compact=True, **kw)
    lc = lifecycle(fp, reg, t0 if t0 is not None else _t0(fp), opts, proc=proc, budget=budget,
                   tweak=tweak)
    return reg, lc


def _kind_of(lc: Lifecycle, kind: PaymentKind, n: int = 0) -> PayPlan:
    found = [p for p in lc.payments if p.kind is kind and p.account_kind is not AccountKind.WAGE]
    return found[n]


def _first_progress(payments: list[PayPlan]) -> PayPlan:
    return next(p for p in payments if p.kind is PaymentKind.PROGRESS and p.account_kind is not AccountKind.WAGE)


def _final(payments: list[PayPlan]) -> PayPlan:
    return next(p for p in payments if p.kind is PaymentKind.FINAL)


def _other_category(fp: FundPlanner) -> Category:
    options = [c for c in Category if c not in NEGATIVE_LIST and c != fp.category]
    return fp.rng.choice(options)


# --- violations ------------------------------------------------------------------------------


def v_payment_without_approval_or_contract(fp: FundPlanner, k: int) -> None:
    rule = "finance.payment_without_approval_or_contract"
    if k % 2 == 0:
        def no_contract(_lc: Lifecycle, payments: list[PayPlan]) -> None:
            _first_progress(payments).contract = False

        _, lc = _compact(fp, tweak=no_contract, wage=False)
        p = _first_progress(lc.payments)
        fp.expect(rule, p.item, "payment_without_contract",
                  "progress payment of an approved project that cites no contract")
        return
    town = fp.pick_town()
    project = Project(fp, town, fp.category, C, cny(300_000))
    t = fp.later(fp.start, 20, 40)
    for _ in range(30):
        amount = cny(fp.rng.uniform(120_000, 480_000))
        vendor = fp.ctx.vendor(fp.rng.choice(fp.ctx.pool(town.code[:6])))
        if not fp.ctx.payment_clash(vendor.vendor_id, day_of(t), amount):
            break
    p = PayPlan(t, amount, PaymentKind.OTHER, contract=False)
    project.pay(p, payee_of(vendor, AccountKind.CORPORATE))
    fp.ctx.add_payment(vendor.vendor_id, day_of(t), amount)
    fp.expect(rule, p.item, "payment_without_project",
              f"payment for project {project.id}, which was never approved and has no contract")


def v_paid_exceeds_received(fp: FundPlanner, k: int) -> None:
    town = fp.pick_town(exclusive=True)
    _, lc = _compact(fp, town)
    last = max(lc.payments, key=lambda p: p.t)
    fp.pos_opts[town.code] = PositionOpts(short_last_fen=last.amount // 2)
    fp.expect("audit.paid_exceeds_received", last.item, "town_overspends",
              f"the county's last transfer to {town.name} was {last.amount // 2} fen short of the payments it made")


def v_transfer_exceeds_received(fp: FundPlanner, k: int) -> None:
    rule = "audit.transfer_exceeds_received"
    county = fp.free_county() if k % 2 == 0 else None
    if county is not None:
        town = fp.pick_town(county, exclusive=True)
        _compact(fp, town, fast=True, t0=fp.later(fp.start, 1, 3))
        copts = fp.county_opts[county]
        copts.deficit = True
        fp.after_money.append(lambda: fp.expect(
            rule, copts.over_transfer[0], "county_overtransfers",
            "the county passed down a third of its last transfer more than the city allocated to it"))
        return
    town = fp.pick_town(exclusive=True)
    village = fp.rng.choice(villages(town.code))
    _, lc = _compact(fp, village)
    extra = lc.contract_fen * fp.rng.randint(500, 1500) // 10_000
    opts = fp.pos_opts[town.code] = PositionOpts(over_last_fen=extra)
    fp.after_money.append(lambda: fp.expect(
        rule, opts.over_transfer[0], "town_overtransfers",
        f"{town.name} passed {extra} fen more down to {village.name} than it had received"))


def v_paid_exceeds_contract(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, amend_bps=800, amend_approved=False, final_bps=10_500)
    final = _final(lc.payments)
    note = "final payment brings the contract to 105% while the +8% amendment was never approved"
    fp.expect("finance.paid_exceeds_contract", final.item, "overpaid_contract", note)
    fp.expect("housing.retention_below_warranty", final.item, "overpaid_contract",
              "paying more than the contract necessarily leaves no retention")


def v_prepayment_share(fp: FundPlanner, k: int) -> None:
    bps = (4000, 3500, 5000)[k % 3]
    _, lc = _compact(fp, prepay_bps=bps)
    fp.expect("housing.prepayment_share", _kind_of(lc, PaymentKind.PREPAYMENT).item,
              "excess_prepayment", f"prepayment of {bps // 100}% of the contract before any progress")


def v_final_without_acceptance(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, final_before_acceptance=True)
    fp.expect("housing.final_without_acceptance", _final(lc.payments).item,
              "final_before_acceptance", "final payment made before the project was accepted")


def v_retention_below_warranty(fp: FundPlanner, k: int) -> None:
    bps = (10_000, 9900, 9800)[k % 3]
    _, lc = _compact(fp, final_bps=bps)
    fp.expect("housing.retention_below_warranty", _final(lc.payments).item,
              "no_retention", f"final payment brings the contract to {bps / 100:g}%, keeping less than 3%")


def v_duplicate_invoice(fp: FundPlanner, k: int) -> None:
    _, first = _compact(fp)
    source = first.payments[0] if k % 2 == 0 else _first_progress(first.payments)

    def reuse(_lc: Lifecycle, payments: list[PayPlan]) -> None:
        _first_progress(payments).invoice_of = source

    _, second = _compact(fp, tweak=reuse, t0=max(_t0(fp), source.t - 40 * DAY), wage=False)
    p = _first_progress(second.payments)
    assert source.item is not None
    if p.t <= source.t:
        raise RuntimeError("duplicate-invoice scenario: the reuse must come after the original payment")
    fp.expect("finance.duplicate_invoice", p.item, "duplicate_invoice",
              f"invoice {source.invoice} was already paid by {source.item.fields['payment_id']}")


def v_similar_payment(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, prepay_bps=1000, wage=False, progress=[(2500, (18, 22)), (2510, (9, 11))])
    p = _kind_of(lc, PaymentKind.PROGRESS, 1)
    fp.expect("finance.similar_payment_review", p.item, "similar_payment",
              "second progress payment to the same account, 0.4% apart, ten days after the first")


def v_personal_account(fp: FundPlanner, k: int) -> None:
    reg = fp.rng.choice(villages(fp.pick_town().code))
    amount = cny(fp.rng.choice([62_000, 75_000, 80_000]))

    def big(_lc: Lifecycle, payments: list[PayPlan]) -> None:
        progress, final = _first_progress(payments), _final(payments)
        final.amount += progress.amount - amount
        progress.amount = amount

    _, lc = _compact(fp, reg, personal=True, contract_fen=cny(95_000), budget=cny(98_000), with_award=False,
                     prepay_bps=0, progress_count=1, proc=S, tweak=big)
    fp.expect("finance.personal_account_payment", _first_progress(lc.payments).item,
              "personal_account", f"{amount // 100} CNY paid to an individual's personal account")


def v_category_mismatch(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, category=_other_category(fp), stop_after="approval")
    fp.expect("agriculture.category_mismatch", lc.approval, "category_mismatch",
              f"project category {lc.project.category} under a {fp.category} fund")


def v_negative_list(fp: FundPlanner, k: int) -> None:
    category = sorted(NEGATIVE_LIST)[k % len(NEGATIVE_LIST)]
    proc = C if category is Category.BUILDINGS else (G if category is Category.VEHICLES else S)
    _, lc = _compact(fp, fp.pick_town(), category=category, stop_after="approval", proc=proc)
    fp.expect("agriculture.negative_list", lc.approval, "negative_list",
              f"project of negative-list category {category}")
    fp.expect("agriculture.category_mismatch", lc.approval, "negative_list",
              "a negative-list category never matches the fund's purpose")


def v_idle_funds(fp: FundPlanner, k: int) -> None:
    rule = "audit.idle_funds"
    county = fp.free_county() if k % 2 == 0 else None
    amount = cny(fp.rng.randint(50, 300) * 10_000)
    if county is not None:
        copts = fp.county_opts[county]
        copts.idle_allocation_fen = amount

        def county_idle() -> None:
            item = copts.first_transfer[0]
            fp.expect(rule, item, "idle_county", f"county {county} received {amount // 100} CNY and passed "
                      f"none of it down within {IDLE_DAYS} days", due_t=item.t + IDLE_DAYS * DAY)

        fp.after_money.append(county_idle)
        return
    town = fp.pick_town(exclusive=True)
    opts = fp.pos_opts[town.code] = PositionOpts(idle_fen=amount)

    def town_idle() -> None:
        item = opts.idle_transfer[0]
        fp.expect(rule, item, "idle_town", f"{town.name} received {amount // 100} CNY and spent none of it "
                  f"within {SPEND_DAYS} days", due_t=item.t + SPEND_DAYS * DAY)

    fp.after_money.append(town_idle)


def v_tender_threshold(fp: FundPlanner, k: int) -> None:
    proc = (C, G, S)[k % 3]
    method = ProcurementMethod.INQUIRY if proc is G else ProcurementMethod.NEGOTIATION
    contract = TENDER_THRESHOLD[proc] * fp.rng.randint(105, 150) // 100
    _, lc = _compact(fp, proc=proc, method=method, contract_fen=contract, budget=contract * 105 // 100 // 100 * 100)
    fp.expect("trading.tender_threshold", lc.award, "tender_threshold",
              f"{proc} award of {contract // 100} CNY by {method}")


def _small_award_pair(fp: FundPlanner, amounts: tuple[int, int], days: int) -> tuple[Lifecycle, Lifecycle]:
    """Two awards below the platform threshold, same owner, vendor and category, `days` apart."""
    reg = fp.pick_location()
    proc = fp.rng.choice([G, S])
    t0 = _t0(fp)
    owner = f"{reg.code}-CWH" if reg.level is Level.VILLAGE else f"{reg.code[:9]}-JSB"
    for _ in range(40):
        vendor = fp.ctx.vendor(fp.rng.choice(fp.ctx.pool(reg.code[:6])))
        if not any(fp.ctx.award_clash(owner, vendor.vendor_id, proc, day_of(t0) + d) for d in (0, 30, days + 30)):
            break
    common = {"proc": proc, "with_award": True, "platform": False, "method": ProcurementMethod.INQUIRY,
              "winner": vendor, "owner": owner, "bidders": 3, "split_ok": True}
    _, first = _compact(fp, reg, contract_fen=amounts[0], budget=amounts[0] * 108 // 100, t0=t0, **common)
    _, second = _compact(fp, reg, contract_fen=amounts[1], budget=amounts[1] * 108 // 100,
                         t0=t0 + days * DAY, **common)
    return first, second


def v_split_purchase(fp: FundPlanner, k: int) -> None:
    a = cny(fp.rng.randint(52_000, 68_000))
    b = cny(fp.rng.randint(54_000, 70_000))
    _, second = _small_award_pair(fp, (a, b), fp.rng.randint(20, 50))
    fp.expect("trading.split_purchase", second.award, "split_purchase",
              f"two awards of {a // 100} and {b // 100} CNY to the same vendor by the same owner, "
              f"each below the 100,000 CNY platform threshold, together above it")


def _award_series(fp: FundPlanner, amounts: tuple[int, ...], days: int) -> list[Lifecycle]:
    """Construction awards without a tender, one owner and vendor, `days` apart (化整为零 when their sum
    reaches the 4,000,000 CNY tender threshold though each stays below it)."""
    reg = fp.pick_location()
    t0 = _t0(fp)
    owner = f"{reg.code}-CWH" if reg.level is Level.VILLAGE else f"{reg.code[:9]}-JSB"
    for _ in range(40):
        vendor = fp.ctx.vendor(fp.rng.choice(fp.ctx.pool(reg.code[:6])))
        if not any(fp.ctx.award_clash(owner, vendor.vendor_id, C, day_of(t0) + d)
                   for d in range(0, days * len(amounts) + 31, 15)):
            break
    common = {"proc": C, "with_award": True, "platform": True, "method": ProcurementMethod.NEGOTIATION,
              "winner": vendor, "owner": owner, "bidders": 3, "split_ok": True}
    return [_compact(fp, reg, contract_fen=a, budget=a * 108 // 100 // 100 * 100, t0=t0 + n * days * DAY, **common)[1]
            for n, a in enumerate(amounts)]


def v_split_tender(fp: FundPlanner, k: int) -> None:
    amounts = tuple(cny(fp.rng.randint(1_400_000, 1_600_000)) for _ in range(3))
    while sum(amounts) < TENDER_THRESHOLD[C]:
        amounts = (amounts[0] + cny(100_000), *amounts[1:])
    third = _award_series(fp, amounts, 30)[-1]
    fp.expect("trading.split_tender", third.award, "split_tender",
              f"three construction awards of {', '.join(str(a // 100) for a in amounts)} CNY to one vendor by one "
              "owner within 60 days, each below the 4,000,000 CNY tender threshold, together above it (化整为零)")


def v_backdated_entry(fp: FundPlanner, k: int) -> None:
    late = (30, 40, 25)[k % 3]
    _, lc = _compact(fp, prepay_bps=2000, prepay_gap=(2, 5))
    assert lc.contract is not None
    lc.contract.recorded_late_days = late
    fp.expect("audit.backdated_entry", lc.contract, "backdated_contract",
              f"contract recorded {late} days after its date, after a prepayment against it (倒签/补录)")


def v_platform_required(fp: FundPlanner, k: int) -> None:
    contract = cny(fp.rng.randint(150_000, 900_000))
    _, lc = _compact(fp, proc=G, contract_fen=contract, budget=contract * 110 // 100 // 100 * 100, platform=False,
                     method=ProcurementMethod.INQUIRY)
    fp.expect("trading.platform_required", lc.award, "no_platform",
              f"award of {contract // 100} CNY outside the public resources trading platform")


def v_insufficient_bids(fp: FundPlanner, k: int) -> None:
    bids = 2 if k % 2 == 0 else 1
    if k % 3:
        _, lc = _compact(fp, bidders=bids, method=ProcurementMethod.OPEN_TENDER)
    else:
        _, lc = _compact(fp, bidders=bids, method=ProcurementMethod.NEGOTIATION, proc=C,
                         contract_fen=cny(fp.rng.randint(300_000, 3_500_000)))
    fp.expect("development.insufficient_bids", lc.award, "insufficient_bids",
              f"awarded with {bids} bid(s)")


def v_short_tender_period(fp: FundPlanner, k: int) -> None:
    days = (12, 15, 8, 19)[k % 4]
    _, lc = _compact(fp, method=ProcurementMethod.OPEN_TENDER, tender_days=days)
    fp.expect("development.short_tender_period", lc.award, "short_tender",
              f"open tender with a {days}-day tender period")


def v_contract_before_approval(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, approve_after_contract=True, stop_after="contract")
    fp.expect("development.contract_before_approval", lc.contract, "contract_before_approval",
              "contract signed days before the project was approved (先建后批)")


def v_contract_exceeds_budget(fp: FundPlanner, k: int) -> None:
    proc = fp.rng.choice([C, G])
    budget = random_budget(fp.rng, proc)
    bps = (12_500, 13_000, 12_000)[k % 3]
    contract = budget * bps // 10_000
    _, lc = _compact(fp, proc=proc, contract_fen=contract, budget=budget)
    fp.expect("development.contract_exceeds_budget", lc.contract, "over_budget",
              f"contract at {contract * 100 / budget:.0f}% of the approved budget")


def v_no_land_use(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, proc=C, land_use=False)
    fp.expect("natural_resources.no_land_use_approval", lc.approval, "no_land_use",
              "construction project approved without a land-use approval reference")


def v_same_handler_approver(fp: FundPlanner, k: int) -> None:
    def same(_lc: Lifecycle, payments: list[PayPlan]) -> None:
        _first_progress(payments).same_person = True

    _, lc = _compact(fp, tweak=same)
    p = _first_progress(lc.payments)
    fp.expect("inspection.same_handler_approver", p.item, "same_handler_approver",
              "payment handled and approved by the same person")


def v_related_vendor(fp: FundPlanner, k: int) -> None:
    reg = fp.pick_location()
    vendor = fp.scenario_vendor(reg.code[:6])
    official = f"OFF-{reg.code[:9]}-{fp.rng.randint(1, 6):02d}"
    t0 = _t0(fp)
    fp.register_vendor(fp.later(fp.start, 0, 2), vendor)
    relation = fp.rng.choice(["配偶持股", "近亲属任法定代表人"])
    fp.emit(t0 - DAY, "RelationDeclared", region(reg.code[:9]), fund=False, bureau=f"{reg.code[:9]}-JJW",
            official_id=official, vendor_id=vendor.vendor_id, relation=relation)
    _, lc = _compact(fp, reg, winner=vendor, official=official, t0=t0)
    fp.expect("inspection.related_vendor", lc.award, "related_vendor",
              f"winner {vendor.vendor_id} is related to the approving official {official}")


def v_debarred_vendor(fp: FundPlanner, k: int) -> None:
    reg = fp.pick_location()
    vendor = fp.scenario_vendor(reg.code[:6])
    t0 = _t0(fp)
    fp.register_vendor(fp.later(fp.start, 0, 2), vendor)
    t_debar = t0 + DAY
    fp.emit(t_debar, "VendorDebarred", CITY, fund=False, bureau="440700-CZJ", vendor_id=vendor.vendor_id,
        debarred_from=to_date(t_debar), debarred_until=to_date(t_debar) + timedelta(days=3 * 365),
        authority="江门市财政局", reason="提供虚假材料谋取中标（政府采购法第七十七条）")
    _, lc = _compact(fp, reg, winner=vendor, t0=t0, stop_after="award")
    fp.expect("discipline.debarred_vendor", lc.award, "debarred_vendor",
              f"award to {vendor.vendor_id}, debarred since {to_date(t_debar)}; the procurement stops there")


def v_new_vendor(fp: FundPlanner, k: int) -> None:
    reg = fp.pick_location()
    t0 = _t0(fp)
    vendor = fp.scenario_vendor(reg.code[:6], founded_on=to_date(t0) - timedelta(days=10 + 10 * (k % 3)))
    fp.register_vendor(fp.later(t0, 1, 2), vendor)
    _, lc = _compact(fp, reg, winner=vendor, t0=t0)
    assert lc.award is not None
    age = (to_date(lc.award.t) - vendor.founded_on).days
    fp.expect("discipline.new_vendor", lc.award, "new_vendor",
              f"winner founded {age} days before the award")


def v_bidder_collusion(fp: FundPlanner, k: int) -> None:
    reg = fp.pick_location()
    county = reg.code[:6]
    a = fp.scenario_vendor(county)
    shared = ("phone", "legal_rep_id", "bank_account", "address")[k % 4]
    b = fp.scenario_vendor(county, **{shared: getattr(a, shared)})
    for v in (a, b):
        fp.register_vendor(fp.later(fp.start, 0, 2), v)
    loser = fp.ctx.vendor(fp.rng.choice(fp.ctx.pool(county)))
    _, lc = _compact(fp, reg, winner=a, losers=[b, loser], method=ProcurementMethod.OPEN_TENDER)
    fp.expect("discipline.bidder_collusion", lc.award, "bidder_collusion",
              f"bidders {a.vendor_id} and {b.vendor_id} share the same {shared}")


def v_amendment_share(fp: FundPlanner, k: int) -> None:
    bps = (1500, 1200, 2000)[k % 3]
    _, lc = _compact(fp, amend_bps=bps)
    fp.expect("finance.amendment_share", lc.amendment, "big_amendment",
              f"approved amendment adding {bps // 100}% of the original contract")


def v_payment_after_settlement(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, final_bps=9000, settle=True)
    assert lc.settlement is not None and lc.vendor is not None
    t = fp.later(lc.settlement.t, 5, 15)
    for share in (500, 420, 560, 380, 610):
        p = PayPlan(t, lc.contract_fen * share // 10_000, PaymentKind.PROGRESS)
        if not fp.ctx.payment_clash(lc.vendor.vendor_id, day_of(t), p.amount) and \
                all(abs(q.amount - p.amount) * 50 > q.amount for q in lc.payments):
            break
    lc.project.pay(p, payee_of(lc.vendor, AccountKind.CORPORATE))
    fp.ctx.add_payment(lc.vendor.vendor_id, day_of(t), p.amount)
    fp.expect("audit.payment_after_settlement", p.item, "payment_after_settlement",
              "progress payment after the project was settled and closed")


# --- near-misses -----------------------------------------------------------------------------


def n_prepayment_30(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, prepay_bps=3000)
    fp.near_miss("prepayment_exactly_30pct", ("housing.prepayment_share",),
                 [_kind_of(lc, PaymentKind.PREPAYMENT).item], "prepayment of exactly 30% of the contract")


def n_retention_3(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp)
    fp.near_miss("retention_exactly_3pct", ("housing.retention_below_warranty", "housing.final_without_acceptance",
                                            "finance.paid_exceeds_contract"),
                 [_final(lc.payments).item], "accepted, then paid to exactly 97%: 3% retention kept")


def n_personal_below(fp: FundPlanner, k: int) -> None:
    reg = fp.rng.choice(villages(fp.pick_town().code))
    amount = cny(49_999)

    def just_below(_lc: Lifecycle, payments: list[PayPlan]) -> None:
        progress, final = _first_progress(payments), _final(payments)
        final.amount += progress.amount - amount
        progress.amount = amount

    _, lc = _compact(fp, reg, personal=True, contract_fen=cny(60_000), budget=cny(60_000), with_award=False,
                     prepay_bps=0, progress_count=1, proc=S, tweak=just_below)
    fp.near_miss("personal_account_below_threshold", ("finance.personal_account_payment",),
                 [_first_progress(lc.payments).item], "49,999 CNY to a personal account (limit 50,000)")


def n_wage_above(fp: FundPlanner, k: int) -> None:
    def big_wage(_lc: Lifecycle, payments: list[PayPlan]) -> None:
        main = _first_progress(payments)
        wage = next(p for p in payments if p.account_kind is AccountKind.WAGE)
        total = main.amount + wage.amount
        wage.amount = cny(120_000)
        main.amount = total - wage.amount

    contract = cny(fp.rng.randint(1_500_000, 3_000_000))
    _, lc = _compact(fp, proc=C, contract_fen=contract, budget=contract * 108 // 100 // 100 * 100, wage=True,
                     tweak=big_wage)
    wage = next(p for p in lc.payments if p.account_kind is AccountKind.WAGE)
    fp.near_miss("wage_account_above_threshold", ("finance.personal_account_payment",), [wage.item],
                 "120,000 CNY to the migrant workers' wage account (exempt)")


def n_three_bids(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, bidders=3, method=ProcurementMethod.OPEN_TENDER)
    fp.near_miss("three_bids_exactly", ("development.insufficient_bids",), [lc.award],
                 "open tender with exactly three bids")


def n_tender_20(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, method=ProcurementMethod.OPEN_TENDER, tender_days=20)
    fp.near_miss("tender_period_20_days", ("development.short_tender_period",), [lc.award],
                 "open tender whose bids opened exactly 20 days after publication")


def n_below_tender_threshold(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, proc=C, method=ProcurementMethod.NEGOTIATION, contract_fen=cny(3_990_000),
                     budget=cny(4_100_000))
    fp.near_miss("negotiation_just_below_tender_threshold", ("trading.tender_threshold",), [lc.award],
                 "construction award of 3,990,000 CNY by competitive negotiation (threshold 4,000,000)")


def n_at_tender_threshold(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, proc=C, method=ProcurementMethod.OPEN_TENDER, contract_fen=cny(4_000_000),
                     budget=cny(4_200_000))
    fp.near_miss("open_tender_at_threshold", ("trading.tender_threshold",), [lc.award],
                 "construction award of exactly 4,000,000 CNY by open tender")


def n_below_platform(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, proc=G, with_award=True, platform=False, method=ProcurementMethod.INQUIRY,
                     contract_fen=cny(99_000), budget=cny(100_000))
    fp.near_miss("award_below_platform_threshold", ("trading.platform_required", "trading.split_purchase"),
                 [lc.award], "award of 99,000 CNY off the platform (threshold 100,000)")


def n_small_pair(fp: FundPlanner, k: int) -> None:
    a = cny(fp.rng.randint(38_000, 45_000))
    b = cny(fp.rng.randint(40_000, 52_000))
    _, second = _small_award_pair(fp, (a, b), fp.rng.randint(20, 50))
    fp.near_miss("two_small_awards_below_threshold_together", ("trading.split_purchase",), [second.award],
                 f"two awards of {a // 100} and {b // 100} CNY to one vendor: together still below 100,000 CNY")


def n_split_below_tender(fp: FundPlanner, k: int) -> None:
    amounts = (cny(1_300_000), cny(1_300_000), cny(1_300_000) - cny(fp.rng.randint(1, 50_000)))
    third = _award_series(fp, amounts, 30)[-1]
    fp.near_miss("three_awards_together_below_tender_threshold", ("trading.split_tender",), [third.award],
                 "three construction awards to one vendor, together just below 4,000,000 CNY")


def n_recorded_within_tolerance(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, prepay_bps=2000, prepay_gap=(2, 2))
    assert lc.contract is not None
    lc.contract.recorded_late_days = 12  # a prepayment 2 days after the contract date: 10 days before
    fp.near_miss("contract_recorded_within_tolerance", ("audit.backdated_entry",), [lc.contract],
                 "contract recorded 12 days after its date, 10 days after a prepayment against it (tolerance 15)")


def n_budget_110(fp: FundPlanner, k: int) -> None:
    proc = fp.rng.choice([C, G, S])
    budget = random_budget(fp.rng, proc)
    _, lc = _compact(fp, proc=proc, contract_fen=budget * 11_000 // 10_000, budget=budget)
    fp.near_miss("contract_exactly_110pct_of_budget", ("development.contract_exceeds_budget",), [lc.contract],
                 "contract of exactly 110% of the approved budget")


def n_budget_adjusted(fp: FundPlanner, k: int) -> None:
    proc = fp.rng.choice([C, G])
    budget = random_budget(fp.rng, proc)
    new_budget = budget * 13_000 // 10_000
    contract = budget * 12_500 // 10_000
    _, lc = _compact(fp, proc=proc, contract_fen=contract, budget=budget)
    assert lc.approval is not None and lc.contract is not None
    adjusted = lc.project.adjust_budget(fp.later(lc.approval.t, 1, 3), new_budget)
    if adjusted.t >= lc.contract.t:
        raise RuntimeError("budget adjustment must precede the contract")
    fp.near_miss("budget_adjusted_before_contract", ("development.contract_exceeds_budget",),
                 [adjusted, lc.contract], "budget raised by 30% with an approval document before a contract at 125% "
                 "of the original budget")


def n_contract_same_day(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, with_award=False, contract_fen=cny(fp.rng.randint(40_000, 90_000)), contract_gap=(0, 0),
                     prepay_gap=(0, 0), prepay_bps=2000)
    fp.near_miss("contract_and_payment_hours_after_approval",
                 ("development.contract_before_approval", "finance.payment_without_approval_or_contract"),
                 [lc.contract, _kind_of(lc, PaymentKind.PREPAYMENT).item],
                 "contract signed and prepaid on the day of approval, in that order")


def n_amendment_10(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, amend_bps=1000, contract_fen=cny(fp.rng.randint(200_000, 3_000_000)) // 1000 * 1000)
    fp.near_miss("amendments_exactly_10pct", ("finance.amendment_share",), [lc.amendment],
                 "approved amendment adding exactly 10% of the original amount")


def n_paid_within_amended(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, amend_bps=800)
    fp.near_miss("paid_above_original_within_amended_contract",
                 ("finance.paid_exceeds_contract", "housing.retention_below_warranty"), [_final(lc.payments).item],
                 "paid 104.76% of the original amount: 97% of the contract with its approved +8% amendment")


def n_similar_far(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, prepay_bps=1000, wage=False, progress=[(2500, (18, 22)), (2510, (45, 46))])
    fp.near_miss("similar_amount_45_days_apart", ("finance.similar_payment_review",),
                 [_kind_of(lc, PaymentKind.PROGRESS, 1).item],
                 "two payments to one account 0.4% apart but 45 days apart")


def n_similar_different(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, prepay_bps=1000, wage=False, progress=[(2500, (18, 22)), (2625, (9, 11))])
    fp.near_miss("same_payee_5pct_apart_within_10_days", ("finance.similar_payment_review",),
                 [_kind_of(lc, PaymentKind.PROGRESS, 1).item],
                 "two payments to one account ten days apart whose amounts differ by 5%")


def n_debarment_expired(fp: FundPlanner, k: int) -> None:
    reg = fp.pick_location()
    vendor = fp.scenario_vendor(reg.code[:6])
    t0 = _t0(fp)
    fp.register_vendor(fp.later(fp.start, 0, 2), vendor)
    fp.emit(t0, "VendorDebarred", CITY, fund=False, bureau="440700-CZJ", vendor_id=vendor.vendor_id,
            debarred_from=to_date(t0) - timedelta(days=3 * 365), debarred_until=to_date(t0) - timedelta(days=30),
            authority="江门市财政局", reason="串通投标（政府采购法第七十七条），禁入期已满")
    _, lc = _compact(fp, reg, winner=vendor, t0=t0 + DAY)
    fp.near_miss("debarment_expired", ("discipline.debarred_vendor",), [lc.award, lc.contract],
                 "winner's debarment ended 30 days before the tender")


def n_vendor_old_enough(fp: FundPlanner, k: int) -> None:
    reg = fp.pick_location()
    t0 = _t0(fp)
    vendor = fp.scenario_vendor(reg.code[:6], founded_on=to_date(t0) - timedelta(days=75))
    fp.register_vendor(fp.later(t0, 0, 1), vendor)
    _, lc = _compact(fp, reg, winner=vendor, t0=t0)
    assert lc.award is not None
    age = (to_date(lc.award.t) - vendor.founded_on).days
    fp.near_miss("vendor_older_than_90_days", ("discipline.new_vendor",), [lc.award],
                 f"winner founded {age} days before the award")


def n_relation_other_official(fp: FundPlanner, k: int) -> None:
    reg = fp.pick_location()
    vendor = fp.scenario_vendor(reg.code[:6])
    t0 = _t0(fp)
    fp.register_vendor(fp.later(fp.start, 0, 2), vendor)
    fp.emit(t0 - DAY, "RelationDeclared", region(reg.code[:9]), fund=False, bureau=f"{reg.code[:9]}-JJW",
            official_id=f"OFF-{reg.code[:9]}-09", vendor_id=vendor.vendor_id, relation="表兄弟持股")
    _, lc = _compact(fp, reg, winner=vendor, official=f"OFF-{reg.code[:9]}-02", t0=t0)
    fp.near_miss("relation_with_another_official", ("inspection.related_vendor",), [lc.award],
                 "winner has a declared relation, but with an official who did not approve this project")


def n_neighbours(fp: FundPlanner, k: int) -> None:
    reg = fp.pick_location()
    county = reg.code[:6]
    a = fp.scenario_vendor(county)
    number = int(a.address.rsplit("路", 1)[1].rstrip("号"))
    b = fp.scenario_vendor(county, address=a.address.replace(f"{number}号", f"{number + 2}号"),
                           phone=a.phone[:-1] + str((int(a.phone[-1]) + 1) % 10))
    for v in (a, b):
        fp.register_vendor(fp.later(fp.start, 0, 2), v)
    loser = fp.ctx.vendor(fp.rng.choice(fp.ctx.pool(county)))
    _, lc = _compact(fp, reg, winner=a, losers=[b, loser], method=ProcurementMethod.OPEN_TENDER)
    fp.near_miss("bidders_are_neighbours", ("discipline.bidder_collusion",), [lc.award],
                 "two bidders on the same road with different numbers and phones")


def n_goods_no_land_use(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, proc=G, land_use=False)
    fp.near_miss("goods_without_land_use", ("natural_resources.no_land_use_approval",), [lc.approval],
                 "goods procurement approved without a land-use reference (not construction)")


def n_town_pays_all(fp: FundPlanner, k: int) -> None:
    town = fp.pick_town(exclusive=True)
    _, lc = _compact(fp, town)
    last = max(lc.payments, key=lambda p: p.t)
    fp.near_miss("town_pays_exactly_what_it_received", ("audit.paid_exceeds_received",), [last.item],
                 "every transfer to the town equals the payments it covers: the balance ends at 0")


def n_county_passes_all(fp: FundPlanner, k: int) -> None:
    county = fp.rng.choice(fp.counties)
    copts = fp.county_opts[county]
    copts.buffer_bps = 0

    def last_transfer() -> None:
        items = [i for i in fp.items if i.etype == "FundTransferred" and i.region == county]
        fp.near_miss("county_passes_down_its_whole_allocation", ("audit.transfer_exceeds_received",),
                     [max(items, key=lambda i: (i.t, i.seq))], "transfers down add up to the allocation exactly")

    fp.after_money.append(last_transfer)


def n_county_day_28(fp: FundPlanner, k: int) -> None:
    county = fp.free_county()
    if county is None:
        return
    town = fp.pick_town(county, exclusive=True)
    _compact(fp, town, fast=True, t0=fp.later(fp.start, 8, 10))
    copts = fp.county_opts[county]
    copts.first_transfer_day = 27 + 20 / 24
    fp.after_money.append(lambda: fp.near_miss(
        "county_passes_down_after_27_days", ("audit.idle_funds",), copts.first_transfer[:2],
        "county's first transfer down 27 days 20 hours after the allocation (limit 30 days)"))


def n_town_day_80(fp: FundPlanner, k: int) -> None:
    town = fp.pick_town(exclusive=True)
    # Prepaid soon after the contract, so the early money arrives well within the county's 30 days.
    _compact(fp, town, t0=fp.later(fp.start, 62, 66), prepay_bps=2000)
    opts = fp.pos_opts[town.code] = PositionOpts(first_lead_days=80)
    fp.after_money.append(lambda: fp.near_miss(
        "town_starts_spending_after_80_days", ("audit.idle_funds",), opts.first_receipt[:1],
        "town's first payment 80 days after its first receipt (limit 90 days)"))


def n_unclosed_settlement(fp: FundPlanner, k: int) -> None:
    _, lc = _compact(fp, settle=False)
    assert lc.acceptance is not None
    final = _final(lc.payments)
    settled = lc.project.settle(lc.acceptance.t + fp.rng.randint(60, 240), lc.contract_fen, closed=False)
    if settled.t >= final.t:
        raise RuntimeError("settlement must precede the final payment in this near-miss")
    fp.near_miss("final_payment_after_unclosed_settlement", ("audit.payment_after_settlement",),
                 [final.item], "final payment after a settlement that did not close the project")


V = ScenarioKind
VIOLATIONS: tuple[ScenarioKind, ...] = (
    V("payment_without_approval_or_contract", v_payment_without_approval_or_contract,
      ("finance.payment_without_approval_or_contract",), True),
    V("paid_exceeds_received", v_paid_exceeds_received, ("audit.paid_exceeds_received",), True),
    V("transfer_exceeds_received", v_transfer_exceeds_received, ("audit.transfer_exceeds_received",), True),
    V("paid_exceeds_contract", v_paid_exceeds_contract,
      ("finance.paid_exceeds_contract", "housing.retention_below_warranty"), True),
    V("prepayment_share", v_prepayment_share, ("housing.prepayment_share",), True),
    V("final_without_acceptance", v_final_without_acceptance, ("housing.final_without_acceptance",), True),
    V("retention_below_warranty", v_retention_below_warranty, ("housing.retention_below_warranty",), True),
    V("duplicate_invoice", v_duplicate_invoice, ("finance.duplicate_invoice",), True, latest_start_day=150),
    V("similar_payment_review", v_similar_payment, ("finance.similar_payment_review",), True),
    V("personal_account_payment", v_personal_account, ("finance.personal_account_payment",), True),
    V("category_mismatch", v_category_mismatch, ("agriculture.category_mismatch",), True),
    V("negative_list", v_negative_list, ("agriculture.negative_list", "agriculture.category_mismatch"), True),
    V("idle_funds", v_idle_funds, ("audit.idle_funds",), True, latest_start_day=200),
    V("tender_threshold", v_tender_threshold, ("trading.tender_threshold",), True),
    V("split_purchase", v_split_purchase, ("trading.split_purchase",), True, latest_start_day=150),
    V("platform_required", v_platform_required, ("trading.platform_required",), True),
    V("insufficient_bids", v_insufficient_bids, ("development.insufficient_bids",), True),
    V("short_tender_period", v_short_tender_period, ("development.short_tender_period",), True),
    V("contract_before_approval", v_contract_before_approval, ("development.contract_before_approval",), True),
    V("contract_exceeds_budget", v_contract_exceeds_budget, ("development.contract_exceeds_budget",), True),
    V("no_land_use_approval", v_no_land_use, ("natural_resources.no_land_use_approval",), True),
    V("same_handler_approver", v_same_handler_approver, ("inspection.same_handler_approver",), True),
    V("related_vendor", v_related_vendor, ("inspection.related_vendor",), True),
    V("debarred_vendor", v_debarred_vendor, ("discipline.debarred_vendor",), True),
    V("new_vendor", v_new_vendor, ("discipline.new_vendor",), True),
    V("bidder_collusion", v_bidder_collusion, ("discipline.bidder_collusion",), True),
    V("amendment_share", v_amendment_share, ("finance.amendment_share",), True),
    V("payment_after_settlement", v_payment_after_settlement, ("audit.payment_after_settlement",), True),
    V("split_tender", v_split_tender, ("trading.split_tender",), True, latest_start_day=120),
    V("backdated_entry", v_backdated_entry, ("audit.backdated_entry",), True),
)

# Rule ids the demo deliberately does not seed: a rule without a scenario above must be named here,
# so leaving a rule out of the demo is a decision (the demo tests and tests/test_e2e.py check both).
NOT_SEEDED: frozenset[str] = frozenset()

NEAR_MISSES: tuple[ScenarioKind, ...] = (
    V("prepayment_exactly_30pct", n_prepayment_30, ("housing.prepayment_share",), False),
    V("retention_exactly_3pct", n_retention_3, ("housing.retention_below_warranty",), False),
    V("personal_account_below_threshold", n_personal_below, ("finance.personal_account_payment",), False),
    V("wage_account_above_threshold", n_wage_above, ("finance.personal_account_payment",), False),
    V("three_bids_exactly", n_three_bids, ("development.insufficient_bids",), False),
    V("tender_period_20_days", n_tender_20, ("development.short_tender_period",), False),
    V("negotiation_just_below_tender_threshold", n_below_tender_threshold, ("trading.tender_threshold",), False),
    V("open_tender_at_threshold", n_at_tender_threshold, ("trading.tender_threshold",), False),
    V("award_below_platform_threshold", n_below_platform, ("trading.platform_required",), False),
    V("two_small_awards_below_threshold_together", n_small_pair, ("trading.split_purchase",), False,
      latest_start_day=150),
    V("three_awards_together_below_tender_threshold", n_split_below_tender, ("trading.split_tender",), False,
      latest_start_day=120),
    V("contract_recorded_within_tolerance", n_recorded_within_tolerance, ("audit.backdated_entry",), False),
    V("contract_exactly_110pct_of_budget", n_budget_110, ("development.contract_exceeds_budget",), False),
    V("budget_adjusted_before_contract", n_budget_adjusted, ("development.contract_exceeds_budget",), False),
    V("contract_and_payment_hours_after_approval", n_contract_same_day,
      ("development.contract_before_approval",), False),
    V("amendments_exactly_10pct", n_amendment_10, ("finance.amendment_share",), False),
    V("paid_above_original_within_amended_contract", n_paid_within_amended, ("finance.paid_exceeds_contract",),
      False),
    V("similar_amount_45_days_apart", n_similar_far, ("finance.similar_payment_review",), False),
    V("same_payee_5pct_apart_within_10_days", n_similar_different, ("finance.similar_payment_review",), False),
    V("debarment_expired", n_debarment_expired, ("discipline.debarred_vendor",), False),
    V("vendor_older_than_90_days", n_vendor_old_enough, ("discipline.new_vendor",), False),
    V("relation_with_another_official", n_relation_other_official, ("inspection.related_vendor",), False),
    V("bidders_are_neighbours", n_neighbours, ("discipline.bidder_collusion",), False),
    V("goods_without_land_use", n_goods_no_land_use, ("natural_resources.no_land_use_approval",), False),
    V("town_pays_exactly_what_it_received", n_town_pays_all, ("audit.paid_exceeds_received",), False),
    V("county_passes_down_its_whole_allocation", n_county_passes_all, ("audit.transfer_exceeds_received",), False),
    V("county_passes_down_after_27_days", n_county_day_28, ("audit.idle_funds",), False),
    V("town_starts_spending_after_80_days", n_town_day_80, ("audit.idle_funds",), False, latest_start_day=150),
    V("final_payment_after_unclosed_settlement", n_unclosed_settlement, ("audit.payment_after_settlement",),
      False),
)

# Scenarios that take a county of Jiangmen the fund does not otherwise use.
NEEDS_FREE_COUNTY = frozenset({"transfer_exceeds_received", "idle_funds", "county_passes_down_after_27_days"})
