"""reader role reads every table: the gateway can run as a login role in fundtrail_reader

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-07 21:20:00

Migration 0003 granted fundtrail_reader SELECT on the log's four tables only; the gateway also reads
violations, cases, funds, positions, projects, payments, cosignatures and the rest. SELECT on every
table of the schema, now and (default privileges of the role running the migrations) later. Nothing
else: the gateway writes only through Kafka. Its shared rate-limit table (`gateway_rate_window`,
created by the gateway itself) is then not writable, and the gateway falls back to its in-process
limiter (deploy/compose.yaml sets the memory backend for a reader-role gateway).
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0010'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("GRANT USAGE ON SCHEMA public TO fundtrail_reader")
    op.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO fundtrail_reader")
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO fundtrail_reader")


def downgrade() -> None:
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM fundtrail_reader")
    op.execute("REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM fundtrail_reader")
    for table in ("trail_entry", "trail_node", "trail_checkpoint", "processed_event"):
        op.execute(f"GRANT SELECT ON {table} TO fundtrail_reader")  # what 0003 granted
