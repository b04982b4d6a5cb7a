"""Realistic Chinese names for generated vendors, people, projects and funds (all deterministic)."""

from __future__ import annotations

import random

from fundtrail_schemas.regions import Region
from fundtrail_schemas.types import Category, ProcurementCategory

# 字号 syllables of company names; combined pairwise they give ~900 distinct trade names.
_TRADE_A = "恒粤华新宏盛鸿达永利嘉汇顺联瑞丰富源广信金泰裕兴安邦锦程天成明德骏业协力"
_TRADE_B = "建海江城达信和发泰隆通安远航景润晟昌宇星耀辉源腾"
_INDUSTRY = (
    ("建设工程", ProcurementCategory.CONSTRUCTION),
    ("建筑工程", ProcurementCategory.CONSTRUCTION),
    ("市政工程", ProcurementCategory.CONSTRUCTION),
    ("水利水电工程", ProcurementCategory.CONSTRUCTION),
    ("园林绿化工程", ProcurementCategory.CONSTRUCTION),
    ("路桥工程", ProcurementCategory.CONSTRUCTION),
    ("农业科技", ProcurementCategory.GOODS),
    ("机电设备", ProcurementCategory.GOODS),
    ("环保科技", ProcurementCategory.GOODS),
    ("工程咨询", ProcurementCategory.SERVICES),
    ("环境服务", ProcurementCategory.SERVICES),
    ("文化传播", ProcurementCategory.SERVICES),
)
_ROADS = ("振兴路", "建设路", "跃进路", "人民路", "东华路", "迎宾路", "新兴路", "中山路", "环城路", "育英路", "侨乡路")
_SURNAMES = "陈李黄梁张吴林何关谭余邓冯伍司徒区甄周胡卢"
_GIVEN = "伟明志强国华建平嘉敏丽芳永杰俊文家辉美玲晓东海锦秀荣"

_FUND_THEMES: dict[Category, tuple[str, str]] = {
    Category.INFRASTRUCTURE: ("江财农", "百千万工程农村基础设施建设专项资金"),
    Category.INDUSTRY: ("江财农", "乡村产业发展专项资金"),
    Category.ENVIRONMENT: ("江财资环", "农村人居环境整治提升专项资金"),
    Category.FARMLAND: ("江财农", "高标准农田建设专项资金"),
    Category.WATER: ("江财农水", "农村供水保障与水利建设专项资金"),
    Category.CULTURE: ("江财教文", "乡村文化振兴专项资金"),
}

_PROJECTS: dict[tuple[Category, ProcurementCategory], tuple[str, ...]] = {
    (Category.INFRASTRUCTURE, ProcurementCategory.CONSTRUCTION): (
        "村道硬底化工程", "村道拓宽改造工程", "农村公路安全生命防护工程", "乡村振兴示范带道路提升工程",
        "桥梁危桥改造工程",
    ),
    (Category.INFRASTRUCTURE, ProcurementCategory.GOODS): ("太阳能路灯采购项目", "村道标识标牌采购项目"),
    (Category.INFRASTRUCTURE, ProcurementCategory.SERVICES): ("农村公路养护服务项目", "工程监理服务项目"),
    (Category.INDUSTRY, ProcurementCategory.CONSTRUCTION): ("农产品加工厂房建设工程", "现代农业产业园配套工程"),
    (Category.INDUSTRY, ProcurementCategory.GOODS): (
        "农产品冷链设备采购项目", "陈皮仓储设备采购项目", "水产养殖设备采购项目", "农机具采购项目",
    ),
    (Category.INDUSTRY, ProcurementCategory.SERVICES): ("农产品品牌推广服务项目", "电商助农运营服务项目"),
    (Category.ENVIRONMENT, ProcurementCategory.CONSTRUCTION): (
        "生活污水处理设施建设工程", "人居环境整治提升工程", "村庄绿化美化工程", "农村厕所改造工程",
    ),
    (Category.ENVIRONMENT, ProcurementCategory.GOODS): ("垃圾分类收集设备采购项目",),
    (Category.ENVIRONMENT, ProcurementCategory.SERVICES): ("农村生活垃圾清运服务项目", "污水处理设施运维服务项目"),
    (Category.FARMLAND, ProcurementCategory.CONSTRUCTION): (
        "高标准农田建设项目", "农田水利灌溉渠道改造工程", "机耕路建设工程",
    ),
    (Category.FARMLAND, ProcurementCategory.GOODS): ("高效节水灌溉设备采购项目",),
    (Category.FARMLAND, ProcurementCategory.SERVICES): ("耕地质量监测服务项目",),
    (Category.WATER, ProcurementCategory.CONSTRUCTION): (
        "农村供水管网改造工程", "山塘水库除险加固工程", "河涌整治工程", "堤围加固工程",
    ),
    (Category.WATER, ProcurementCategory.GOODS): ("供水水质检测设备采购项目",),
    (Category.WATER, ProcurementCategory.SERVICES): ("农村供水工程运维服务项目",),
    (Category.CULTURE, ProcurementCategory.CONSTRUCTION): ("侨乡文化广场建设工程", "碉楼古村落保护修缮工程"),
    (Category.CULTURE, ProcurementCategory.GOODS): ("农家书屋图书采购项目", "文化室设备采购项目"),
    (Category.CULTURE, ProcurementCategory.SERVICES): ("乡村文化活动策划服务项目", "非遗传承培训服务项目"),
}

NEGATIVE_PROJECTS: dict[Category, str] = {
    Category.VEHICLES: "公务用车购置项目",
    Category.BUILDINGS: "办公楼装修改造工程",
    Category.RUNNING_COSTS: "村委会日常办公经费",
    Category.DEBT: "偿还村集体历史债务",
    Category.SALARIES: "村干部绩效补贴发放",
}


def trade_name(index: int) -> str:
    """A company trade name (字号) for a vendor index."""
    a = _TRADE_A[index % len(_TRADE_A)]
    b = _TRADE_B[(index // len(_TRADE_A)) % len(_TRADE_B)]
    return a + b


def industry(index: int) -> tuple[str, ProcurementCategory]:
    """Industry word and main procurement category of a vendor index."""
    return _INDUSTRY[(index * 7 + index // 97) % len(_INDUSTRY)]


def road(index: int) -> str:
    return _ROADS[index % len(_ROADS)]


def person(rng: random.Random) -> str:
    """A plausible personal name."""
    return rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(_GIVEN)


def fund_theme(category: Category) -> tuple[str, str]:
    """Document-number prefix and title of a fund of this purpose."""
    return _FUND_THEMES[category]


def project_name(rng: random.Random, region: Region, category: Category, proc: ProcurementCategory) -> str:
    """A project name such as 大泽镇五和村村道硬底化工程."""
    if category in NEGATIVE_PROJECTS:
        return region.name + NEGATIVE_PROJECTS[category]
    options = _PROJECTS.get((category, proc)) or _PROJECTS[(category, ProcurementCategory.CONSTRUCTION)]
    return region.name + rng.choice(options)


def procurement_categories(category: Category) -> tuple[tuple[ProcurementCategory, int], ...]:
    """Weighted procurement categories for projects of a purpose category."""
    c, g, s = ProcurementCategory.CONSTRUCTION, ProcurementCategory.GOODS, ProcurementCategory.SERVICES
    if category is Category.INDUSTRY:
        return ((c, 3), (g, 5), (s, 2))
    if category is Category.CULTURE:
        return ((c, 4), (g, 3), (s, 3))
    return ((c, 7), (g, 2), (s, 1))
