"""The shared database schema on a real PostgreSQL: migrations, drift, idempotent inserts."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select
from sqlalchemy.dialects.postgresql import insert

from fundtrail_runtime.db import sync_engine, upgrade
from fundtrail_runtime.store import metadata
from fundtrail_runtime.store.tracker import ProcessedEvent

pytestmark = pytest.mark.integration


def test_migrations_apply_on_an_empty_database_and_match_the_models(fresh_database_url: str) -> None:
    upgrade(fresh_database_url)
    upgrade(fresh_database_url)  # a second run is a no-op
    engine = sync_engine(fresh_database_url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            assert set(metadata.tables) <= tables
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            assert diff == [], f"models and migrations drifted; run `make migration`: {diff}"
    finally:
        engine.dispose()


def test_concurrent_inserts_of_one_event_id_leave_one_row(migrated_database_url: str) -> None:
    engine = sync_engine(migrated_database_url, pool_size=8, max_overflow=0)
    event_id = uuid.uuid4()
    now = datetime.now(UTC)
    barrier = threading.Barrier(8)
    inserted: list[int] = []
    errors: list[BaseException] = []

    def insert_once(n: int) -> None:
        try:
            with engine.begin() as conn:
                barrier.wait(timeout=30)
                stmt = (
                    insert(ProcessedEvent.__table__)  # type: ignore[attr-defined]
                    .values(event_id=event_id, sequence=n, event_type="PaymentDisbursed", fund_doc_no="F",
                            region_code="440705101", level="town", occurred_at=now, accepted_at=now,
                            payload={"n": n}, state_after={})
                    .on_conflict_do_nothing(index_elements=["event_id"])
                    .returning(ProcessedEvent.__table__.c.event_id)  # type: ignore[attr-defined]
                )
                inserted.append(len(conn.execute(stmt).all()))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=insert_once, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert sorted(inserted) == [0] * 7 + [1]
        with engine.connect() as conn:
            count = conn.execute(
                select(func.count()).select_from(ProcessedEvent).where(ProcessedEvent.event_id == event_id)
            ).scalar_one()
        assert count == 1
    finally:
        engine.dispose()


def test_a_checkpoint_without_note_may_get_one_and_nothing_else_changes(migrated_database_url: str) -> None:
    import psycopg

    from fundtrail_runtime.db import conninfo

    now = datetime.now(UTC)
    with psycopg.connect(conninfo(migrated_database_url), autocommit=True) as conn:
        conn.execute("INSERT INTO trail_checkpoint (tree_size, root_hash, signed_at, log_id, key_id, signature)"
                     " VALUES (7, %s, %s, 'old/log', 'k', 's')", ("ab" * 32, now))

        def refused(sql: str, *params: object) -> None:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(sql, params)

        # Without a note the signed facts stay: no new root, size or time, not even with a note.
        refused("UPDATE trail_checkpoint SET root_hash = %s, note = 'n' WHERE tree_size = 7", "cd" * 32)
        refused("UPDATE trail_checkpoint SET signed_at = %s, note = 'n' WHERE tree_size = 7", now.replace(year=2020))
        refused("UPDATE trail_checkpoint SET log_id = 'other' WHERE tree_size = 7")  # no note attached
        # The start-up re-signing: the note and the signature columns it supersedes.
        conn.execute("UPDATE trail_checkpoint SET log_id = 'new/log', key_id = 'k2', signature = 's2', note = 'n1'"
                     " WHERE tree_size = 7")
        # Once it has a note, the row never changes again.
        refused("UPDATE trail_checkpoint SET note = 'n2' WHERE tree_size = 7")
        refused("UPDATE trail_checkpoint SET note = NULL WHERE tree_size = 7")
        refused("DELETE FROM trail_checkpoint WHERE tree_size = 7")
        refused("TRUNCATE trail_checkpoint")
        row = conn.execute("SELECT root_hash, log_id, note FROM trail_checkpoint WHERE tree_size = 7").fetchone()
    assert row == ("ab" * 32, "new/log", "n1")
