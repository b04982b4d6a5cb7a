"""case assignee and due date; verdicts keyed by event and rule-pack set version; reference rows
carry their writing transaction

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 18:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('violation', sa.Column('assignee', sa.String(length=128), nullable=True))
    op.add_column('violation', sa.Column('due_date', sa.Date(), nullable=True))
    op.add_column('violation', sa.Column('pack_version', sa.String(length=64), nullable=True))
    # An event is judged once per rule-pack set: re-reading it under a new set judges it again.
    op.add_column(
        'compliance_processed',
        sa.Column('pack_version', sa.String(length=64), nullable=False, server_default=''),
    )
    op.drop_constraint('compliance_processed_pkey', 'compliance_processed', type_='primary')
    op.create_primary_key('compliance_processed_pkey', 'compliance_processed', ['event_id', 'pack_version'])
    # Reference data is shared between compliance replicas through this table: each reads the rows of
    # transactions that committed since its last look (see adapters/postgres.py, reference_since).
    op.add_column('compliance_reference', sa.Column(
        'txid', sa.BigInteger(), nullable=False, server_default=sa.text('(pg_current_xact_id())::text::bigint')))
    op.create_index('ix_compliance_reference_txid', 'compliance_reference', ['txid'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_compliance_reference_txid', table_name='compliance_reference')
    op.drop_column('compliance_reference', 'txid')
    op.drop_constraint('compliance_processed_pkey', 'compliance_processed', type_='primary')
    op.execute("DELETE FROM compliance_processed WHERE pack_version <> ''")
    op.create_primary_key('compliance_processed_pkey', 'compliance_processed', ['event_id'])
    op.drop_column('compliance_processed', 'pack_version')
    op.drop_column('violation', 'pack_version')
    op.drop_column('violation', 'due_date')
    op.drop_column('violation', 'assignee')
