"""The event-type registry is complete, and its completeness check catches what a new type lacks."""

from __future__ import annotations

import dataclasses
from typing import Any, get_args

import pytest

from fundtrail_schemas import examples as examples_module
from fundtrail_schemas.events import (
    CASE_EVENTS,
    EVENT_TYPES,
    LIFECYCLE_EVENTS,
    REFERENCE_EVENTS,
    VIOLATION_EVENTS,
    SourceEvent,
    event_key,
)
from fundtrail_schemas.eventspec import (
    SPECS,
    EventSpec,
    Family,
    bureau_specs,
    business_key,
    completeness_problems,
    message_key,
    natural_key,
    spec_of,
    trail_columns,
    vendor_of,
)
from fundtrail_schemas.examples import golden_events, load_examples

BUREAU_MODELS = get_args(get_args(SourceEvent)[0])


def _problems(specs: list[EventSpec], *, examples: set[str] | None = None) -> list[str]:
    golden = set(load_examples()) if examples is None else examples
    return completeness_problems(specs, EVENT_TYPES, BUREAU_MODELS, golden)


def _replace(name: str, **changes: Any) -> list[EventSpec]:
    return [dataclasses.replace(s, **changes) if s.name == name else s for s in SPECS.values()]


def test_the_registry_is_complete() -> None:
    # Golden examples in code and on disk (`make schemas` writes the latter).
    assert _problems(list(SPECS.values())) == []
    assert _problems(list(SPECS.values()), examples={e.event_type for e in golden_events()}) == []


@pytest.mark.parametrize(
    ("specs", "examples", "expected"),
    [
        (_replace("PaymentDisbursed", vendor="payee_id"), None, "PaymentDisbursed: the spec names fields the model "
                                                                 "lacks: payee_id"),
        (_replace("ContractAmended", business_key=("contract_id", "amendment_no")), None,
         "ContractAmended: the spec names fields the model lacks: amendment_no"),
        ([s for s in SPECS.values() if s.name != "BudgetAdjusted"], None,
         "BudgetAdjusted: a model without a spec"),
        ([*SPECS.values(), EventSpec("GrantRevoked", Family.LIFECYCLE, True, natural_key=("x",), mix_weight=1)],
         None, "GrantRevoked: a spec without a model"),
        (list(SPECS.values()), set(SPECS) - {"ProjectSettled"}, "ProjectSettled: no golden example"),
        (_replace("ViolationRaised", bureau=True), None, "ViolationRaised: bureau=True disagrees with the SourceEvent"),
        (_replace("FundReturned", natural_key=()), None, "FundReturned: bureaus publish it but it has no natural key"),
        (_replace("VendorDebarred", mix_weight=0.0), None, "VendorDebarred: bureaus publish it but its mix weight"),
        (_replace("RelationDeclared", vendor=None), None, "RelationDeclared: reference data without a vendor field"),
        (_replace("VendorRegistered", family=Family.LIFECYCLE), None,
         "VendorRegistered: family lifecycle but the model is not a FundEventBase"),
    ],
)
def test_an_incomplete_registry_is_reported(specs: list[EventSpec], examples: set[str] | None,
                                            expected: str) -> None:
    problems = _problems(specs, examples=examples)
    assert any(p.startswith(expected) for p in problems), problems


def test_the_contract_lists_are_derived_from_the_registry() -> None:
    by_family = {f: [s.name for s in SPECS.values() if s.family is f] for f in Family}
    assert [m.__name__ for m in LIFECYCLE_EVENTS] == by_family[Family.LIFECYCLE]
    assert [m.__name__ for m in REFERENCE_EVENTS] == by_family[Family.REFERENCE]
    assert [m.__name__ for m in CASE_EVENTS] == by_family[Family.CASE]
    assert [m.__name__ for m in VIOLATION_EVENTS] == by_family[Family.VIOLATION]
    assert {s.name for s in bureau_specs()} == {m.__name__ for m in BUREAU_MODELS}
    assert all(spec_of(name).model is model for name, model in EVENT_TYPES.items())
    with pytest.raises(KeyError, match="'GrantRevoked' is not an event type"):
        spec_of("GrantRevoked")


def test_business_and_natural_keys_are_the_same_fields_where_both_exist() -> None:
    # One key function: an imported row's source record key equals the fact's business key.
    keyed = 0
    for ev in golden_events():
        bk = business_key(ev)
        if bk is None:
            continue
        keyed += 1
        assert natural_key(ev.event_type, ev.model_dump()) == bk[0]
        assert bk[1] == spec_of(ev.event_type).business_key[-1]
    assert keyed == 9


def test_keys_are_those_the_stored_facts_carry() -> None:
    # Business keys are stored in processed_event: their text must not change with the refactor.
    by_type = {e.event_type: e for e in golden_events()}
    assert business_key(by_type["FundTransferred"]) == ("FundTransferred:江财农〔2026〕18号:ZF-440705-2026-031",
                                                        "transfer_id")
    assert business_key(by_type["PaymentDisbursed"]) == ("PaymentDisbursed:ZF-440705101-2026-0311", "payment_id")
    assert business_key(by_type["FundAllocated"]) is None
    assert natural_key("ProjectSettled", {"project_id": "P-1", "closed": True}) == "ProjectSettled:P-1:true"
    assert natural_key("ProjectSettled", {"project_id": "P-1"}) is None
    assert natural_key("ViolationRaised", {"violation_id": "x"}) is None


def test_accessors_read_an_event_and_its_json_alike() -> None:
    for ev in golden_events():
        data = ev.model_dump(mode="json")
        assert vendor_of(ev) == vendor_of(data)
        assert trail_columns(ev) == trail_columns(data)
        assert event_key(ev) == message_key(data).encode()
    by_type = {e.event_type: e for e in golden_events()}
    assert vendor_of(by_type["ProcurementAwarded"]) == "91440705MA5XYZ0012"
    assert trail_columns(by_type["PaymentDisbursed"]) == {
        "payment_id": "ZF-440705101-2026-0311", "contract_id": "HT-440705101-2026-007-01",
        "vendor_id": "91440705MA5XYZ0012"}
    assert event_key(by_type["VendorDebarred"]) == b"vendor:91440703MA5BAD0099"
    assert vendor_of({"event_type": "NoSuchType", "vendor_id": "V"}) is None


def test_writing_examples_refuses_a_type_without_one(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = EventSpec("GrantRevoked", Family.LIFECYCLE, True, natural_key=("x",), mix_weight=1)
    monkeypatch.setattr(examples_module, "SPECS", {**SPECS, "GrantRevoked": extra})
    with pytest.raises(ValueError, match="no golden example for GrantRevoked"):
        examples_module.write_examples(tmp_path)
    assert list(tmp_path.iterdir()) == []
