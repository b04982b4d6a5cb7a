"""Compliance reads the event-type registry: reference data, the vendor of an event, the benchmark mix."""

from __future__ import annotations

from typing import Any

import pytest

from fundtrail_compliance.bench import MIX
from fundtrail_compliance.core.reference import REFERENCE_TYPES, ReferenceData, event_vendor
from fundtrail_schemas.eventspec import SPECS, Family, bureau_specs
from fundtrail_schemas.examples import load_examples


def test_every_reference_type_is_taken_in() -> None:
    # A reference type added to the registry without a branch in ReferenceData.apply fails here.
    golden = load_examples()
    assert REFERENCE_TYPES == {s.name for s in SPECS.values() if s.family is Family.REFERENCE}
    data = ReferenceData()
    for name in sorted(REFERENCE_TYPES):
        assert data.apply(golden[name]) is True
    assert len(data.drain()) == len(REFERENCE_TYPES)


def test_a_type_that_is_not_reference_data_is_refused() -> None:
    with pytest.raises(ValueError, match="PaymentDisbursed is not reference data"):
        ReferenceData().apply(load_examples()["PaymentDisbursed"])


@pytest.mark.parametrize(("event_type", "vendor"), [
    ("ProcurementAwarded", "91440705MA5XYZ0012"), ("ContractSigned", "91440705MA5XYZ0012"),
    ("PaymentDisbursed", "91440705MA5XYZ0012"), ("VendorDebarred", "91440703MA5BAD0099"),
    ("RelationDeclared", "91440705MA5REL0077"), ("ContractAmended", None), ("ViolationRaised", None),
])
def test_the_vendor_of_an_event(event_type: str, vendor: str | None) -> None:
    ev: dict[str, Any] = load_examples()[event_type]
    assert event_vendor(ev) == vendor


def test_the_benchmark_mix_covers_every_bureau_type() -> None:
    assert [name for name, _ in MIX] == [s.name for s in bureau_specs()]
    assert all(weight > 0 for _, weight in MIX)
