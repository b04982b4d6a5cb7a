"""Shared value types: money, regions, levels, categories."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

# Amounts are integer fen; strict so that 12.5, "1250" and true are refused rather than coerced.
Fen = Annotated[
    int,
    Field(strict=True, ge=0, le=10**15, description="Amount in integer fen (1 CNY = 100 fen), never negative"),
]
SignedFen = Annotated[
    int, Field(strict=True, ge=-(10**15), le=10**15, description="Signed amount in integer fen")
]
# Shares are basis points (1% = 100) so they stay integers too.
BasisPoints = Annotated[int, Field(strict=True, ge=0, le=10_000, description="Share in basis points, 1% = 100")]

Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
LongText = Annotated[str, StringConstraints(max_length=4000)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Level(StrEnum):
    """Administrative level of a finance bureau or account."""

    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    TOWN = "town"
    VILLAGE = "village"

    @property
    def depth(self) -> int:
        return _LEVEL_DEPTH[self]

    def child(self) -> Level | None:
        """The level one step down, or None for a village."""
        order = list(Level)
        i = order.index(self)
        return order[i + 1] if i + 1 < len(order) else None


_LEVEL_DEPTH = {lv: i for i, lv in enumerate(Level)}

_REGION_RE = re.compile(r"^(\d{6}|\d{9}|\d{12})$")


def _check_region(code: str) -> str:
    if not _REGION_RE.fullmatch(code):
        raise ValueError("region code must be 6, 9 or 12 digits (GB/T 2260 extended to town and village)")
    if code[:2] == "00":
        raise ValueError("region code must start with a province code, not 00")
    return code


RegionCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    AfterValidator(_check_region),
    Field(examples=["440705", "440705101", "440705101201"]),
]


def level_of_region(code: str) -> Level:
    """The administrative level a region code denotes."""
    if len(code) == 12:
        return Level.VILLAGE
    if len(code) == 9:
        return Level.TOWN
    if code.endswith("0000"):
        return Level.PROVINCE
    if code.endswith("00"):
        return Level.CITY
    return Level.COUNTY


def parent_region(code: str) -> str | None:
    """The region one level up (village → town → county → city → province)."""
    level = level_of_region(code)
    if level is Level.VILLAGE:
        return code[:9]
    if level is Level.TOWN:
        return code[:6]
    if level is Level.COUNTY:
        return code[:4] + "00"
    if level is Level.CITY:
        return code[:2] + "0000"
    return None


def region_within(code: str, prefix_region: str) -> bool:
    """True when `code` lies inside the region `prefix_region` (or is it)."""
    level = level_of_region(prefix_region)
    if level is Level.PROVINCE:
        return code[:2] == prefix_region[:2]
    if level is Level.CITY:
        return code[:4] == prefix_region[:4]
    return code.startswith(prefix_region)


class Category(StrEnum):
    """Purpose category of a fund or project (专项资金用途 / 项目类别)."""

    INFRASTRUCTURE = "infrastructure"  # 农村基础设施
    INDUSTRY = "industry"  # 乡村产业发展
    ENVIRONMENT = "environment"  # 人居环境整治
    FARMLAND = "farmland"  # 高标准农田
    WATER = "water"  # 农村供水与水利
    CULTURE = "culture"  # 乡村文化
    # The negative list of DOMAIN.md rule 9: never a valid use of special funds.
    RUNNING_COSTS = "running_costs"
    VEHICLES = "vehicles"
    BUILDINGS = "buildings"
    DEBT = "debt"
    SALARIES = "salaries"


NEGATIVE_LIST = frozenset(
    {Category.RUNNING_COSTS, Category.VEHICLES, Category.BUILDINGS, Category.DEBT, Category.SALARIES}
)


class ProcurementCategory(StrEnum):
    CONSTRUCTION = "construction"
    GOODS = "goods"
    SERVICES = "services"


class ProcurementMethod(StrEnum):
    OPEN_TENDER = "open_tender"  # 公开招标
    INVITATION = "invitation"  # 邀请招标
    NEGOTIATION = "negotiation"  # 竞争性谈判 / 磋商
    INQUIRY = "inquiry"  # 询价
    SINGLE_SOURCE = "single_source"  # 单一来源
    DIRECT = "direct"  # 直接委托


TENDER_METHODS = frozenset({ProcurementMethod.OPEN_TENDER, ProcurementMethod.INVITATION})


class AccountKind(StrEnum):
    CORPORATE = "corporate"
    PERSONAL = "personal"
    WAGE = "wage"  # 农民工工资专户: personal payees allowed


class PaymentKind(StrEnum):
    PREPAYMENT = "prepayment"
    PROGRESS = "progress"
    FINAL = "final"
    OTHER = "other"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Department(StrEnum):
    """The nine coordinating departments (DOMAIN.md)."""

    INSPECTION = "inspection"
    FINANCE = "finance"
    AGRICULTURE = "agriculture"
    AUDIT = "audit"
    DEVELOPMENT = "development"
    HOUSING = "housing"
    NATURAL_RESOURCES = "natural_resources"
    TRADING = "trading"
    DISCIPLINE = "discipline"


DEPARTMENT_NAMES: dict[Department, tuple[str, str]] = {
    Department.INSPECTION: ("市委巡察办", "Party Committee Inspection Office"),
    Department.FINANCE: ("财政局", "Finance Bureau"),
    Department.AGRICULTURE: ("农业农村局", "Agriculture and Rural Affairs Bureau"),
    Department.AUDIT: ("审计局", "Audit Bureau"),
    Department.DEVELOPMENT: ("发展和改革局", "Development and Reform Bureau"),
    Department.HOUSING: ("住房和城乡建设局", "Housing and Urban-Rural Development Bureau"),
    Department.NATURAL_RESOURCES: ("自然资源局", "Natural Resources Bureau"),
    Department.TRADING: ("公共资源交易中心", "Public Resources Trading Centre"),
    Department.DISCIPLINE: ("纪委监委", "Discipline Inspection and Supervision Commission"),
}

UtcDatetime = AwareDatetime
