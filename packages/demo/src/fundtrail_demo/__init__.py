"""The realistic demo generator: a year (2025, the last complete one) of Jiangmen special funds with seeded violations.

`generate(seed, size)` returns a `DemoDataset`: `events` streams validated contract events in
occurred-time order (globally, so event-time timers fire as they would live), `expected` lists every
seeded violation (rule id, department, triggering event, fund, project, region, note, and for timer
rules the event time at which the check is due), `clean` lists the near-misses with the rules they
must not trigger, `summary()` counts. The same seed and size give byte-identical output.

Shape at size 1.0: ~50 special funds allocated by the city (440700) to 1-3 of the 7 counties
(FundAllocated), passed down to towns and sometimes villages just in time for the payments they
cover (FundTransferred), ~10 projects per fund (ProjectApproved → ProcurementAwarded with 3-5 bids
on the trading platform → ContractSigned → prepayment / progress payments (with a migrant-wage
share on large construction contracts) → ProjectAccepted → final payment to 97% → ProjectSettled),
a vendor registry of ~300 companies, year-end returns of unused money, 3 seeded violations of every
catalogue rule id and one of each near-miss. `size` scales every count linearly (0.1 for tests, 20
for benchmarks). Events are streamed, never held: a fund is planned as compact items when the stream
reaches its allocation day, each item becomes an event only when emitted and is freed then. Memory
therefore follows the funds alive at once (~1 KB per pending item: ~150 MB at size 20, ~340 MB at
size 50), not the events written.

Interpretations, aligned with services/compliance/rulepacks (pack_version 1):
- Amounts compare as the packs do: strictly above for prepayment (30%), retention (97% paid),
  amendments (10%), contract over budget (110%), personal account (50,000 CNY); at or above for
  tender (construction 4,000,000 / goods 2,000,000 / services 1,000,000 CNY) and platform
  (100,000 CNY) thresholds. Near-misses sit exactly on the clean side of each of these.
- A split purchase is two or more awards below the platform threshold (100,000 CNY) by one owner
  to one vendor in one category within 90 days that together reach it; it is expected on the award
  that completes the pair.
- Idle funds: a county must pass money down within 30 days, a town or village must start spending
  within 90 days of its first receipt (a position with any outflow is not idle). The timer starts
  on the first receipt, which is the triggering event; `due_at` says when the check fires. Every
  clean position has an outflow within 28 days of each receipt.
- Similar payments are keyed by payee account (1% within 30 days); clean data keeps every payee
  2% / 35 days away from that, except the two deliberate near-misses.
- Scenarios that stop early: negative list and category mismatch after the approval (the project
  is halted), contract-before-approval after the late approval, debarred vendor after the award
  (the debarment rule also reads contracts and payments, so going on would raise it again). The
  others run their whole lifecycle and stay clean apart from their one rule.
- Where a scenario unavoidably trips a second rule it is expected too: paying above the contract
  also leaves no retention; a negative-list project never matches its fund's purpose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .dataset import CleanScenario, DemoDataset, ExpectedViolation, generate

__all__ = ["CleanScenario", "DemoDataset", "ExpectedViolation", "generate"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `fundtrail` starts without building the generator's tables.
    if name in __all__:
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(name)
