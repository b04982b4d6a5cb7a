"""compliance book: each fund's event-time book, recoverable after a restart or a rebalance

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 22:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('compliance_book_event',
    sa.Column('event_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('fund_doc_no', sa.String(length=128), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('keep_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('folded', sa.Boolean(), nullable=False),
    sa.Column('record', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index(op.f('ix_compliance_book_event_fund_doc_no'), 'compliance_book_event', ['fund_doc_no'],
                    unique=False)
    op.create_table('compliance_book_fund',
    sa.Column('fund_doc_no', sa.String(length=128), nullable=False),
    sa.Column('state', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('fund_doc_no')
    )
    # compliance runs as a member of fundtrail_writer (0011): the book is its state, not the log.
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON compliance_book_event, compliance_book_fund TO fundtrail_writer")
    op.execute("GRANT USAGE, SELECT ON SEQUENCE compliance_book_event_seq_seq TO fundtrail_writer")


def downgrade() -> None:
    op.drop_table('compliance_book_fund')
    op.drop_index(op.f('ix_compliance_book_event_fund_doc_no'), table_name='compliance_book_event')
    op.drop_table('compliance_book_event')
