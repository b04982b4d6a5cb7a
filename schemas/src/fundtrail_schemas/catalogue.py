"""The rule catalogue of DOMAIN.md: stable rule ids, their catalogue numbers and owners.

Rule packs implement these ids; the demo generator seeds one violation per id; the gateway lists
them. Some catalogue entries state two checks and so have two rule ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from .types import Department


@dataclass(frozen=True)
class CatalogueEntry:
    no: int
    rule_id: str
    department: Department
    summary: str


D = Department
CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(1, "finance.payment_without_approval_or_contract", D.FINANCE,
                   "payment with no approved project or no signed contract"),
    CatalogueEntry(2, "audit.paid_exceeds_received", D.AUDIT,
                   "cumulative payments of a fund at a level exceed what that level received"),
    CatalogueEntry(3, "audit.transfer_exceeds_received", D.AUDIT, "a level transfers down more than it received"),
    CatalogueEntry(4, "finance.paid_exceeds_contract", D.FINANCE,
                   "cumulative payments exceed the contract amount plus approved amendments"),
    CatalogueEntry(5, "housing.prepayment_share", D.HOUSING,
                   "prepayment before any progress/acceptance above a share of the contract"),
    CatalogueEntry(6, "housing.final_without_acceptance", D.HOUSING, "final payment with no acceptance record"),
    CatalogueEntry(6, "housing.retention_below_warranty", D.HOUSING,
                   "payments leave less than the warranty retention share"),
    CatalogueEntry(7, "finance.duplicate_invoice", D.FINANCE, "same invoice number paid twice (any level)"),
    CatalogueEntry(7, "finance.similar_payment_review", D.FINANCE,
                   "same payee and amount within 1% within N days: review"),
    CatalogueEntry(8, "finance.personal_account_payment", D.FINANCE,
                   "project payment to a personal (non-wage) account above an amount"),
    CatalogueEntry(9, "agriculture.category_mismatch", D.AGRICULTURE,
                   "fund purpose category does not match the project category"),
    CatalogueEntry(9, "agriculture.negative_list", D.AGRICULTURE,
                   "project on the negative list (running costs, vehicles, buildings, debt, salaries)"),
    CatalogueEntry(10, "audit.idle_funds", D.AUDIT, "money received but not passed down or spent within N days"),
    CatalogueEntry(11, "trading.tender_threshold", D.TRADING,
                   "procurement above the tender threshold by a non-tender method"),
    CatalogueEntry(12, "trading.split_purchase", D.TRADING,
                   "several awards each below the platform threshold within a window, together at or above it"),
    CatalogueEntry(12, "trading.split_tender", D.TRADING,
                   "several non-tender awards each below their category's tender threshold within a window, "
                   "together at or above it (化整为零规避招标)"),
    CatalogueEntry(13, "trading.platform_required", D.TRADING,
                   "deal at or above the platform threshold without a trading platform reference"),
    CatalogueEntry(14, "development.insufficient_bids", D.DEVELOPMENT, "single bidder or fewer than 3 bids, awarded"),
    CatalogueEntry(14, "development.short_tender_period", D.DEVELOPMENT,
                   "tender period shorter than the legal minimum"),
    CatalogueEntry(15, "development.contract_before_approval", D.DEVELOPMENT,
                   "contract signed before project approval"),
    CatalogueEntry(15, "development.contract_exceeds_budget", D.DEVELOPMENT,
                   "contract exceeds the approved budget by more than a share"),
    CatalogueEntry(16, "natural_resources.no_land_use_approval", D.NATURAL_RESOURCES,
                   "construction project without a land-use approval reference"),
    CatalogueEntry(17, "inspection.same_handler_approver", D.INSPECTION,
                   "handler and approver of a payment are the same person"),
    CatalogueEntry(18, "inspection.related_vendor", D.INSPECTION, "vendor linked to the approving official"),
    CatalogueEntry(19, "discipline.debarred_vendor", D.DISCIPLINE, "vendor on the debarment list"),
    CatalogueEntry(19, "discipline.new_vendor", D.DISCIPLINE, "vendor founded shortly before the award"),
    CatalogueEntry(20, "discipline.bidder_collusion", D.DISCIPLINE,
                   "bidders share owner, phone, bank account or address"),
    CatalogueEntry(21, "finance.amendment_share", D.FINANCE,
                   "contract amendments add more than a share of the original amount"),
    CatalogueEntry(22, "audit.payment_after_settlement", D.AUDIT, "payment after the project was settled or closed"),
    CatalogueEntry(23, "audit.backdated_entry", D.AUDIT,
                   "approval or contract recorded after later-dated events that depend on it, beyond a tolerance"),
)

RULE_IDS = frozenset(e.rule_id for e in CATALOGUE)
BY_RULE_ID = {e.rule_id: e for e in CATALOGUE}
