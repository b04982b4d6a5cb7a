"""Trail leaves: the canonical bytes of each appended entry, and the columns to query them by.

Leaf format (what `trail_entry.leaf_data` holds and the Merkle leaf hash covers):
UTF-8 JSON of the object {"entry_id", "event_type", "kind", "payload", "trace_id"} with keys sorted
at every depth, no insignificant whitespace, non-ASCII characters written as themselves (not
escaped), integers in decimal; `kind` is "event", "violation" or "case"; `payload` is the event in
its wire form; `trace_id` is 32 lowercase hex digits or null. The leaf hash is
SHA-256(0x00 || leaf_data) (RFC 9162). The stored bytes are authoritative: verifiers hash them,
they never re-serialize the payload.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fundtrail_schemas import merkle
from fundtrail_schemas.events import (
    Envelope,
    PaymentDisbursed,
    ViolationRaised,
)

from .ledger import contract_id_of, vendor_id_of

try:
    import orjson

    def canonical_json(obj: Any) -> bytes:
        """Canonical JSON bytes (sorted keys, compact, UTF-8)."""
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)

    _loads: Any = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment

    def canonical_json(obj: Any) -> bytes:
        """Canonical JSON bytes (sorted keys, compact, UTF-8)."""
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    _loads = json.loads


class EntryKind:
    EVENT = "event"
    VIOLATION = "violation"
    CASE = "case"


@dataclass(frozen=True, slots=True)
class Links:
    """Query columns an entry inherits from the entry it refers to."""

    fund_doc_no: str | None = None
    project_id: str | None = None
    payment_id: str | None = None
    contract_id: str | None = None
    vendor_id: str | None = None
    region_code: str | None = None


@dataclass(frozen=True, slots=True)
class TrailItem:
    """One entry to append; the writer gives it its sequence number."""

    kind: str
    entry_id: uuid.UUID
    event_type: str
    fund_doc_no: str | None
    project_id: str | None
    payment_id: str | None
    contract_id: str | None
    vendor_id: str | None
    violation_id: uuid.UUID | None
    region_code: str
    occurred_at: datetime
    leaf_data: bytes
    leaf_hash: bytes
    trace_id: str | None

    @property
    def links(self) -> Links:
        """The columns later entries that refer to this one inherit."""
        return Links(self.fund_doc_no, self.project_id, self.payment_id, self.contract_id, self.vendor_id,
                     self.region_code)


def leaf_data(kind: str, entry_id: uuid.UUID, event_type: str, payload: bytes, trace_id: str | None) -> bytes:
    """The canonical leaf bytes (see the module docstring)."""
    return canonical_json(
        {
            "entry_id": str(entry_id),
            "event_type": event_type,
            "kind": kind,
            "payload": _loads(payload),
            "trace_id": trace_id,
        }
    )


def _item(kind: str, entry_id: uuid.UUID, event: Envelope, payload: bytes, trace_id: str | None,
          *, links: Links, violation_id: uuid.UUID | None = None) -> TrailItem:
    data = leaf_data(kind, entry_id, event.event_type, payload, trace_id)
    return TrailItem(
        kind=kind,
        entry_id=entry_id,
        event_type=event.event_type,
        fund_doc_no=event.fund_doc_no or links.fund_doc_no,
        project_id=event.project_id or links.project_id,
        payment_id=links.payment_id,
        contract_id=links.contract_id,
        vendor_id=links.vendor_id,
        violation_id=violation_id,
        region_code=event.region_code,
        occurred_at=event.occurred_at,
        leaf_data=data,
        leaf_hash=merkle.leaf_hash(data),
        trace_id=trace_id,
    )


def event_item(event: Envelope, payload: bytes, trace_id: str | None) -> TrailItem:
    """The trail entry of an accepted bureau event (entry id = event id)."""
    links = Links(
        payment_id=event.payment_id if isinstance(event, PaymentDisbursed) else None,
        contract_id=contract_id_of(event),
        vendor_id=vendor_id_of(event),
    )
    return _item(EntryKind.EVENT, event.event_id, event, payload, trace_id, links=links)


def violation_item(event: ViolationRaised, payload: bytes, trace_id: str | None, triggering: Links | None) -> TrailItem:
    """The trail entry of a violation (entry id = violation id, so a re-raised violation is one entry).

    Payment, contract and vendor columns come from the triggering event's entry.
    """
    return _item(EntryKind.VIOLATION, event.violation_id, event, payload, trace_id,
                 links=triggering or Links(), violation_id=event.violation_id)


def case_item(event: Envelope, violation_id: uuid.UUID, payload: bytes, trace_id: str | None,
              violation: Links | None) -> TrailItem:
    """The trail entry of a case action (entry id = event id); query columns come from the violation."""
    return _item(EntryKind.CASE, event.event_id, event, payload, trace_id,
                 links=violation or Links(), violation_id=violation_id)
