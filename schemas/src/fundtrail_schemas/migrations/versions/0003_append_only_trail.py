"""append-only trail: triggers refuse UPDATE, DELETE and TRUNCATE of the log's tables; reader/writer roles

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 18:55:00

The log's tables (trail_entry: leaves; trail_node: subtree hashes; trail_checkpoint: signed heads;
processed_event: the accepted events the leaves record) only ever grow. The triggers hold for every
role, the owner included; only a superuser can bypass them (session_replication_role = replica, or
dropping the trigger), which `fundtrail verify --audit` then detects. The roles are NOLOGIN groups an
operator grants to the services' login roles (docs/operations.md):

* fundtrail_writer (fund-tracker): SELECT and INSERT on the log's tables, nothing else on them;
* fundtrail_reader (gateway): SELECT only.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("trail_entry", "trail_node", "trail_checkpoint", "processed_event")


def upgrade() -> None:
    op.execute("""
        CREATE OR REPLACE FUNCTION fundtrail_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'fundtrail: % is append-only (% refused)', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$""")
    for table in TABLES:
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                   " FOR EACH ROW EXECUTE FUNCTION fundtrail_refuse_change()")
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


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"REVOKE ALL ON {table} FROM fundtrail_writer, fundtrail_reader")
    op.execute("DROP FUNCTION IF EXISTS fundtrail_refuse_change()")
