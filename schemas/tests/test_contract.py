"""Contract tests: every golden example is valid; every kind of bad input is refused clearly."""

from __future__ import annotations

import json

import pytest

from fundtrail_schemas.decode import MAX_EVENT_BYTES, ReasonCode, Rejection, decode_event, parse_object
from fundtrail_schemas.events import EVENT_TYPES, Envelope, derive_event_id, event_key
from fundtrail_schemas.examples import example_versions, golden_events, load_examples
from fundtrail_schemas.jsonschema import drifted
from fundtrail_schemas.types import Level, level_of_region, parent_region, region_within

EXAMPLES = load_examples()


def test_every_event_type_has_a_golden_example() -> None:
    assert set(EXAMPLES) == set(EVENT_TYPES)


def test_golden_files_match_the_generator() -> None:
    generated = {e.event_type: json.loads(e.model_dump_json()) for e in golden_events()}
    assert generated == EXAMPLES, "run `make schemas` to refresh schemas/examples"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_golden_example_is_valid(event_type: str) -> None:
    result = parse_object(EXAMPLES[event_type], source_only=False)
    assert isinstance(result, Envelope), result
    assert result.event_type == event_type
    # Round trip through the wire format is lossless.
    again = decode_event(result.model_dump_json().encode(), source_only=False)
    assert again == result


@pytest.mark.parametrize("version", example_versions())
def test_every_earlier_schema_version_still_loads(version: int) -> None:
    examples = load_examples(version)
    assert examples
    for event_type, obj in examples.items():
        assert isinstance(parse_object(obj, source_only=False), EVENT_TYPES[event_type])


def test_json_schema_files_match_models() -> None:
    assert drifted() == [], "run `make schemas`"


def _reject(obj: object, source_only: bool = True) -> Rejection:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    result = decode_event(raw, source_only=source_only)
    assert isinstance(result, Rejection), f"expected a rejection, got {result!r}"
    return result


def _payment(**changes: object) -> dict[str, object]:
    return {**EXAMPLES["PaymentDisbursed"], **changes}


def test_negative_amount_is_refused() -> None:
    r = _reject(_payment(amount_fen=-100))
    assert r.reason is ReasonCode.INVALID_FIELD
    assert [e.field for e in r.errors] == ["amount_fen"]
    assert "negative" in r.errors[0].message or "greater than 0" in r.errors[0].message


def test_float_amount_is_refused_with_plain_words() -> None:
    r = _reject(_payment(amount_fen=372000.5))
    assert r.errors[0].field == "amount_fen"
    assert "integer" in r.errors[0].message and "fen" in r.errors[0].message


def test_string_amount_is_refused() -> None:
    r = _reject(_payment(amount_fen="37200000"))
    assert r.errors[0].field == "amount_fen"


@pytest.mark.parametrize("code", ["44070", "4407051011", "abcdef", "000000", "4407051012011"])
def test_bad_region_code_is_refused(code: str) -> None:
    r = _reject(_payment(region_code=code))
    assert "region_code" in {e.field for e in r.errors}


def test_region_code_must_match_level() -> None:
    r = _reject(_payment(region_code="440705"))  # a county code on a town event
    assert "denotes level county" in r.message


def test_naive_datetime_is_refused() -> None:
    r = _reject(_payment(occurred_at="2026-04-21T09:30:00"))
    assert r.errors[0].field == "occurred_at"
    assert "timezone" in r.errors[0].message


def test_unknown_type_is_refused() -> None:
    r = _reject(_payment(event_type="PaymentTeleported"))
    assert r.reason is ReasonCode.UNKNOWN_TYPE
    assert "PaymentTeleported" in r.message


def test_violation_events_are_not_bureau_input() -> None:
    r = _reject(EXAMPLES["ViolationRaised"])
    assert r.reason is ReasonCode.NOT_ALLOWED_HERE


@pytest.mark.parametrize("field", ["event_id", "occurred_at", "fund_doc_no", "amount_fen", "invoice_no"])
def test_missing_field_is_named(field: str) -> None:
    obj = _payment()
    del obj[field]
    r = _reject(obj)
    assert (field, "is required but missing") in {(e.field, e.message) for e in r.errors}


def test_unsupported_schema_version() -> None:
    r = _reject(_payment(schema_version=99))
    assert r.reason is ReasonCode.UNSUPPORTED_SCHEMA_VERSION
    assert "99" in r.message


def test_unknown_field_is_refused() -> None:
    r = _reject(_payment(amount_yuan=3))
    assert r.errors[0].field == "amount_yuan"


def test_malformed_json_and_non_objects() -> None:
    assert _reject(b"{not json").reason is ReasonCode.MALFORMED_JSON
    assert _reject(b"\xff\xfe").reason is ReasonCode.MALFORMED_JSON
    assert _reject([1, 2]).reason is ReasonCode.NOT_AN_OBJECT


def test_oversized_message_is_refused_before_parsing() -> None:
    r = _reject(b"{" + b" " * MAX_EVENT_BYTES + b"}")
    assert r.reason is ReasonCode.OVERSIZED


def test_published_before_occurred_is_refused() -> None:
    r = _reject(_payment(occurred_at="2026-05-01T00:00:00+00:00", published_at="2026-04-01T00:00:00+00:00"))
    assert "published" in r.message


def test_transfer_must_go_exactly_one_level_down() -> None:
    obj = {**EXAMPLES["FundTransferred"], "to_level": "village", "to_region_code": "440705101201"}
    assert "directly below" in _reject(obj).message
    obj = {**EXAMPLES["FundTransferred"], "to_region_code": "440781101"}
    assert "inside" in _reject(obj).message


def test_award_winner_must_be_a_bidder() -> None:
    obj = {**EXAMPLES["ProcurementAwarded"], "winner_vendor_id": "NOT-A-BIDDER"}
    assert "winner" in _reject(obj).message


def test_deterministic_event_ids() -> None:
    a = derive_event_id("440705-CZJ", "payments.xlsx:ZF-1")
    assert a == derive_event_id("440705-CZJ", "payments.xlsx:ZF-1")
    assert a != derive_event_id("440705-CZJ", "payments.xlsx:ZF-2")


def test_keys_keep_a_fund_together() -> None:
    events = [e for e in golden_events() if e.fund_doc_no]
    assert {event_key(e) for e in events} == {"江财农〔2026〕18号".encode()}
    vendor = next(e for e in golden_events() if e.event_type == "VendorRegistered")
    assert event_key(vendor).startswith(b"vendor:")


def test_region_helpers() -> None:
    assert level_of_region("440700") is Level.CITY
    assert level_of_region("440705") is Level.COUNTY
    assert level_of_region("440705101") is Level.TOWN
    assert level_of_region("440705101201") is Level.VILLAGE
    assert parent_region("440705101201") == "440705101"
    assert parent_region("440705") == "440700"
    assert region_within("440705101201", "440705")
    assert region_within("440705101201", "440700")
    assert not region_within("440781101", "440705")
