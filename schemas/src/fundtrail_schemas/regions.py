"""The Jiangmen region registry: the city, its 7 county-level divisions, 73 towns and ~1,000 villages.

County codes are GB/T 2260. Town codes extend them to 9 digits (subdistricts 0xx, towns 1xx) and
village codes to 12 digits (2xx); town names are the real ones, village names are generated
(deterministically, the same on every machine) because the real list is not needed by any rule.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from .types import Level, level_of_region, parent_region

PROVINCE_CODE = "440000"
CITY_CODE = "440700"
CITY_NAME = "江门市"


@dataclass(frozen=True)
class Region:
    """One administrative region of the registry."""

    code: str
    name: str
    level: Level
    short: str = ""

    @property
    def parent_code(self) -> str | None:
        return parent_region(self.code)


# (code, name, short name used in document numbers, towns: subdistricts first, then towns)
_COUNTIES: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("440703", "蓬江区", "蓬", ("环市街道", "白沙街道", "潮连街道"), ("杜阮镇", "棠下镇", "荷塘镇")),
    ("440704", "江海区", "江海", ("江南街道", "外海街道", "礼乐街道"), ()),
    (
        "440705",
        "新会区",
        "新",
        ("会城街道",),
        ("大泽镇", "司前镇", "罗坑镇", "双水镇", "崖门镇", "沙堆镇", "古井镇", "三江镇", "睦洲镇", "大鳌镇"),
    ),
    (
        "440781",
        "台山市",
        "台",
        ("台城街道",),
        (
            "大江镇", "水步镇", "四九镇", "白沙镇", "三合镇", "冲蒌镇", "斗山镇", "都斛镇",
            "赤溪镇", "端芬镇", "广海镇", "海宴镇", "汶村镇", "深井镇", "北陡镇", "川岛镇",
        ),
    ),
    (
        "440783",
        "开平市",
        "开",
        ("长沙街道", "三埠街道"),
        (
            "月山镇", "水口镇", "沙塘镇", "苍城镇", "龙胜镇", "大沙镇", "马冈镇",
            "塘口镇", "赤坎镇", "百合镇", "蚬冈镇", "金鸡镇", "赤水镇",
        ),
    ),
    (
        "440784",
        "鹤山市",
        "鹤",
        ("沙坪街道",),
        ("龙口镇", "雅瑶镇", "古劳镇", "桃源镇", "鹤城镇", "共和镇", "址山镇", "宅梧镇", "双合镇"),
    ),
    (
        "440785",
        "恩平市",
        "恩",
        ("恩城街道",),
        ("横陂镇", "圣堂镇", "良西镇", "东成镇", "君堂镇", "大槐镇", "沙湖镇", "牛江镇", "那吉镇", "大田镇"),
    ),
)

# Syllables for generated village names (common in Jiangmen place names).
_VILLAGE_FIRST = "五沙小石龙凤新联东西南北中上下大长平安和永福金莲塘岗田江湾桥坑冲洲"
_VILLAGE_SECOND = "和冲冈头塘坑边岭美兴华光明溪山洞湖围坡朗垌咀乐安丰盛源"


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


CITY = Region(CITY_CODE, CITY_NAME, Level.CITY, "江")


@cache
def counties() -> tuple[Region, ...]:
    """The 7 county-level divisions of Jiangmen."""
    return tuple(Region(code, name, Level.COUNTY, short) for code, name, short, _, _ in _COUNTIES)


@cache
def towns(county_code: str | None = None) -> tuple[Region, ...]:
    """Towns and subdistricts (9-digit codes), of one county or of the whole city."""
    out: list[Region] = []
    for code, _, _, streets, town_names in _COUNTIES:
        if county_code is not None and code != county_code:
            continue
        out.extend(Region(f"{code}{i + 1:03d}", n, Level.TOWN, n[:-2]) for i, n in enumerate(streets))
        out.extend(Region(f"{code}{101 + i:03d}", n, Level.TOWN, n[:-1]) for i, n in enumerate(town_names))
    return tuple(out)


@cache
def villages(town_code: str) -> tuple[Region, ...]:
    """Administrative villages of a town (12-digit codes, generated names, 8 to 20 per town)."""
    count = 8 + _digest(town_code) % 13
    names: list[str] = []
    k = 0
    while len(names) < count:
        h = _digest(f"{town_code}:{k}")
        k += 1
        name = _VILLAGE_FIRST[h % len(_VILLAGE_FIRST)] + _VILLAGE_SECOND[(h >> 8) % len(_VILLAGE_SECOND)] + "村"
        if name not in names:
            names.append(name)
    return tuple(Region(f"{town_code}{201 + i:03d}", n, Level.VILLAGE, n[:-1]) for i, n in enumerate(names))


@cache
def _index() -> dict[str, Region]:
    out = {CITY_CODE: CITY}
    for c in counties():
        out[c.code] = c
    for t in towns():
        out[t.code] = t
        for v in villages(t.code):
            out[v.code] = v
    return out


def region(code: str) -> Region:
    """The region with this code; KeyError when it is not in the registry."""
    return _index()[code]


def is_known(code: str) -> bool:
    """Whether the code is a Jiangmen region of the registry."""
    return code in _index()


def full_name(code: str) -> str:
    """Name with its parents, e.g. 江门市新会区大泽镇五和村."""
    parts: list[str] = []
    current: str | None = code
    while current is not None and current in _index():
        parts.append(_index()[current].name)
        current = parent_region(current) if level_of_region(current) is not Level.CITY else None
    return "".join(reversed(parts))


def children(code: str) -> tuple[Region, ...]:
    """The regions one level below `code`."""
    level = level_of_region(code)
    if level is Level.CITY:
        return counties()
    if level is Level.COUNTY:
        return towns(code)
    if level is Level.TOWN:
        return villages(code)
    return ()
