"""The dataset: a skeleton of funds, planned one by one in start order and merged into one time-ordered stream."""

from __future__ import annotations

import heapq
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fundtrail_schemas.catalogue import BY_RULE_ID
from fundtrail_schemas.events import Envelope
from fundtrail_schemas.regions import CITY, counties
from fundtrail_schemas.types import Category

from . import names
from .plan import (
    DAY,
    LAST_WORK_DAY,
    YEAR,
    Context,
    FundPlanner,
    Item,
    LifecycleOpts,
    cny,
    lifecycle,
    to_datetime,
)
from .scenarios import NEAR_MISSES, NEEDS_FREE_COUNTY, VIOLATIONS, ScenarioKind

_POSITIVE = (Category.INFRASTRUCTURE, Category.INDUSTRY, Category.ENVIRONMENT, Category.FARMLAND, Category.WATER,
             Category.CULTURE)
_WEIGHTS = (5, 2, 3, 3, 3, 1)


@dataclass(frozen=True)
class ExpectedViolation:
    """A violation the dataset seeds on purpose."""

    rule_id: str
    department: str
    catalogue_no: int
    triggering_event_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    fund_doc_no: str | None
    project_id: str | None
    region_code: str
    scenario: str
    note: str
    due_at: datetime | None = None  # timer rules: when the check becomes due (event time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "department": self.department,
            "catalogue_no": self.catalogue_no,
            "triggering_event_id": str(self.triggering_event_id),
            "event_type": self.event_type,
            "occurred_at": self.occurred_at.isoformat(),
            "fund_doc_no": self.fund_doc_no,
            "project_id": self.project_id,
            "region_code": self.region_code,
            "scenario": self.scenario,
            "note": self.note,
            "due_at": self.due_at.isoformat() if self.due_at else None,
        }


@dataclass(frozen=True)
class CleanScenario:
    """A near-miss: these events must NOT trigger these rules."""

    scenario: str
    rule_ids: tuple[str, ...]
    event_ids: tuple[uuid.UUID, ...]
    fund_doc_no: str | None
    project_id: str | None
    region_code: str
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "rule_ids": list(self.rule_ids),
            "event_ids": [str(e) for e in self.event_ids],
            "fund_doc_no": self.fund_doc_no,
            "project_id": self.project_id,
            "region_code": self.region_code,
            "note": self.note,
        }


@dataclass(frozen=True)
class FundSkeleton:
    """What is decided about a fund before it is planned."""

    fund_no: int
    doc_no: str
    title: str
    category: Category
    start_day: int
    counties: tuple[str, ...]
    n_projects: int
    scenarios: tuple[tuple[ScenarioKind, int], ...]


def scenario_counts(size: float) -> tuple[int, int]:
    """Seeded violations per violation scenario and near-misses per kind at a size."""
    return max(1, round(3 * size)), max(1, round(size))


def _skeleton(seed: int, size: float) -> list[FundSkeleton]:
    rng = random.Random(f"{seed}:skeleton")
    county_codes = [c.code for c in counties()]
    drafts: list[dict[str, Any]] = []
    for n in range(max(1, round(50 * size))):
        category = rng.choices(_POSITIVE, weights=_WEIGHTS)[0]
        prefix, theme = names.fund_theme(category)
        drafts.append({
            "fund_no": n,
            "doc_no": f"{prefix}〔{YEAR}〕{n + 11}号",
            "title": f"{YEAR}年{theme}（第{1 + n % 3}批）",
            "category": category,
            "start_day": int(rng.triangular(4, 211, 60)),
            "counties": tuple(sorted(rng.sample(county_codes, rng.choice([1, 1, 2, 2, 3])))),
            "n_projects": rng.randint(6, 14),
            "scenarios": [],
            "free": 0,
        })
    for d in drafts:
        d["free"] = len(county_codes) - len(d["counties"])
    n_violations, n_clean = scenario_counts(size)
    tasks = [(kind, k) for kind in VIOLATIONS for k in range(n_violations)]
    tasks += [(kind, k) for kind in NEAR_MISSES for k in range(n_clean)]
    rng.shuffle(tasks)
    by_start = sorted(drafts, key=lambda d: (d["start_day"], d["fund_no"]))
    cursor = 0
    for kind, k in tasks:
        eligible = [d for d in by_start if d["start_day"] <= kind.latest_start_day] or by_start[:1]
        if kind.name in NEEDS_FREE_COUNTY:
            eligible = [d for d in eligible if d["free"] > 0] or eligible
        host = eligible[cursor % len(eligible)]
        cursor += 1
        if kind.name in NEEDS_FREE_COUNTY:
            host["free"] -= 1
        host["scenarios"].append((kind, k))
    return [
        FundSkeleton(fund_no=d["fund_no"], doc_no=d["doc_no"], title=d["title"], category=d["category"],
                     start_day=d["start_day"], counties=d["counties"], n_projects=d["n_projects"],
                     scenarios=tuple(d["scenarios"]))
        for d in by_start
    ]


def plan_fund(ctx: Context, skel: FundSkeleton) -> FundPlanner:
    """Plan one fund completely: ordinary projects, seeded scenarios, then the money that feeds them."""
    fp = FundPlanner(ctx, skel.fund_no, skel.doc_no, skel.category, skel.start_day, skel.counties, skel.title)
    rng = fp.rng
    for county in skel.counties:
        # The first project of each county pays within weeks, so the county passes money down in time.
        lifecycle(fp, fp.pick_location(county), fp.later(fp.start, 1, 3), LifecycleOpts(fast=True))
    latest = LAST_WORK_DAY - 45
    for _ in range(skel.n_projects - len(skel.counties)):
        reg = fp.pick_location(rng.choice(skel.counties))
        t0 = fp.later(fp.start, 3, 75)
        if t0 // DAY > latest:
            t0 = fp.at_day(latest - rng.randint(0, 20))
        roll = rng.random()
        if roll < 0.06:
            opts = LifecycleOpts(personal=True, with_award=False)
            lifecycle(fp, reg, t0, opts, budget=cny(rng.uniform(30_000, 48_000)) // 100 * 100)
        elif roll < 0.16:
            lifecycle(fp, reg, t0, LifecycleOpts(with_award=False),
                      budget=cny(rng.uniform(30_000, 98_000)) // 100 * 100)
        else:
            lifecycle(fp, reg, t0)
    for kind, k in skel.scenarios:
        kind.build(fp, k)
    fp.settle_money()
    fp.finish()
    return fp


def _vendor_items(ctx: Context) -> list[Item]:
    """The vendor registry import at the start of the year (market regulator, city level)."""
    rng = random.Random(f"{ctx.seed}:vendors")
    items = []
    for county in counties():
        for index in ctx.pool(county.code):
            vendor = ctx.vendor(index)
            t = (1 + (index % 8)) * DAY + rng.randint(30, 570)
            item = Item(t, index, "VendorRegistered", CITY.level, CITY.code, "440700-SCJGJ", None, None,
                        vendor.registration())
            items.append(item)
    items.sort(key=lambda i: (i.t, i.seq))
    for item in items:
        item.event_id = rng.getrandbits(128)
        item.delay = rng.randint(1, 90)
    return items


class DemoDataset:
    """A generated year of Jiangmen special funds; iterate `events` (streamed) and read `expected`."""

    def __init__(self, seed: int, size: float) -> None:
        if not size > 0:
            raise ValueError("size must be positive")
        self.seed = seed
        self.size = size
        self.per_county = max(15, round(45 * size))
        self.skeleton = _skeleton(seed, size)
        self._expected: list[ExpectedViolation] | None = None
        self._clean: list[CleanScenario] | None = None
        self._counts: Counter[str] | None = None

    # --- iteration ----------------------------------------------------------------------------

    @property
    def events(self) -> Iterator[Envelope]:
        """A fresh stream of validated events, in occurred-time order (bounded per live fund)."""
        return (item.build() for item in self.items())

    def items(self) -> Iterator[Item]:
        """The planned items in emission order (events are built from them)."""
        ctx = Context(self.seed, self.size, self.per_county)
        expected: list[ExpectedViolation] = []
        clean: list[CleanScenario] = []
        counts: Counter[str] = Counter()
        vendors = _vendor_items(ctx)
        counts.update(i.etype for i in vendors)
        live: dict[int, tuple[list[Item | None], int]] = {-1: (list(vendors), 0)}
        heap: list[tuple[int, int, int, int]] = [(vendors[0].t, -1, vendors[0].seq, -1)]
        for n, skel in enumerate(self.skeleton):
            heap.append((skel.start_day * DAY, -2, n, n))
        heapq.heapify(heap)
        while heap:
            _, order, _, key = heapq.heappop(heap)
            if order == -2:
                fp = self._plan(ctx, self.skeleton[key], expected, clean, counts)
                live[key] = (list(fp.items), 0)
                first = fp.items[0]
                # Funds' items tie-break by skeleton order, after the vendor registry (-1).
                heapq.heappush(heap, (first.t, key, first.seq, key))
                continue
            items, pos = live[key]
            item = items[pos]
            assert item is not None
            items[pos] = None  # emitted items are freed as the stream advances
            if pos + 1 < len(items):
                live[key] = (items, pos + 1)
                nxt = items[pos + 1]
                assert nxt is not None
                heapq.heappush(heap, (nxt.t, order, nxt.seq, key))
            else:
                del live[key]
            yield item
        self._remember(expected, clean, counts)

    def _plan(self, ctx: Context, skel: FundSkeleton, expected: list[ExpectedViolation],
              clean: list[CleanScenario], counts: Counter[str]) -> FundPlanner:
        ctx.prune(skel.start_day)
        fp = plan_fund(ctx, skel)
        if fp.items[0].t < skel.start_day * DAY:
            raise RuntimeError(f"fund {fp.doc_no} plans an event before its start")
        counts.update(i.etype for i in fp.items)
        counts["_funds"] += 1
        for e in fp.expected:
            entry = BY_RULE_ID[e.rule_id]
            expected.append(ExpectedViolation(
                rule_id=e.rule_id, department=entry.department.value, catalogue_no=entry.no,
                triggering_event_id=e.item.uuid, event_type=e.item.etype, occurred_at=to_datetime(e.item.t),
                fund_doc_no=e.item.fund, project_id=e.item.project, region_code=e.item.region,
                scenario=e.scenario, note=e.note, due_at=to_datetime(e.due_t) if e.due_t is not None else None,
            ))
        for c in fp.clean:
            head = c.items[0]
            clean.append(CleanScenario(
                scenario=c.scenario, rule_ids=c.rule_ids, event_ids=tuple(i.uuid for i in c.items),
                fund_doc_no=head.fund or fp.doc_no, project_id=head.project, region_code=head.region, note=c.note,
            ))
        return fp

    def _remember(self, expected: list[ExpectedViolation], clean: list[CleanScenario], counts: Counter[str]) -> None:
        self._expected = sorted(expected, key=lambda e: (e.occurred_at, e.rule_id, str(e.triggering_event_id)))
        self._clean = clean
        self._counts = counts

    def _planning_pass(self) -> None:
        ctx = Context(self.seed, self.size, self.per_county)
        expected: list[ExpectedViolation] = []
        clean: list[CleanScenario] = []
        counts: Counter[str] = Counter(i.etype for i in _vendor_items(ctx))
        for skel in self.skeleton:
            self._plan(ctx, skel, expected, clean, counts)
        self._remember(expected, clean, counts)

    # --- what the dataset contains ------------------------------------------------------------

    @property
    def expected(self) -> list[ExpectedViolation]:
        """Every seeded violation, in occurred-time order."""
        if self._expected is None:
            self._planning_pass()
        assert self._expected is not None
        return self._expected

    @property
    def clean(self) -> list[CleanScenario]:
        """Every near-miss with the rules it must not trigger."""
        if self._clean is None:
            self._planning_pass()
        assert self._clean is not None
        return self._clean

    def summary(self) -> dict[str, Any]:
        """Counts: events by type, funds, vendors, seeded violations by rule, near-misses."""
        if self._counts is None:
            self._planning_pass()
        counts = self._counts or Counter()
        by_type = {k: v for k, v in sorted(counts.items()) if not k.startswith("_")}
        return {
            "seed": self.seed,
            "size": self.size,
            "year": YEAR,
            "events": sum(by_type.values()),
            "events_by_type": by_type,
            "funds": counts["_funds"],
            "projects": by_type.get("ProjectApproved", 0),
            "payments": by_type.get("PaymentDisbursed", 0),
            "vendors": by_type.get("VendorRegistered", 0),
            "expected_violations": len(self.expected),
            "expected_by_rule": dict(sorted(Counter(e.rule_id for e in self.expected).items())),
            "clean_scenarios": len(self.clean),
        }

    def manifest(self) -> dict[str, Any]:
        """The expected-violations manifest (JSON-able)."""
        return {
            "format": "fundtrail.demo-manifest/v1",
            "generated_for": f"{CITY.name} {YEAR}",
            "first_day": date(YEAR, 1, 1).isoformat(),
            "summary": self.summary(),
            "expected_violations": [e.as_dict() for e in self.expected],
            "clean_scenarios": [c.as_dict() for c in self.clean],
        }


def generate(seed: int, size: float = 1.0) -> DemoDataset:
    """The demo dataset for a seed and size (1.0 ≈ 50 funds, 500 projects, several thousand events)."""
    return DemoDataset(seed, size)
