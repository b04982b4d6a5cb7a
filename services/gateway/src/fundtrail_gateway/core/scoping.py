"""What a regional reader sees of ledger state: its own region's positions, and not more.

A ledger state (an accepted event's `state_after`) holds the positions the event touched: its own
level's (`position`) and, for allocations, transfers and returns, the other party's (`counterparty`).
A county's FundReturned names the city's position, whose totals include every other county's
returns; a vendor's totals count awards and payments in every region. So for a reader scoped to a
region (compliance users):

- a position outside the reader's region keeps only who it is (fund, level, region code) and says
  `"redacted": true`; its amounts and dates are withheld;
- vendor totals are withheld (`vendor_id` and `"redacted": true` stay);
- the fund's own facts (`fund`: allocation document, purpose, amount allocated, deadline) and the
  project and contract the event belongs to stay: they are the event's own subject.

Auditors (no region) see everything. Trail items, event and violation details apply this rule to
the states parsed from the leaf; the leaf bytes themselves go to a regional reader only when this
rule withholds nothing of them (`core.leafview.leaf_withheld`).
"""

from __future__ import annotations

from typing import Any

from fundtrail_schemas.types import region_within

POSITION_KEYS = ("position", "counterparty")


def redact_state(state: Any, region: str | None) -> Any:
    """`state` as a reader of `region` may see it (None: unrestricted)."""
    if region is None or not isinstance(state, dict):
        return state
    out = dict(state)
    for key in POSITION_KEYS:
        pos = out.get(key)
        if isinstance(pos, dict) and not region_within(str(pos.get("region_code") or ""), region):
            out[key] = {"fund_doc_no": pos.get("fund_doc_no"), "level": pos.get("level"),
                        "region_code": pos.get("region_code"), "redacted": True}
    vendor = out.get("vendor")
    if isinstance(vendor, dict):
        out["vendor"] = {"vendor_id": vendor.get("vendor_id"), "redacted": True}
    return out
