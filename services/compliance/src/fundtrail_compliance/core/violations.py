"""Deterministic violation ids, explanation templates, and the violation / resolution events."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Any

from fundtrail_schemas.cases import SYSTEM_ACTOR
from fundtrail_schemas.events import Evidence, ViolationRaised, ViolationResolved
from fundtrail_schemas.rulepack import Rule
from fundtrail_schemas.types import Department, Level

# Namespace of violation ids: uuid5(namespace, "<rule id>@<version>\x1f<triggering event id>").
VIOLATION_NAMESPACE = uuid.UUID("3b9e3c0a-51c4-4d43-9a55-2f0d6a7c4e21")
RESOLUTION_NAMESPACE = uuid.UUID("a4f0c7de-1f3e-4c1b-8e0e-5f6d2b9c7a33")
COMPLIANCE_ACTOR = SYSTEM_ACTOR  # the contract names it (fundtrail_schemas.cases)
_CJK = "\u3000-\u303f\u3400-\u9fff\uff00-\uffef"
_CJK_SPACE = re.compile(f"(?<=[{_CJK}]) +| +(?=[{_CJK}])")
_FIELD = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::(yuan|pct))?}")


def violation_id(rule_ref: str, triggering_event_id: uuid.UUID | str) -> uuid.UUID:
    """The one id a rule version can give a violation about one triggering event."""
    return uuid.uuid5(VIOLATION_NAMESPACE, f"{rule_ref}\x1f{triggering_event_id}")


def resolution_id(violation: uuid.UUID, refuting_event_id: uuid.UUID | str) -> uuid.UUID:
    """Deterministic event id of a ViolationResolved."""
    return uuid.uuid5(RESOLUTION_NAMESPACE, f"{violation}\x1f{refuting_event_id}")


def format_yuan(fen: Any) -> str:
    """Fen as CNY with thousands separators, exact (no floats)."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        return format_value(fen, "en")
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d}"


def format_pct(bps: Any) -> str:
    """Basis points as a percentage (1000 → 10%)."""
    if not isinstance(bps, int) or isinstance(bps, bool):
        return format_value(bps, "en")
    whole, frac = divmod(bps, 100)
    return f"{whole}%" if frac == 0 else f"{whole}.{frac:02d}".rstrip("0") + "%"


def format_value(value: Any, lang: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")
    if isinstance(value, list):
        flat = [format_value(v, lang) for v in value]
        return "、".join(flat) if lang == "zh" else ", ".join(flat)
    return str(value)


def render(template: str, values: dict[str, Any], lang: str) -> str:
    """Fill `{name}` / `{name:yuan}` / `{name:pct}` placeholders; whitespace runs collapse to one."""

    def one(m: re.Match[str]) -> str:
        value = values.get(m.group(1))
        if m.group(2) == "yuan":
            return format_yuan(value)
        if m.group(2) == "pct":
            return format_pct(value)
        return format_value(value, lang)

    text = re.sub(r"\s+", " ", _FIELD.sub(one, template)).strip()
    if lang == "zh":
        # Folded YAML leaves spaces next to Chinese text, where none belong.
        text = _CJK_SPACE.sub("", text)
    return text


def jsonable(value: Any) -> Any:
    """CEL results as JSON values (timestamps as ISO text)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return value


def build_violation(
    *,
    rule: Rule,
    triggering_event_id: uuid.UUID,
    occurred_at: datetime,
    published_at: datetime,
    source_bureau: str,
    level: Level | str,
    region_code: str,
    fund_doc_no: str | None,
    project_id: str | None,
    evidence_event_ids: list[uuid.UUID],
    named: dict[str, Any],
    read: dict[str, Any],
    params: dict[str, Any],
    trace_id: str | None,
) -> ViolationRaised:
    """A ViolationRaised whose id and content depend only on the rule version and its inputs."""
    vid = violation_id(rule.ref, triggering_event_id)
    named = {k: jsonable(v) for k, v in named.items()}
    values = {**named, "read": jsonable(read), "params": jsonable(dict(params))}
    template_values = {**params, **named}
    return ViolationRaised(
        event_id=vid,
        occurred_at=occurred_at,
        published_at=published_at,
        source_bureau=source_bureau,
        level=Level(level),
        region_code=region_code,
        fund_doc_no=fund_doc_no,
        project_id=project_id,
        violation_id=vid,
        rule_id=rule.id,
        rule_version=rule.version,
        department=Department(rule.id.split(".", 1)[0]),
        severity=rule.severity,
        triggering_event_id=triggering_event_id,
        evidence=Evidence(event_ids=evidence_event_ids, values=values),
        explanation_zh=render(rule.explanation_zh, template_values, "zh")[:4000],
        explanation_en=render(rule.explanation_en, template_values, "en")[:4000],
        legal_basis=rule.legal_basis.strip(),
        trace_id=trace_id,
    )


def build_resolution(
    *,
    violation: uuid.UUID,
    refuting_event_id: uuid.UUID,
    occurred_at: datetime,
    published_at: datetime,
    source_bureau: str,
    level: Level | str,
    region_code: str,
    fund_doc_no: str | None,
    project_id: str | None,
    reason: str,
) -> ViolationResolved:
    """The ViolationResolved compliance publishes when late evidence refutes a violation."""
    return ViolationResolved(
        event_id=resolution_id(violation, refuting_event_id),
        occurred_at=occurred_at,
        published_at=published_at,
        source_bureau=source_bureau,
        level=Level(level),
        region_code=region_code,
        fund_doc_no=fund_doc_no,
        project_id=project_id,
        violation_id=violation,
        actor=COMPLIANCE_ACTOR,
        reason=reason[:500],
        refuting_event_id=refuting_event_id,
    )
