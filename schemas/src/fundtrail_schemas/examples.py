"""Golden example events: one valid, realistic event per type, all about one fund.

`make schemas` writes them to `schemas/examples/v<N>/<EventType>.json`; every test suite loads
those files (see `load_examples`), and the compatibility test loads every earlier version too.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from .events import (
    Bidder,
    BudgetAdjusted,
    ContractAmended,
    ContractSigned,
    Envelope,
    Evidence,
    FundAllocated,
    FundReturned,
    FundTransferred,
    PaymentDisbursed,
    ProcurementAwarded,
    ProjectAccepted,
    ProjectApproved,
    ProjectSettled,
    RelationDeclared,
    VendorDebarred,
    VendorRegistered,
    ViolationAcknowledged,
    ViolationAssigned,
    ViolationDismissed,
    ViolationRaised,
    ViolationRectified,
    ViolationResolved,
)
from .eventspec import SPECS
from .types import (
    AccountKind,
    Category,
    Department,
    Level,
    PaymentKind,
    ProcurementCategory,
    ProcurementMethod,
    Severity,
)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
CURRENT_VERSION = 1

FUND = "江财农〔2026〕18号"
PROJECT = "P-440705101-2026-007"
CONTRACT = "HT-440705101-2026-007-01"
VENDOR = "91440705MA5XYZ0012"
T0 = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


def _id(n: int) -> uuid.UUID:
    return uuid.UUID(int=0x0F0D7A11_0000_4000_8000_000000000000 + n)


def _env(n: int, level: Level, region: str, bureau: str, days: int) -> dict[str, Any]:
    at = T0 + timedelta(days=days)
    return {
        "event_id": _id(n),
        "occurred_at": at,
        "published_at": at + timedelta(minutes=3),
        "source_bureau": bureau,
        "level": level,
        "region_code": region,
        "fund_doc_no": FUND,
    }


def golden_events() -> list[Envelope]:
    """One example of every event type, in a plausible lifecycle order."""
    t: tuple[Level, str, str] = (Level.TOWN, "440705101", "440705101-CZS")
    bidders = [
        Bidder(
            vendor_id=VENDOR,
            name="江门市新会区绿野建设工程有限公司",
            legal_rep_id="ID-4407-0001",
            phone="0750-6601001",
            bank_account="6222-0001-0001",
            address="新会区会城街道圭峰路1号",
            bid_amount_fen=186_000_000,
        ),
        Bidder(
            vendor_id="91440705MA5XYZ0034",
            name="江门市崖门路桥有限公司",
            legal_rep_id="ID-4407-0002",
            phone="0750-6601002",
            bank_account="6222-0001-0002",
            address="新会区崖门镇京梅路8号",
            bid_amount_fen=191_500_000,
        ),
        Bidder(
            vendor_id="91440705MA5XYZ0056",
            name="江门市司前建筑有限公司",
            legal_rep_id="ID-4407-0003",
            phone="0750-6601003",
            bank_account="6222-0001-0003",
            address="新会区司前镇振兴路3号",
            bid_amount_fen=193_200_000,
        ),
    ]
    violation_id = uuid.UUID("7b0c2f64-0d8e-5b55-9d0c-2a7d0d3c9e01")
    return [
        FundAllocated(
            **_env(1, Level.CITY, "440700", "440700-CZJ", 0),
            amount_fen=1_200_000_000,
            purpose_category=Category.INFRASTRUCTURE,
            recipient_level=Level.COUNTY,
            recipient_region_code="440705",
            deadline=date(2026, 12, 31),
            title="2026年百千万工程农村基础设施专项资金",
        ),
        FundTransferred(
            **_env(2, Level.COUNTY, "440705", "440705-CZJ", 5),
            transfer_id="ZF-440705-2026-031",
            amount_fen=400_000_000,
            to_level=Level.TOWN,
            to_region_code="440705101",
        ),
        ProjectApproved(
            **_env(3, *t, 12),
            project_id=PROJECT,
            project_name="大泽镇五和村村道硬底化工程",
            owner_unit="440705101-JSB",
            category=Category.INFRASTRUCTURE,
            budget_fen=200_000_000,
            planned_procurement_method=ProcurementMethod.OPEN_TENDER,
            procurement_category=ProcurementCategory.CONSTRUCTION,
            approval_doc_no="新大府〔2026〕22号",
            approving_official_id="OFF-440705101-01",
            land_use_approval_ref="新自然资〔2026〕用地105号",
        ),
        ProcurementAwarded(
            **_env(4, *t, 40),
            project_id=PROJECT,
            award_id="ZB-2026-0107",
            owner_unit="440705101-JSB",
            method=ProcurementMethod.OPEN_TENDER,
            procurement_category=ProcurementCategory.CONSTRUCTION,
            amount_fen=186_000_000,
            winner_vendor_id=VENDOR,
            bidders=bidders,
            platform_ref="JMGGZY-2026-0107",
            tender_published_on=date(2026, 3, 20),
            bids_opened_on=date(2026, 4, 10),
            approving_official_id="OFF-440705101-01",
        ),
        ContractSigned(
            **_env(5, *t, 45),
            project_id=PROJECT,
            contract_id=CONTRACT,
            award_id="ZB-2026-0107",
            vendor_id=VENDOR,
            amount_fen=186_000_000,
            prepayment_share_bps=2000,
            retention_share_bps=300,
            payment_terms="预付20%，进度款按月，验收后付至97%，留3%质保金",
        ),
        ContractAmended(
            **_env(6, *t, 90),
            project_id=PROJECT,
            contract_id=CONTRACT,
            amendment_id="BG-01",
            delta_fen=9_000_000,
            approved=True,
            approval_doc_no="新大府〔2026〕41号",
            reason="增加排水沟120米",
        ),
        PaymentDisbursed(
            **_env(7, *t, 50),
            project_id=PROJECT,
            payment_id="ZF-440705101-2026-0311",
            contract_id=CONTRACT,
            payee_vendor_id=VENDOR,
            payee_name="江门市新会区绿野建设工程有限公司",
            payee_account="6222-0001-0001",
            account_kind=AccountKind.CORPORATE,
            amount_fen=37_200_000,
            invoice_no="44070526000311",
            payment_kind=PaymentKind.PREPAYMENT,
            handler_id="STAFF-101-07",
            approver_id="STAFF-101-02",
            purpose="村道硬底化工程预付款",
        ),
        ProjectAccepted(
            **_env(8, *t, 160), project_id=PROJECT, acceptance_id="YS-2026-0107", passed=True, progress_bps=10_000
        ),
        ProjectSettled(**_env(9, *t, 200), project_id=PROJECT, settlement_amount_fen=193_400_000, closed=True),
        FundReturned(
            **_env(10, *t, 210),
            return_id="TH-440705101-2026-02",
            amount_fen=6_600_000,
            to_level=Level.COUNTY,
            to_region_code="440705",
            reason="unused",
        ),
        BudgetAdjusted(
            **_env(11, *t, 85),
            project_id=PROJECT,
            adjustment_id="TJ-2026-03",
            new_budget_fen=205_000_000,
            approval_doc_no="新大府〔2026〕40号",
            reason="增加排水工程",
        ),
        VendorRegistered(
            **{**_env(12, Level.CITY, "440700", "440700-SCJGJ", -400), "fund_doc_no": None},
            vendor_id=VENDOR,
            name="江门市新会区绿野建设工程有限公司",
            legal_rep_id="ID-4407-0001",
            phone="0750-6601001",
            bank_account="6222-0001-0001",
            address="新会区会城街道圭峰路1号",
            founded_on=date(2019, 6, 18),
        ),
        VendorDebarred(
            **{**_env(13, Level.CITY, "440700", "440700-CZJ", -30), "fund_doc_no": None},
            vendor_id="91440703MA5BAD0099",
            debarred_from=date(2026, 1, 15),
            debarred_until=date(2029, 1, 14),
            authority="江门市财政局",
            reason="提供虚假材料谋取中标（政府采购法第七十七条）",
        ),
        RelationDeclared(
            **{**_env(14, Level.TOWN, "440705101", "440705101-JJW", -60), "fund_doc_no": None},
            official_id="OFF-440705101-09",
            vendor_id="91440705MA5REL0077",
            relation="配偶持股",
        ),
        ViolationRaised(
            **_env(15, *t, 50),
            project_id=PROJECT,
            violation_id=violation_id,
            rule_id="inspection.same_handler_approver",
            rule_version=1,
            department=Department.INSPECTION,
            severity=Severity.HIGH,
            triggering_event_id=_id(7),
            evidence=Evidence(event_ids=[_id(7)], values={"handler_id": "STAFF-101-07"}),
            explanation_zh="支付 ZF-440705101-2026-0311 的经办人与审批人同为 STAFF-101-07，违反不相容岗位分离。",
            explanation_en="Payment ZF-440705101-2026-0311 was handled and approved by the same "
            "person, STAFF-101-07 (segregation of duties).",
            legal_basis="《行政事业单位内部控制规范（试行）》第十二条",
            trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        ViolationAcknowledged(
            **_env(16, *t, 52), violation_id=violation_id, actor="USER-440705-HG-03", note="已收到，正在核查"
        ),
        ViolationRectified(
            **_env(17, *t, 60),
            violation_id=violation_id,
            actor="USER-440705-HG-03",
            note="已调整审批流程，补充复核签字",
            document_sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ),
        ViolationDismissed(
            **_env(18, *t, 61), violation_id=violation_id, actor="USER-440705-HG-01", reason="经核查为系统录入错误"
        ),
        ViolationAssigned(
            **_env(20, *t, 53),
            violation_id=violation_id,
            actor="USER-440705-HG-03",
            assignee="USER-440705101-CZS-02",
            due_date=date(2026, 4, 30),
        ),
        ViolationResolved(
            **_env(19, *t, 62),
            violation_id=violation_id,
            actor="compliance",
            reason="合同已在宽限期内补录",
            refuting_event_id=_id(5),
        ),
    ]


def example_path(event_type: str, version: int = CURRENT_VERSION, root: Path = EXAMPLES_DIR) -> Path:
    return root / f"v{version}" / f"{event_type}.json"


def write_examples(root: Path = EXAMPLES_DIR) -> list[Path]:
    """Write the current version's golden examples (never touches earlier versions).

    Every type in the registry needs one: a type without is refused here, before anything is written."""
    events = golden_events()
    missing = sorted(set(SPECS) - {ev.event_type for ev in events})
    if missing:
        raise ValueError(f"no golden example for {', '.join(missing)}: add one to examples.golden_events")
    out = []
    for ev in events:
        path = example_path(ev.event_type, CURRENT_VERSION, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ev.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        out.append(path)
    return out


def load_examples(version: int = CURRENT_VERSION, root: Path = EXAMPLES_DIR) -> dict[str, dict[str, Any]]:
    """Golden examples of one schema version as JSON objects, by event type."""
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted((root / f"v{version}").glob("*.json"))}


def example_versions(root: Path = EXAMPLES_DIR) -> list[int]:
    """Every schema version that has golden examples."""
    return sorted(int(p.name[1:]) for p in root.glob("v*") if p.is_dir())
