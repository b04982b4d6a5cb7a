"""The rule catalogue of docs/domain.md: stable rule ids, their catalogue numbers and owners.

Derived from the rule packs (services/compliance/rulepacks), the one place a rule is defined. The
contract sits below the services and reads no files at import, so the derived table is checked in
as `catalogue_generated.py`: `render` writes it, a test in the compliance service fails when it has
drifted from the packs, and `python -m fundtrail_schemas.catalogue services/compliance/rulepacks`
rewrites it. Some catalogue numbers state two checks and so have two rule ids.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalogue_generated import ENTRIES, PARAMETERS
from .rulepack import RulePack, load_pack_dir
from .types import Department

GENERATED = Path(__file__).resolve().parent / "catalogue_generated.py"


@dataclass(frozen=True)
class CatalogueEntry:
    no: int
    rule_id: str
    department: Department
    summary: str


CATALOGUE: tuple[CatalogueEntry, ...] = tuple(
    CatalogueEntry(no, rule_id, Department(dept), summary) for no, rule_id, dept, summary in ENTRIES
)
RULE_IDS = frozenset(e.rule_id for e in CATALOGUE)
BY_RULE_ID = {e.rule_id: e for e in CATALOGUE}


def parameters(rule_id: str) -> dict[str, Any]:
    """Default parameters of a rule's open-ended (current) version, as its pack declares them."""
    return dict(PARAMETERS[rule_id])


def _lit(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def render(packs: Iterable[RulePack]) -> str:
    """The text of `catalogue_generated.py` for these packs: one entry per rule id (number, id,
    department, English title of its latest version) and the defaults of its current version."""
    latest: dict[str, Any] = {}
    for pack in packs:
        for rule in pack.rules:
            if rule.id not in latest or rule.version > latest[rule.id][1].version:
                latest[rule.id] = (pack.department.value, rule)
    lines = [
        '"""Generated from the rule packs by `python -m fundtrail_schemas.catalogue <pack dir>`; do not edit."""',
        "",
        "from typing import Any",
        "",
        "ENTRIES: tuple[tuple[int, str, str, str], ...] = (",
    ]
    for rule_id, (dept, rule) in sorted(latest.items(), key=lambda kv: (kv[1][1].catalogue_no, kv[0])):
        line = f"    ({rule.catalogue_no}, {_lit(rule_id)}, {_lit(dept)}, {_lit(rule.title_en)}),"
        if len(line) > 120:
            line = f"    ({rule.catalogue_no}, {_lit(rule_id)}, {_lit(dept)},\n     {_lit(rule.title_en)}),"
        lines.append(line)
    lines += [")", "", "PARAMETERS: dict[str, dict[str, Any]] = {"]
    for rule_id, (_, rule) in sorted(latest.items()):
        if rule.parameters:
            values = ", ".join(f"{_lit(k)}: {_lit(p.default)}" for k, p in rule.parameters.items())
            line = f"    {_lit(rule_id)}: {{{values}}},"
            if len(line) > 120:
                inner = "".join(f"        {_lit(k)}: {_lit(p.default)},\n" for k, p in rule.parameters.items())
                line = f"    {_lit(rule_id)}: {{\n{inner}    }},"
            lines.append(line)
    lines += ["}", ""]
    return "\n".join(lines)


if __name__ == "__main__":  # regenerate: python -m fundtrail_schemas.catalogue services/compliance/rulepacks
    GENERATED.write_text(render(load_pack_dir(Path(sys.argv[1]))), encoding="utf-8")
