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

Violation evidence follows the same rule (`redact_evidence`): a regional reader keeps the values read
from the violation's own event, its own position, the fund, project and contract, the rule's parameters
and timers; values read from a counterparty position, vendor totals or reference data, other payments of
the invoice, or other events (a window, a dependency) may name another region's accounts and payees and
are withheld, their names listed under `withheld`. A named value is kept only when its rule's evidence
expression reads visible paths alone (rules unknown to the gateway: every named value is withheld).

Auditors (no region) see everything. Trail items, event and violation details apply this rule to
the states parsed from the leaf; the leaf bytes themselves go to a regional reader only when this
rule withholds nothing of them (`core.leafview.leaf_withheld`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from fundtrail_schemas.rulepack import RulePack
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


# Evidence paths a regional reader may see (module docstring); `ref.vendor.vendor_id` is as visible as
# the vendor id a redacted state keeps.
_VISIBLE_PREFIXES = ("event.", "params.", "timer.", "position.", "before.position.", "after.position.",
                     "before.fund.", "after.fund.", "before.project.", "after.project.", "before.contract.",
                     "after.contract.")
_VISIBLE_PATHS = frozenset({"ref.vendor.vendor_id"})
# A path in a rule expression: a root the evaluator binds, then member names.
_PATH = re.compile(r"\b(?:event|before|after|ref|deps|window|position|timer|params)(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
EvidenceRules = Mapping[tuple[str, int], Mapping[str, str]]
"""(rule id, version) -> the rule's evidence expressions by name."""


def evidence_rules(packs: Iterable[RulePack]) -> dict[tuple[str, int], Mapping[str, str]]:
    """The evidence expressions of every rule version in `packs`."""
    return {(rule.id, rule.version): rule.evidence for pack in packs for rule in pack.rules}


def _visible(path: str) -> bool:
    return path in _VISIBLE_PATHS or path.startswith(_VISIBLE_PREFIXES)


def redact_evidence(evidence: Any, region: str | None, expressions: Mapping[str, str] | None) -> Any:
    """A violation's `evidence` as a reader of `region` may see it (None: unrestricted; module docstring).

    `expressions` are the rule's evidence expressions by name (None: the rule is unknown)."""
    values = evidence.get("values") if isinstance(evidence, dict) else None
    if region is None or not isinstance(values, dict):
        return evidence
    kept: dict[str, Any] = {}
    withheld: list[str] = []
    for name, value in values.items():
        if name == "params":
            kept[name] = value
        elif name == "read" and isinstance(value, dict):
            kept[name] = {path: v for path, v in value.items() if _visible(path)}
            withheld += [f"read.{path}" for path in value if not _visible(path)]
        elif expressions is not None and name in expressions and all(
                _visible(path) for path in _PATH.findall(expressions[name])):
            kept[name] = value
        else:
            withheld.append(name)
    return {**evidence, "values": kept, "withheld": sorted(withheld)} if withheld else evidence


def redact_violation(payload: Any, region: str | None, rules: EvidenceRules) -> Any:
    """A ViolationRaised payload with its evidence as a reader of `region` may see it."""
    if region is None or not isinstance(payload, dict) or "evidence" not in payload:
        return payload
    key = (payload.get("rule_id"), payload.get("rule_version"))
    evidence = redact_evidence(payload["evidence"], region, rules.get(key))  # type: ignore[arg-type]
    return payload if evidence is payload["evidence"] else {**payload, "evidence": evidence}
