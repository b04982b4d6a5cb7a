"""append-only trail: triggers refuse UPDATE, DELETE and TRUNCATE of the log's tables; reader/writer roles

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 18:55:00

The log's tables (trail_entry: leaves; trail_node: subtree hashes; trail_checkpoint: signed heads;
processed_event: the accepted events the leaves record) only ever grow. The triggers hold for every
role, the owner included; only a superuser can bypass them (session_replication_role = replica, or
dropping the trigger), which `fundtrail verify --audit` then detects. The roles are NOLOGIN groups an
operator grants to the services' login roles (docs/operations.md):

* fundtrail_writer (fund-tracker): SELECT and INSERT on the log's tables, and UPDATE on
  trail_checkpoint for the one update below;
* fundtrail_reader (gateway): SELECT only.

One update is allowed, on trail_checkpoint: attaching the signed note (migration 0006) to a checkpoint
stored without one (`note` NULL to a value) with its tree size, root and time unchanged. That is
fund-tracker's start-up re-signing of old-format checkpoints, which also rewrites the old signature
columns (log_id, key_id, signature) the note supersedes. A row with a note can never change again.
The rule reads the row as JSON, so it holds before migration 0006 adds the column (no row has a
`note` then, so every update is refused).
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("trail_entry", "trail_node", "trail_checkpoint", "processed_event")
# Columns the re-signing may not change (the signed facts and when they were signed).
CHECKPOINT_FIXED = ("tree_size", "root_hash", "signed_at")


def upgrade() -> None:
    op.execute("""
        CREATE OR REPLACE FUNCTION fundtrail_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'fundtrail: % is append-only (% refused)', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$""")
    fixed = " AND ".join(f"o->'{c}' IS NOT DISTINCT FROM n->'{c}'" for c in CHECKPOINT_FIXED)
    op.execute(f"""
        CREATE OR REPLACE FUNCTION fundtrail_checkpoint_note_only() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            o jsonb := to_jsonb(OLD);
            n jsonb := to_jsonb(NEW);
        BEGIN
            IF TG_OP = 'UPDATE' AND o ? 'note' AND jsonb_typeof(o->'note') = 'null'
               AND jsonb_typeof(n->'note') = 'string' AND {fixed} THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'fundtrail: % is append-only (% refused; only a note may be attached once)',
                TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$""")
    for table in TABLES:
        function = "fundtrail_checkpoint_note_only" if table == "trail_checkpoint" else "fundtrail_refuse_change"
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                   f" FOR EACH ROW EXECUTE FUNCTION {function}()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
                   " FOR EACH STATEMENT EXECUTE FUNCTION fundtrail_refuse_change()")
    op.execute("""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundtrail_writer') THEN
                CREATE ROLE fundtrail_writer NOLOGIN;
            END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fundtrail_reader') THEN
                CREATE ROLE fundtrail_reader NOLOGIN;
            END IF;
        END $$""")
    for table in TABLES:
        op.execute(f"REVOKE ALL ON {table} FROM fundtrail_writer, fundtrail_reader")
        op.execute(f"GRANT SELECT, INSERT ON {table} TO fundtrail_writer")
        op.execute(f"GRANT SELECT ON {table} TO fundtrail_reader")
    op.execute("GRANT UPDATE ON trail_checkpoint TO fundtrail_writer")  # the trigger admits only the note


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"REVOKE ALL ON {table} FROM fundtrail_writer, fundtrail_reader")
    op.execute("DROP FUNCTION IF EXISTS fundtrail_refuse_change()")
    op.execute("DROP FUNCTION IF EXISTS fundtrail_checkpoint_note_only()")
