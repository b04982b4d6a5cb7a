"""A deterministic stream of valid bureau events for load tests and benchmarks.

Funds flow city → county → two towns; each town runs projects through approval, award, contract,
amendment, payments, acceptance and settlement, and returns what is left over. Event ids derive
from (seed, index), so generating the same stream twice gives the same ids.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

_NS = uuid.UUID("2b1f3f8e-6a0c-4d8e-8f3b-5f7c9a1d2e40")
_COUNTIES = ("440703", "440704", "440705", "440781", "440783", "440784", "440785")
PAYMENTS_PER_PROJECT = 12

try:
    import orjson

    def encode(obj: dict[str, Any]) -> bytes:
        """Wire bytes of a generated event."""
        return orjson.dumps(obj)
except ImportError:  # pragma: no cover - depends on the environment

    def encode(obj: dict[str, Any]) -> bytes:
        """Wire bytes of a generated event."""
        return json.dumps(obj, ensure_ascii=False).encode()


class _Stream:
    def __init__(self, seed: int, start: datetime) -> None:
        self.seed = seed
        self.start = start
        self.index = 0

    def envelope(self, event_type: str, level: str, region: str, fund: str, **fields: Any) -> dict[str, Any]:
        i = self.index
        self.index += 1
        at = self.start + timedelta(seconds=i)
        bureau_suffix = "CZS" if level == "town" else "CZJ"
        return {
            "event_id": str(uuid.uuid5(_NS, f"{self.seed}:{i}")),
            "event_type": event_type,
            "schema_version": 1,
            "occurred_at": at.isoformat(),
            "published_at": (at + timedelta(seconds=30)).isoformat(),
            "source_bureau": f"{region}-{bureau_suffix}",
            "level": level,
            "region_code": region,
            "fund_doc_no": fund,
            **fields,
        }


def _fund_block(s: _Stream, f: int) -> Iterator[dict[str, Any]]:
    fund = f"SYN〔{s.seed}〕{f}号"
    county = _COUNTIES[f % len(_COUNTIES)]
    towns = (county + "101", county + "102")
    per_town = 40_000_000_00
    yield s.envelope(
        "FundAllocated", "city", "440700", fund, amount_fen=2 * per_town + 5_000_000_00,
        purpose_category="infrastructure", recipient_level="county", recipient_region_code=county,
        deadline="2027-12-31", title=f"合成专项资金 {f}",
    )
    for t, town in enumerate(towns):
        yield s.envelope("FundTransferred", "county", county, fund, transfer_id=f"T{f}-{t}", amount_fen=per_town,
                         to_level="town", to_region_code=town)
    project_no = 0
    while True:
        for town in towns:
            project_no += 1
            pid = f"P{s.seed}-{f}-{project_no}"
            cid = f"C{s.seed}-{f}-{project_no}"
            vendor = f"V{(f * 7 + project_no) % 500:04d}"
            common = {"project_id": pid}
            yield s.envelope(
                "ProjectApproved", "town", town, fund, **common, project_name=f"合成项目 {pid}",
                owner_unit=f"{town}-JSB", category="infrastructure", budget_fen=12_000_000_00,
                planned_procurement_method="open_tender", procurement_category="construction",
                approval_doc_no=f"AP-{pid}", approving_official_id=f"OFF-{town}",
                land_use_approval_ref=f"LU-{pid}",
            )
            yield s.envelope(
                "ProcurementAwarded", "town", town, fund, **common, award_id=f"A-{pid}", owner_unit=f"{town}-JSB",
                method="open_tender", procurement_category="construction", amount_fen=10_000_000_00,
                winner_vendor_id=vendor, platform_ref=f"JMGGZY-{pid}",
            )
            yield s.envelope(
                "ContractSigned", "town", town, fund, **common, contract_id=cid, award_id=f"A-{pid}",
                vendor_id=vendor, amount_fen=10_000_000_00, prepayment_share_bps=1000, retention_share_bps=300,
            )
            yield s.envelope(
                "ContractAmended", "town", town, fund, **common, contract_id=cid, amendment_id="BG-1",
                delta_fen=300_000_00, approved=True, approval_doc_no=f"BG-{pid}", reason="增加工程量",
            )
            for k in range(PAYMENTS_PER_PROJECT):
                yield s.envelope(
                    "PaymentDisbursed", "town", town, fund, **common, payment_id=f"Z-{pid}-{k}", contract_id=cid,
                    payee_vendor_id=vendor, payee_name=f"供应商{vendor}", payee_account=f"6222-{vendor}",
                    account_kind="corporate", amount_fen=50_000_00 + 137 * k + project_no,
                    invoice_no=f"INV-{pid}-{k}", payment_kind="prepayment" if k == 0 else "progress",
                    handler_id=f"H-{town}", approver_id=f"A-{town}", purpose="工程款",
                )
            yield s.envelope("ProjectAccepted", "town", town, fund, **common, acceptance_id=f"YS-{pid}",
                             passed=True, progress_bps=10_000)
            yield s.envelope("ProjectSettled", "town", town, fund, **common, settlement_amount_fen=10_200_000_00,
                             closed=True)
            yield s.envelope("FundReturned", "town", town, fund, return_id=f"R-{pid}", amount_fen=1_000_00 + f,
                             to_level="county", to_region_code=town[:6], reason="unused")


def generate(n: int, *, seed: int = 0, start: datetime, events_per_fund: int = 400) -> list[dict[str, Any]]:
    """`n` valid events (wire-form dicts) spread over funds of about `events_per_fund` events each."""
    s = _Stream(seed, start)
    out: list[dict[str, Any]] = []
    f = 0
    while len(out) < n:
        block = _fund_block(s, f)
        for _ in range(min(events_per_fund, n - len(out))):
            out.append(next(block))
        f += 1
    return out


def key_of(obj: dict[str, Any]) -> bytes:
    """The Kafka key of a generated event (its fund)."""
    return str(obj["fund_doc_no"]).encode()
