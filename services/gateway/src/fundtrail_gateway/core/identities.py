"""The devstack's demo identities: who the console's role picker offers (development only)."""

from __future__ import annotations

from dataclasses import dataclass

from fundtrail_schemas.regions import CITY_CODE, full_name

from .auth import Role


@dataclass(frozen=True, slots=True)
class DemoIdentity:
    """One pickable identity: a subject with one role and a region (None: everything)."""

    subject: str
    role: Role
    region: str | None
    department: str | None
    label_zh: str
    label_en: str


def _region_label(region: str | None) -> str:
    return "全市" if region is None else full_name(region)


def _identity(subject: str, role: Role, region: str | None, department: str | None, zh: str, en: str) -> DemoIdentity:
    return DemoIdentity(subject, role, region, department, f"{zh}（{_region_label(region)}）", en)


# Subjects match the tokens `make run` prints, so what a console user does is attributed the same way.
DEMO_IDENTITIES: tuple[DemoIdentity, ...] = (
    _identity("demo-compliance-440700", Role.COMPLIANCE, CITY_CODE, None, "市合规指导组", "City compliance group"),
    _identity("demo-compliance-440705", Role.COMPLIANCE, "440705", None, "新会区合规指导组",
              "Xinhui compliance group"),
    _identity("demo-compliance-440781", Role.COMPLIANCE, "440781", None, "台山市合规指导组",
              "Taishan compliance group"),
    _identity("demo-auditor", Role.AUDITOR, None, "audit", "审计局审计员", "Audit bureau auditor"),
    _identity("demo-bureau-440705", Role.BUREAU, "440705", "finance", "新会区财政局", "Xinhui finance bureau"),
)


def demo_identity(subject: str) -> DemoIdentity | None:
    """The demo identity with this subject, if any."""
    return next((i for i in DEMO_IDENTITIES if i.subject == subject), None)
