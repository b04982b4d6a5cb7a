"""writer role writes what the workers write: fund-tracker and compliance run as login roles in fundtrail_writer

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 22:05:00

Migration 0003 granted fundtrail_writer SELECT and INSERT on the log's four tables (and the one
checkpoint note update) only. The workers also keep the ledger (fund, fund_position, contract,
payment, project, vendor_stats, parked events, cosignatures) and compliance's state (window entries,
timers, watermarks, judged/processed marks, violations, rule versions, case actions). Those tables
are state, not the trail, so the writer may insert, update and delete rows in them. It reads every
table (including alembic_version, to check the schema is current at start-up) and writes none of
the log's tables beyond 0003's grants; it owns nothing, so it can neither ALTER nor DROP the tables
or their append-only triggers. No default privileges: a new table grants the writer in its own
migration (tests/test_writer_role.py runs both workers as writer roles and would fail otherwise).
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The workers' state (not the log): rows are inserted, upserted and deleted (parked events replayed,
# windows pruned, timers fired).
STATE_TABLES = (
    "fund", "fund_position", "contract", "payment", "project", "vendor_stats", "parked_event",
    "trail_cosignature", "violation", "rule_version", "rule_pack_load", "case_action",
    "compliance_judged", "compliance_processed", "compliance_reference", "compliance_refutable",
    "compliance_timer", "compliance_watermark", "compliance_window_entry",
)


def upgrade() -> None:
    op.execute("GRANT USAGE ON SCHEMA public TO fundtrail_writer")
    op.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO fundtrail_writer")
    op.execute(f"GRANT INSERT, UPDATE, DELETE ON {', '.join(STATE_TABLES)} TO fundtrail_writer")
    op.execute("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO fundtrail_writer")


def downgrade() -> None:
    op.execute("REVOKE USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public FROM fundtrail_writer")
    op.execute(f"REVOKE ALL ON {', '.join(STATE_TABLES)} FROM fundtrail_writer")
    op.execute("REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM fundtrail_writer")
    for table in ("trail_entry", "trail_node", "trail_checkpoint", "processed_event"):
        op.execute(f"GRANT SELECT ON {table} TO fundtrail_writer")  # what 0003 granted
