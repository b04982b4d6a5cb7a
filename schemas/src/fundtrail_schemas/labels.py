"""What officers read instead of codes: one label table, Chinese and English, for every coded value.

Explanations, the gateway and the console show these; codes stay in the data (the contract's enums).
"""

from __future__ import annotations

from .types import (
    DEPARTMENT_NAMES,
    AccountKind,
    Category,
    Level,
    PaymentKind,
    ProcurementCategory,
    ProcurementMethod,
    Severity,
)

# code -> (zh, en). Codes of the different enums never collide (a test checks), so one table serves.
LABELS: dict[str, tuple[str, str]] = {
    # purpose / project categories (专项资金用途、项目类别)
    Category.INFRASTRUCTURE: ("农村基础设施", "rural infrastructure"),
    Category.INDUSTRY: ("乡村产业发展", "rural industry"),
    Category.ENVIRONMENT: ("人居环境整治", "living environment"),
    Category.FARMLAND: ("高标准农田", "high-standard farmland"),
    Category.WATER: ("农村供水与水利", "rural water supply"),
    Category.CULTURE: ("乡村文化", "rural culture"),
    Category.RUNNING_COSTS: ("日常运转经费", "running costs"),
    Category.VEHICLES: ("车辆购置", "vehicles"),
    Category.BUILDINGS: ("楼堂馆所", "office buildings"),
    Category.DEBT: ("偿还债务", "debt repayment"),
    Category.SALARIES: ("工资福利", "salaries"),
    # procurement categories and methods
    ProcurementCategory.CONSTRUCTION: ("施工", "construction"),
    ProcurementCategory.GOODS: ("货物", "goods"),
    ProcurementCategory.SERVICES: ("服务", "services"),
    ProcurementMethod.OPEN_TENDER: ("公开招标", "open tender"),
    ProcurementMethod.INVITATION: ("邀请招标", "invited tender"),
    ProcurementMethod.NEGOTIATION: ("竞争性谈判", "competitive negotiation"),
    ProcurementMethod.INQUIRY: ("询价", "request for quotations"),
    ProcurementMethod.SINGLE_SOURCE: ("单一来源", "single source"),
    ProcurementMethod.DIRECT: ("直接委托", "direct award"),
    # levels
    Level.PROVINCE: ("省级", "province"),
    Level.CITY: ("市级", "city"),
    Level.COUNTY: ("县级", "county"),
    Level.TOWN: ("镇级", "town"),
    Level.VILLAGE: ("村级", "village"),
    # accounts and payments
    AccountKind.CORPORATE: ("单位账户", "corporate account"),
    AccountKind.PERSONAL: ("个人账户", "personal account"),
    AccountKind.WAGE: ("农民工工资专户", "migrant-wage account"),
    PaymentKind.PREPAYMENT: ("预付款", "prepayment"),
    PaymentKind.PROGRESS: ("进度款", "progress payment"),
    PaymentKind.FINAL: ("尾款", "final payment"),
    PaymentKind.OTHER: ("其他款项", "other payment"),
    Severity.LOW: ("低", "low"),
    Severity.MEDIUM: ("中", "medium"),
    Severity.HIGH: ("高", "high"),
    Severity.CRITICAL: ("严重", "critical"),
    # event types
    "FundAllocated": ("资金下达", "fund allocation"),
    "FundTransferred": ("资金下拨", "fund transfer"),
    "ProjectApproved": ("项目立项", "project approval"),
    "ProcurementAwarded": ("采购授标", "procurement award"),
    "ContractSigned": ("合同签订", "contract signing"),
    "ContractAmended": ("合同变更", "contract amendment"),
    "PaymentDisbursed": ("资金支付", "payment"),
    "ProjectAccepted": ("项目验收", "project acceptance"),
    "ProjectSettled": ("项目结算", "project settlement"),
    "FundReturned": ("资金退回", "fund return"),
    "BudgetAdjusted": ("预算调剂", "budget adjustment"),
    # bidder fields compared for collusion
    "legal_rep_id": ("法定代表人", "legal representative"),
    "phone": ("联系电话", "phone number"),
    "bank_account": ("银行账户", "bank account"),
    "address": ("地址", "address"),
    **{str(d): names for d, names in DEPARTMENT_NAMES.items()},
}


def label(code: object, lang: str) -> str:
    """The label of a code in `lang` ('zh' or 'en'); an unknown code is shown as it is."""
    names = LABELS.get(str(code))
    if names is None:
        return str(code)
    return names[0] if lang == "zh" else names[1]
