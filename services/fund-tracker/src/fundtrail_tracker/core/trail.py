"""Trail entries: what each appended entry records, and its leaf bytes (format in `fundtrail_schemas.leaf`).

An entry is drafted from the event that caused it (`event_item`, `violation_item`, `case_item`) and
sealed when the writer gives it a leaf index (`seal`): only then are its `prev` pointers and its
append time known, and only then are its leaf bytes built.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from fundtrail_schemas.events import (
    Envelope,
    PaymentDisbursed,
    ViolationRaised,
)
from fundtrail_schemas.leaf import SUBJECTS, encode_leaf
from fundtrail_schemas.ledger import contract_id_of, vendor_id_of
from fundtrail_verify import merkle

# (subject kind, subject id) -> leaf index of its latest entry
Heads = MutableMapping[tuple[str, str], int]


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
class TrailDraft:
    """One entry to append, before the writer gives it its leaf index."""

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
    trace_id: str | None
    payload: bytes
    before: bytes | None = None
    after: bytes | None = None
    publisher: dict[str, str | None] | None = None

    @property
    def links(self) -> Links:
        """The columns later entries that refer to this one inherit."""
        return Links(self.fund_doc_no, self.project_id, self.payment_id, self.contract_id, self.vendor_id,
                     self.region_code)

    def subjects(self) -> list[tuple[str, str]]:
        """(subject kind, id) of every chain this entry belongs to."""
        return [(kind, value) for kind, column in SUBJECTS.items() if (value := getattr(self, column)) is not None]


@dataclass(frozen=True, slots=True)
class TrailItem:
    """A sealed entry: its leaf index, append time and leaf bytes."""

    draft: TrailDraft
    seq: int
    appended_at: datetime
    leaf_data: bytes
    leaf_hash: bytes


def subjects_of(drafts: Iterable[TrailDraft]) -> set[tuple[str, str]]:
    """Every chain a set of drafts belongs to (the heads the writer must read)."""
    return {s for d in drafts for s in d.subjects()}


def seal(draft: TrailDraft, seq: int, appended_at: datetime, heads: Heads) -> TrailItem:
    """Give `draft` leaf index `seq`: name each chain's previous entry, build the leaf, advance the heads."""
    subjects = draft.subjects()
    prev = {kind: heads.get((kind, value)) for kind, value in subjects}
    data = encode_leaf(
        kind=draft.kind, entry_id=draft.entry_id, event_type=draft.event_type, payload=draft.payload,
        region_code=draft.region_code, occurred_at=draft.occurred_at, appended_at=appended_at,
        trace_id=draft.trace_id, prev=prev, fund_doc_no=draft.fund_doc_no, project_id=draft.project_id,
        payment_id=draft.payment_id, contract_id=draft.contract_id, vendor_id=draft.vendor_id,
        violation_id=draft.violation_id, before=draft.before, after=draft.after, publisher=draft.publisher,
    )
    for subject in subjects:
        heads[subject] = seq
    return TrailItem(draft, seq, appended_at, data, merkle.leaf_hash(data))


def seal_all(drafts: Sequence[TrailDraft], first_seq: int, appended_at: datetime, heads: Heads) -> list[TrailItem]:
    """Seal drafts in order from leaf index `first_seq`."""
    return [seal(d, first_seq + i, appended_at, heads) for i, d in enumerate(drafts)]


def _draft(kind: str, entry_id: uuid.UUID, event: Envelope, payload: bytes, trace_id: str | None,
           *, links: Links, violation_id: uuid.UUID | None = None, before: bytes | None = None,
           after: bytes | None = None, publisher: dict[str, str | None] | None = None) -> TrailDraft:
    return TrailDraft(
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
        trace_id=trace_id,
        payload=payload,
        before=before,
        after=after,
        publisher=publisher,
    )


def event_item(event: Envelope, payload: bytes, trace_id: str | None, before: bytes | None = None,
               after: bytes | None = None, publisher: dict[str, str | None] | None = None) -> TrailDraft:
    """The trail entry of an accepted bureau event (entry id = event id), with the ledger around it and
    who published it (`batch.Source.publisher`)."""
    links = Links(
        payment_id=event.payment_id if isinstance(event, PaymentDisbursed) else None,
        contract_id=contract_id_of(event),
        vendor_id=vendor_id_of(event),
    )
    return _draft(EntryKind.EVENT, event.event_id, event, payload, trace_id, links=links, before=before, after=after,
                  publisher=publisher)


def violation_item(
    event: ViolationRaised, payload: bytes, trace_id: str | None, triggering: Links | None
) -> TrailDraft:
    """The trail entry of a violation (entry id = violation id, so a re-raised violation is one entry).

    Payment, contract and vendor columns come from the triggering event's entry.
    """
    return _draft(EntryKind.VIOLATION, event.violation_id, event, payload, trace_id,
                  links=triggering or Links(), violation_id=event.violation_id)


def case_item(event: Envelope, violation_id: uuid.UUID, payload: bytes, trace_id: str | None,
              violation: Links | None) -> TrailDraft:
    """The trail entry of a case action (entry id = event id); query columns come from the violation."""
    return _draft(EntryKind.CASE, event.event_id, event, payload, trace_id,
                  links=violation or Links(), violation_id=violation_id)
