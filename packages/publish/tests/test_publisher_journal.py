"""The publisher's journal decides what a re-import sends (no broker needed to plan)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fundtrail_publish import Publisher
from fundtrail_publish.journal import Journal, JournalEntry
from fundtrail_schemas.events import PaymentDisbursed
from fundtrail_schemas.examples import load_examples
from fundtrail_schemas.tabular import MappedRow, content_hash


def row(n: int, **changes: object) -> MappedRow:
    ev = PaymentDisbursed.model_validate({**load_examples()["PaymentDisbursed"], **changes})
    return MappedRow(n, ev, f"PaymentDisbursed:{ev.payment_id}", content_hash(ev))


def test_plan_skips_published_rows_and_refuses_changed_ones(tmp_path: Path) -> None:
    published = row(2)
    changed = row(3, event_id="0f0d7a11-0000-4000-8000-0000000000aa")
    fresh = row(4, event_id="0f0d7a11-0000-4000-8000-0000000000bb")
    journal = Journal(tmp_path, cluster="broker:9092#fundtrail.events.raw")
    at = datetime.now(UTC)
    journal.record([
        JournalEntry(str(published.event.event_id), published.content_hash, published.record_key, "t", 0, 1, at),
        JournalEntry(str(changed.event.event_id), "0" * 64, changed.record_key, "t", 0, 2, at),
    ])
    journal.close()
    with Publisher("broker:9092", tmp_path) as pub:
        todo, already, errors = pub.plan([published, changed, fresh])
    assert [r.row for r in todo] == [4] and already == 1
    assert [(e.row, e.reason) for e in errors] == [(3, "changed_after_publishing")]


def test_journal_is_per_cluster_and_topic(tmp_path: Path) -> None:
    r = row(2)
    a = Journal(tmp_path, cluster="broker:9092#fundtrail.events.raw")
    a.record([JournalEntry(str(r.event.event_id), r.content_hash, r.record_key, "t", 0, 1, datetime.now(UTC))])
    assert a.hashes([str(r.event.event_id)]) == {str(r.event.event_id): r.content_hash}
    a.close()
    other = Journal(tmp_path, cluster="staging:9092#fundtrail.events.raw")
    assert other.hashes([str(r.event.event_id)]) == {}
    other.close()
