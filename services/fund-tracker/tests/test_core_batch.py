"""Unit tests of validation, rejection mapping, dedup, business identity and parking (pure core)."""

from __future__ import annotations

import gc
import json
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundtrail_schemas.decode import MAX_EVENT_BYTES, ReasonCode, Rejection
from fundtrail_schemas.enriched import DeadLetter, EnrichedEvent
from fundtrail_schemas.events import Envelope
from fundtrail_schemas.examples import golden_events, load_examples
from fundtrail_schemas.ledger import Ledger
from fundtrail_tracker.core.batch import Candidate, Rejected, Snapshot, Source, plan_batch, waiting_key
from fundtrail_tracker.core.outputs import enriched_json
from fundtrail_tracker.core.validation import Valid, decode_message
from fundtrail_tracker.service import dead_letter_of

NOW = datetime(2026, 11, 1, tzinfo=UTC)
SKEW = timedelta(minutes=10)
EXAMPLES = load_examples()
PAYMENT = EXAMPLES["PaymentDisbursed"]
FUND = PAYMENT["fund_doc_no"]


def raw(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def decode(value: bytes, **kw: Any) -> Valid | Rejection:
    return decode_message(value, now=NOW, max_future_skew=SKEW, **kw)[0]


def reason(value: bytes, **kw: Any) -> ReasonCode:
    result = decode(value, **kw)
    assert isinstance(result, Rejection), result
    return result.reason


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"{not json", ReasonCode.MALFORMED_JSON),
        (b"\xff\xfe\x00", ReasonCode.MALFORMED_JSON),
        (b'{"amount_fen": NaN}', ReasonCode.MALFORMED_JSON),
        (b"[1, 2]", ReasonCode.NOT_AN_OBJECT),
        (raw(with_(PAYMENT, event_type="PaymentMade")), ReasonCode.UNKNOWN_TYPE),
        (raw(with_(PAYMENT, schema_version=2)), ReasonCode.UNSUPPORTED_SCHEMA_VERSION),
        (raw(with_(PAYMENT, amount_fen=-100)), ReasonCode.INVALID_FIELD),
        (raw(with_(PAYMENT, amount_fen=12.5)), ReasonCode.INVALID_FIELD),
        (raw(with_(PAYMENT, amount_fen="1250")), ReasonCode.INVALID_FIELD),
        (raw(with_(PAYMENT, occurred_at="2027-01-01T00:00:00+00:00", published_at="2027-01-01T00:01:00+00:00")),
         ReasonCode.FUTURE_TIMESTAMP),
        (raw(with_(PAYMENT, published_at="2026-11-01T00:30:00+00:00")), ReasonCode.FUTURE_TIMESTAMP),
        (raw(with_(PAYMENT, purpose="a\u0000b")), ReasonCode.INVALID_FIELD),
        (raw(EXAMPLES["ViolationRaised"]), ReasonCode.NOT_ALLOWED_HERE),
        (b" " * (MAX_EVENT_BYTES + 1), ReasonCode.OVERSIZED),
    ],
    ids=["malformed", "not-utf8", "nan", "array", "unknown-type", "schema-v2", "negative", "float", "string-amount",
         "future-occurred", "future-published", "nul", "violation-on-raw", "oversized"],
)
def test_every_kind_of_bad_message_has_a_reason(value: bytes, expected: ReasonCode) -> None:
    assert reason(value) is expected


def test_a_rejection_keeps_the_event_id_when_it_can_be_read() -> None:
    result, hint = decode_message(raw(with_(PAYMENT, amount_fen=-1)), now=NOW, max_future_skew=SKEW)
    assert isinstance(result, Rejection) and hint == uuid.UUID(PAYMENT["event_id"])
    assert any(e.field == "amount_fen" for e in result.errors)


def test_a_literal_backslash_u0000_is_text_not_nul() -> None:
    assert isinstance(decode(raw(with_(PAYMENT, purpose="path\\u0000name"))), Valid)


def test_every_golden_bureau_event_is_valid_and_keeps_its_wire_form() -> None:
    for ev in golden_events()[:14]:
        result = decode(ev.model_dump_json().encode())
        assert isinstance(result, Valid), result
        assert result.event == ev
        assert json.loads(result.payload) == json.loads(ev.model_dump_json())


def test_dead_letter_carries_original_bytes_and_position() -> None:
    original = b"{broken"
    result = decode(original)
    assert isinstance(result, Rejection)
    trace = {"traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"}
    source = Source("fundtrail.events.raw", 3, 42, b"k", original, trace)
    record = dead_letter_of(Rejected(source, result, None), "fundtrail.events.dlq", NOW)
    letter = DeadLetter.model_validate_json(record.value)
    assert letter.original == original and letter.reason is ReasonCode.MALFORMED_JSON
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("fundtrail.events.raw", 3, 42)
    assert letter.message and letter.service == "fund-tracker"
    assert (record.topic, record.key) == ("fundtrail.events.dlq", b"k")
    assert record.headers == [("traceparent", trace["traceparent"].encode())]  # the trace goes on


def test_enriched_json_is_a_valid_enriched_event() -> None:
    ev = golden_events()[6]
    ledger = Ledger()
    for e in golden_events()[:6]:
        ledger.apply(e)
    t = ledger.apply(ev)
    value = enriched_json(ev.model_dump_json().encode(), 17, NOW, t.before.model_dump_json().encode(),
                          t.after.model_dump_json().encode(), "ab" * 16)
    parsed = EnrichedEvent.model_validate_json(value)
    assert parsed.event == ev and parsed.sequence == 17 and parsed.trace_id == "ab" * 16
    assert parsed.before == t.before and parsed.after == t.after


# ----------------------------------------------------------------------------------- batches


def cand(ev: Envelope, offset: int = 0, parked_at: datetime | None = None) -> Candidate:
    payload = ev.model_dump_json().encode()
    return Candidate(Source("fundtrail.events.raw", 0, offset, None, payload, parked_at=parked_at),
                     Valid(ev, payload))


GOLDEN = golden_events()
ALLOC, TRANSFER, APPROVAL, PAYMENT_EV = GOLDEN[0], GOLDEN[1], GOLDEN[2], GOLDEN[6]


def plan(cands: list[Candidate], snap: Snapshot | None = None, park: timedelta = timedelta(hours=1), **kw: Any):
    return plan_batch(cands, snap or Snapshot(Ledger()), now=NOW, park_timeout=park, **kw)


def test_replayed_event_changes_nothing() -> None:
    p = plan([cand(ALLOC), cand(ALLOC, 1)])
    assert len(p.accepted) == 1 and p.duplicates == 1
    p2 = plan([cand(ALLOC)], Snapshot(Ledger(), processed={ALLOC.event_id}))
    assert not p2.accepted and p2.duplicates == 1


def test_second_event_id_for_the_same_payment_is_rejected() -> None:
    twin = PAYMENT_EV.model_copy(update={"event_id": uuid.uuid4()})
    p = plan([cand(ALLOC), cand(PAYMENT_EV, 1), cand(twin, 2)])
    assert [a.candidate.event_id for a in p.accepted] == [ALLOC.event_id, PAYMENT_EV.event_id]
    (r,) = p.rejected
    assert r.rejection.reason is ReasonCode.INVALID_FIELD and r.rejection.errors[0].field == "payment_id"
    # Already stored by another event id: same outcome.
    snap = Snapshot(Ledger(), business_keys={f"PaymentDisbursed:{PAYMENT_EV.payment_id}": uuid.uuid4()})
    p2 = plan([cand(ALLOC), cand(twin)], snap)
    assert len(p2.rejected) == 1


def test_event_for_unknown_fund_is_parked_then_released_by_its_allocation() -> None:
    p = plan([cand(TRANSFER)])
    assert not p.accepted and not p.rejected
    (parked,) = p.to_park
    assert parked.waiting_for == waiting_key(FUND)
    # The allocation arrives later; the parked transfer comes back from the database with it.
    back = cand(TRANSFER, parked_at=NOW - timedelta(minutes=5))
    p2 = plan([cand(ALLOC)], Snapshot(Ledger(), parked={TRANSFER.event_id}), released={FUND: [back]})
    assert [a.candidate.event_id for a in p2.accepted] == [ALLOC.event_id, TRANSFER.event_id]
    assert p2.unpark == [TRANSFER.event_id] and not p2.to_park


def test_allocation_later_in_the_same_batch_releases_waiting_events() -> None:
    p = plan([cand(TRANSFER), cand(APPROVAL, 1), cand(ALLOC, 2)])
    assert [a.candidate.event_id for a in p.accepted] == [ALLOC.event_id, TRANSFER.event_id, APPROVAL.event_id]
    assert not p.to_park


def test_redelivered_parked_event_is_not_parked_twice() -> None:
    p = plan([cand(TRANSFER)], Snapshot(Ledger(), parked={TRANSFER.event_id}))
    assert not p.to_park and not p.rejected and not p.accepted


def test_parked_event_past_the_timeout_is_rejected_as_unknown_reference() -> None:
    old = cand(TRANSFER, parked_at=NOW - timedelta(hours=2))
    p = plan([old], Snapshot(Ledger(), parked={TRANSFER.event_id}))
    (r,) = p.rejected
    assert r.rejection.reason is ReasonCode.UNKNOWN_REFERENCE
    assert p.unpark == [TRANSFER.event_id]


def test_zero_park_timeout_rejects_unknown_funds_at_once() -> None:
    p = plan([cand(TRANSFER)], park=timedelta(0))
    assert [r.rejection.reason for r in p.rejected] == [ReasonCode.UNKNOWN_REFERENCE] and not p.to_park


def test_unknown_project_is_not_parked() -> None:
    p = plan([cand(ALLOC), cand(PAYMENT_EV, 1)])
    assert len(p.accepted) == 2
    after = p.accepted[1].transition.after
    assert after.project is not None and not after.project.approved


def test_an_event_parked_and_redelivered_is_released_once() -> None:
    # Parked by an earlier batch, redelivered (the offset was not committed) into the batch that
    # brings its allocation: it waits here and comes back from the database too.
    back = cand(TRANSFER, 9, parked_at=NOW - timedelta(minutes=5))
    p = plan([cand(TRANSFER), cand(ALLOC, 1)], Snapshot(Ledger(), parked={TRANSFER.event_id}),
             released={FUND: [back]})
    assert [a.candidate.event_id for a in p.accepted] == [ALLOC.event_id, TRANSFER.event_id]
    assert p.duplicates == 1 and p.unpark == [TRANSFER.event_id]


def test_a_decided_batch_is_freed_by_reference_counting_alone() -> None:
    # Reference cycles in the plan would keep every batch alive until the cyclic collector walks
    # them: pauses of tens of milliseconds in the worker (see plan_batch).
    cands = [cand(TRANSFER), cand(APPROVAL, 1), cand(ALLOC, 2), cand(PAYMENT_EV, 3)]
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        p = plan(cands)
        assert len(p.accepted) == 4
        del p
        assert gc.collect() == 0
    finally:
        if was:
            gc.enable()


@settings(max_examples=100, deadline=None)
@given(st.permutations(GOLDEN[:11]), st.lists(st.integers(1, 4), min_size=1, max_size=12))
def test_parking_and_batching_do_not_change_the_final_state(order: list[Envelope], cuts: list[int]) -> None:
    """Fund events arriving before their allocation end up in the same state as in-order processing."""
    import itertools

    store = _Store()
    sizes = itertools.cycle(cuts)
    i = 0
    while i < len(order):
        batch = order[i : i + next(sizes)]
        i += len(batch)
        store.run([cand(e) for e in batch])
    assert not store.parked
    reference = _Store()
    reference.run([cand(e) for e in GOLDEN[:11]])
    assert store.ledger_state() == reference.ledger_state()
    assert store.processed == reference.processed


class _Store:
    """A minimal in-memory stand-in for the database side of a batch (ledger rows, ids, parking)."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.processed: set[uuid.UUID] = set()
        self.keys: dict[str, uuid.UUID] = {}
        self.parked: dict[uuid.UUID, tuple[str, Candidate]] = {}

    def run(self, cands: list[Candidate]) -> None:
        funds = {c.valid.event.fund_doc_no for c in cands if c.valid.event.event_type == "FundAllocated"}
        released: dict[str, list[Candidate]] = {}
        for w, c in self.parked.values():
            f = w.removeprefix("fund:")
            if f in funds:
                released.setdefault(f, []).append(c)
        snap = Snapshot(self.ledger, set(self.processed), dict(self.keys), set(self.parked))
        p = plan_batch(cands, snap, now=NOW, park_timeout=timedelta(hours=1), released=released)
        for a in p.accepted:
            self.processed.add(a.candidate.event_id)
            if a.business_key:
                self.keys[a.business_key] = a.candidate.event_id
        for t in p.to_park:
            self.parked[t.candidate.event_id] = (t.waiting_for, cand(t.candidate.valid.event, parked_at=NOW))
        for eid in p.unpark:
            del self.parked[eid]
        assert not p.rejected

    def ledger_state(self) -> Any:
        led = self.ledger
        return (
            {k: asdict(r.state) for k, r in led.funds.items()},
            {k: asdict(v) for k, v in led.positions.items()},
            {k: (asdict(r.state), r.settlement_amount_fen) for k, r in led.projects.items()},
            {k: asdict(r.state) for k, r in led.contracts.items()},
            {k: asdict(v) for k, v in led.vendors.items()},
        )
