"""The parts of the adapters and the replay that need no broker or database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from fundtrail_compliance import scenario as sc
from fundtrail_compliance.adapters.kafka import Inbound
from fundtrail_compliance.adapters.postgres import Verdict
from fundtrail_compliance.core.engine import Engine
from fundtrail_compliance.logreader import _sequence
from fundtrail_compliance.replay import diff, parse_bound
from fundtrail_compliance.service import BadEnriched, dead_letter, decode_enriched, violation_records
from fundtrail_schemas.decode import ReasonCode
from fundtrail_schemas.enriched import DeadLetter, EnrichedEvent
from fundtrail_schemas.events import event_key

G = sc.golden()
PAY = G["PaymentDisbursed"]


def test_decode_accepts_what_the_tracker_writes() -> None:
    doc = sc.enriched(PAY)
    model = EnrichedEvent.model_validate(doc)  # the scenario documents are valid contract documents
    assert decode_enriched(model.model_dump_json().encode())["event"]["event_id"] == PAY["event_id"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", ReasonCode.MALFORMED_JSON),
        (b"[1, 2]", ReasonCode.NOT_AN_OBJECT),
        (orjson.dumps({"event": {"event_id": "x"}}), ReasonCode.INVALID_FIELD),
        (orjson.dumps({"event": {"event_id": str(uuid.uuid4()), "event_type": "Nope"}}), ReasonCode.UNKNOWN_TYPE),
        (orjson.dumps({**sc.enriched(PAY), "after": None}), ReasonCode.INVALID_FIELD),
    ],
)
def test_decode_rejects_with_a_reason(raw: bytes, reason: ReasonCode) -> None:
    with pytest.raises(BadEnriched) as err:
        decode_enriched(raw)
    assert err.value.reason is reason


def test_dead_letter_keeps_the_original_bytes() -> None:
    inb = Inbound("fundtrail.events.enriched", 2, 41, b"k", b"{broken", (("traceparent", b"00-abc"),))
    out = dead_letter(inb, ReasonCode.MALFORMED_JSON, "not JSON")
    dl = DeadLetter.model_validate_json(out.value)
    assert dl.original == b"{broken" and dl.source_offset == 41 and dl.reason is ReasonCode.MALFORMED_JSON
    assert out.topic == "fundtrail.violations.dlq" and out.headers == [("traceparent", b"00-abc")]


def test_violation_goes_to_all_and_department_topics_keyed_by_fund(packs) -> None:
    v = Engine(packs).process(sc.enriched(sc.variant(PAY, 1, handler_id=PAY["approver_id"]))).violations[0]
    records = violation_records(v, [])
    assert [r.topic for r in records] == ["fundtrail.violations", "fundtrail.violations.inspection"]
    assert {r.key for r in records} == {event_key(v)} == {PAY["fund_doc_no"].encode()}


def test_sequence_is_read_without_parsing() -> None:
    doc = sc.enriched(sc.variant(PAY, 1, purpose='say "sequence": 99'), sequence=1234)
    assert _sequence(orjson.dumps(doc)) == 1234
    assert _sequence(b"{}") == -1


def test_diff_counts_new_vanished_changed(packs) -> None:
    eng = Engine(packs)
    def handler_is_approver(n: int) -> Any:
        out = eng.process(sc.enriched(sc.variant(PAY, n, handler_id=PAY["approver_id"]))).violations
        return next(v for v in out if v.rule_id == "inspection.same_handler_approver")

    same, fresh = handler_is_approver(1), handler_is_approver(2)
    at = datetime(2026, 4, 21, tzinfo=UTC)

    def verdict(v: Any, **changes: Any) -> Verdict:
        base = dict(violation_id=v.violation_id, rule_id=v.rule_id, rule_version=v.rule_version,
                    triggering_event_id=v.triggering_event_id, severity=v.severity.value, status="raised",
                    occurred_at=at, evidence=v.evidence.model_dump(mode="json"))
        return Verdict(**{**base, **changes})

    gone = verdict(same, triggering_event_id=uuid.uuid4(), rule_id="finance.duplicate_invoice")
    candidate = {(v.rule_id, str(v.triggering_event_id)): v for v in (same, fresh)}
    report = diff(candidate, [verdict(same, severity="medium"), gone])
    assert report["totals"] == {"new": 1, "vanished": 1, "changed": 1, "unchanged": 0}
    assert report["per_rule"]["inspection.same_handler_approver"] == {
        "new": 1, "vanished": 0, "changed": 1, "unchanged": 0}
    assert report["examples"]["changed"][0]["changes"] == ["severity medium → high"]
    assert diff(candidate, [verdict(same), verdict(fresh)])["totals"]["unchanged"] == 2


def test_range_bounds_are_china_dates() -> None:
    assert parse_bound("2026-01-01") == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    assert parse_bound("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_bound(None) is None


def test_batch_phases_are_exported_under_the_names_the_latency_report_reads() -> None:
    from prometheus_client import CollectorRegistry

    from fundtrail_compliance.adapters.metrics import PHASES, Metrics
    from fundtrail_runtime.worker import BatchPhases

    registry = CollectorRegistry()
    metrics = Metrics(registry)
    phases = BatchPhases(PHASES, metrics.phase_seconds, metrics.phase_cpu_seconds)
    phases.add("evaluate", 0.2, 0.15)
    assert registry.get_sample_value("fundtrail_compliance_phase_cpu_seconds_total", {"phase": "evaluate"}) == 0.15
    assert registry.get_sample_value("fundtrail_compliance_phase_seconds_total", {"phase": "evaluate"}) == 0.2


def test_a_fund_is_owned_by_the_partition_the_tracker_produces_it_to() -> None:
    from fundtrail_compliance.adapters.kafka import partition_of
    from fundtrail_compliance.adapters.postgres import enriched_key
    from fundtrail_runtime.kafka_sink import AiokafkaSink
    from fundtrail_schemas.events import any_event_adapter, event_key

    sink = AiokafkaSink(None)
    funds = [f"江财农〔2026〕{n}号".encode() for n in range(200)]
    placed = {sink._partition("fundtrail.events.enriched", list(range(6)), f) for f in funds}
    assert placed == set(range(6))  # the keys spread: the check below compares real choices
    for f in funds:
        assert partition_of(f, 6) == sink._partition("fundtrail.events.enriched", list(range(6)), f)
    for ev in G.values():  # the key a judged event is owned by is the one it was produced with
        assert enriched_key(ev).encode() == event_key(any_event_adapter.validate_python(ev))
