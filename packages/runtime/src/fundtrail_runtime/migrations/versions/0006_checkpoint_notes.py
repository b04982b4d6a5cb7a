"""checkpoint notes: C2SP signed-note checkpoints and witness cosignatures

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-07 18:00:00

Rows signed in the old format keep their columns and get ``note`` NULL: a migration holds no
signing key, so fund-tracker re-signs them as C2SP notes at start-up (after checking each stored
root against the Merkle nodes), and the gateway serves only rows with a note.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0006'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('trail_checkpoint', sa.Column('note', sa.Text(), nullable=True))
    op.create_table('trail_cosignature',
    sa.Column('tree_size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('witness_name', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('cosigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('line', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tree_size', 'witness_name', 'key_hash')
    )


def downgrade() -> None:
    op.drop_table('trail_cosignature')
    op.drop_column('trail_checkpoint', 'note')
