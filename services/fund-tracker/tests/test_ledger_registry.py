"""Every event type bureaus publish has a ledger handler; a type without one is refused, never ignored."""

from __future__ import annotations

import dataclasses

import pytest

from fundtrail_schemas.events import ViolationRaised
from fundtrail_schemas.eventspec import SPECS, bureau_specs
from fundtrail_schemas.examples import golden_events
from fundtrail_schemas.ledger import Ledger, UnhandledEventType, counterparty_key, handles, missing_handlers


def test_every_bureau_type_has_a_ledger_handler() -> None:
    assert missing_handlers() == []


def test_a_type_without_a_handler_fails_the_completeness_check() -> None:
    # As if ViolationRaised became a type bureaus publish and nobody wrote its ledger handler.
    specs = [dataclasses.replace(s, bureau=True) if s.name == "ViolationRaised" else s for s in SPECS.values()]
    assert missing_handlers(specs) == ["ViolationRaised"]


def test_apply_refuses_a_type_without_a_handler() -> None:
    (violation,) = (e for e in golden_events() if isinstance(e, ViolationRaised))
    with pytest.raises(UnhandledEventType, match="no ledger handler for ViolationRaised"):
        Ledger().apply(violation)


def test_a_type_gets_one_handler() -> None:
    with pytest.raises(ValueError, match="PaymentDisbursed has two ledger handlers"):
        handles(type(next(e for e in golden_events() if e.event_type == "PaymentDisbursed")))(lambda *_: None)


def test_every_golden_bureau_event_applies() -> None:
    bureau = {s.name for s in bureau_specs()}
    ledger = Ledger()
    applied = [ledger.apply(e) for e in golden_events() if e.event_type in bureau]
    assert len(applied) == len(bureau)
    # Money moved to the counterparty the registry names for allocations, transfers and returns.
    for e in golden_events():
        key = counterparty_key(e)
        if key is not None:
            assert ledger.positions[key].received_fen > 0
