"""case assignee and due date; verdicts keyed by event and rule-pack set version

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-07 18:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0002'
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


def downgrade() -> None:
    op.drop_constraint('compliance_processed_pkey', 'compliance_processed', type_='primary')
    op.execute("DELETE FROM compliance_processed WHERE pack_version <> ''")
    op.create_primary_key('compliance_processed_pkey', 'compliance_processed', ['event_id'])
    op.drop_column('compliance_processed', 'pack_version')
    op.drop_column('violation', 'pack_version')
    op.drop_column('violation', 'due_date')
    op.drop_column('violation', 'assignee')
