"""tracker: drop the secondary indexes no query uses

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 21:00:00

project, contract and payment are read by fund-tracker alone, by primary key (the ledger slice of a
batch) and payment also by invoice_no (`ix_payment_invoice_no`, the duplicate-invoice lookup); no
service reads them by fund, region, project or vendor. trail_entry is read by subject (fund, project,
payment, vendor) and seq, a region only ever filtering one subject's rows: ix_trail_region served no
query. Each dropped index cost every batch's
upserts an index update for nothing. The indexes that remain, and the queries that use them, are
listed in fundtrail_schemas/store/tracker.py.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = (
    ('ix_project_fund_doc_no', 'project', 'fund_doc_no'),
    ('ix_project_region_code', 'project', 'region_code'),
    ('ix_contract_project_id', 'contract', 'project_id'),
    ('ix_contract_vendor_id', 'contract', 'vendor_id'),
    ('ix_payment_fund_doc_no', 'payment', 'fund_doc_no'),
    ('ix_payment_payee_vendor_id', 'payment', 'payee_vendor_id'),
    ('ix_trail_region', 'trail_entry', 'region_code, seq'),
)


def upgrade() -> None:
    for name, table, _ in DROPPED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, column in DROPPED:
        op.create_index(name, table, column.split(', '), unique=False)
