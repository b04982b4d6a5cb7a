"""Rules catalogue: departments, rule packs, every rule with all its versions; admins publish packs."""

from __future__ import annotations

import logging
from typing import Any

import yaml
from fastapi import APIRouter, Request
from starlette.responses import Response

from fundtrail_schemas.catalogue import BY_RULE_ID
from fundtrail_schemas.rulepack import RulePack, RulePackError, parse_pack
from fundtrail_schemas.topics import HEADER_SCHEMA_VERSION, RULE_PACKS, department_topic
from fundtrail_schemas.types import DEPARTMENT_NAMES, Department

from ...adapters.publisher import OutMessage, PublisherUnavailable
from ...core.problems import FieldProblem, ProblemError, conflict, make_problem, not_found, unavailable, unprocessable
from ..deps import Admin, AnyRole, PublisherDep, RuntimeDep, SettingsDep
from ..models import DepartmentOut, PackPublished, RulePackSummary, RuleVersions
from ..openapi import problem_responses
from ..paging import json_response, link
from .events import read_json_body

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["rules"])


def _packs(runtime: RuntimeDep) -> dict[str, RulePack]:
    return {p.department.value: p for p in runtime.packs}


@router.get("/departments", response_model=list[DepartmentOut], responses=problem_responses(), summary="Departments")
async def departments(principal: AnyRole, runtime: RuntimeDep) -> Response:
    """The nine departments, their violations topics and rule-pack versions."""
    packs = _packs(runtime)
    body = [
        {
            "code": d.value,
            "name_zh": zh,
            "name_en": en,
            "violations_topic": department_topic(d),
            "pack_version": packs[d.value].pack_version if d.value in packs else None,
            "rules": len({r.id for r in packs[d.value].rules}) if d.value in packs else 0,
        }
        for d, (zh, en) in DEPARTMENT_NAMES.items()
    ]
    return json_response(body)


@router.get("/rulepacks", response_model=list[RulePackSummary], responses=problem_responses(), summary="Rule packs")
async def rulepacks(principal: AnyRole, runtime: RuntimeDep, settings: SettingsDep) -> Response:
    """Every loaded rule pack."""
    body = [
        {
            "department": p.department.value,
            "pack_version": p.pack_version,
            "description": p.description,
            "rules": len(p.rules),
            "links": {"self": link(settings, f"/v1/rulepacks/{p.department.value}")},
        }
        for p in runtime.packs
    ]
    return json_response(body)


@router.get(
    "/rulepacks/{department}", response_model=RulePack, responses=problem_responses(404), summary="One rule pack"
)
async def rulepack(department: Department, principal: AnyRole, runtime: RuntimeDep) -> Response:
    """The full pack document of a department."""
    pack = _packs(runtime).get(department.value)
    if pack is None:
        raise not_found(f"no rule pack for {department.value}")
    return json_response(pack.model_dump(mode="json"))


def _rule_versions(packs: list[RulePack]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for pack in packs:
        for rule in sorted(pack.rules, key=lambda r: (r.id, r.version)):
            entry = BY_RULE_ID.get(rule.id)
            item = out.setdefault(rule.id, {
                "rule_id": rule.id,
                "department": pack.department.value,
                "catalogue_no": entry.no if entry else rule.catalogue_no,
                "summary": entry.summary if entry else rule.title_en,
                "versions": [],
            })
            item["versions"].append(rule.model_dump(mode="json"))
    return out


@router.get("/rules", response_model=list[RuleVersions], responses=problem_responses(), summary="Every rule")
async def rules(principal: AnyRole, runtime: RuntimeDep, department: Department | None = None) -> Response:
    """Every rule with all its versions and effective dates."""
    packs = [p for p in runtime.packs if department is None or p.department == department]
    return json_response(sorted(_rule_versions(packs).values(), key=lambda r: r["rule_id"]))


@router.get("/rules/{rule_id}", response_model=RuleVersions, responses=problem_responses(404), summary="One rule")
async def rule(rule_id: str, principal: AnyRole, runtime: RuntimeDep) -> Response:
    """All versions of one rule."""
    found = _rule_versions(runtime.packs).get(rule_id)
    if found is None:
        raise not_found(f"no rule {rule_id!r}")
    return json_response(found)


def _published_versions_kept(old: RulePack, new: RulePack) -> list[str]:
    """Rule versions of `old` that `new` drops or changes (published versions are never edited)."""
    new_by_ref = {r.ref: r for r in new.rules}
    return [r.ref for r in old.rules if new_by_ref.get(r.ref) != r]


@router.put(
    "/rulepacks/{department}",
    status_code=202,
    response_model=PackPublished,
    responses=problem_responses(400, 404, 409, 413, 415, 503),
    summary="Publish a rule pack",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A rule-pack document (JSON, or YAML as application/yaml), validated before publishing",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/RulePack"}},
                "application/yaml": {"schema": {"$ref": "#/components/schemas/RulePack"}},
            },
        }
    },
    description=(
        "Validates the pack (structure, rule ids of this department, non-overlapping versions, templates) and "
        "publishes it to the compacted rule-packs topic keyed by department. A pack may only add versions: "
        "changing or dropping a published rule version, or not raising pack_version, is a 409."
    ),
)
async def put_rulepack(
    department: Department, request: Request, principal: Admin, runtime: RuntimeDep, publisher: PublisherDep
) -> Response:
    """Publish a validated rule pack for a department."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("application/yaml", "application/x-yaml", "text/yaml"):
        text = (await request.body()).decode("utf-8", errors="replace")
    elif ctype in ("application/json", ""):
        text = yaml.safe_dump(await read_json_body(request, runtime.settings.max_upload_bytes), allow_unicode=True)
    else:
        raise ProblemError(make_problem(415, f"send application/json or application/yaml, not {ctype}"))
    try:
        try:
            pack = parse_pack(text, f"PUT /v1/rulepacks/{department.value}")
        except RecursionError as exc:  # YAML nested past the parser's recursion limit
            raise RulePackError(f"PUT /v1/rulepacks/{department.value}", "the document is nested too deeply") from exc
    except RulePackError as exc:
        errors = [FieldProblem(field=exc.rule or "(pack)", message=exc.problem)]
        raise unprocessable(f"the rule pack is not valid: {exc.problem}", errors, slug="invalid-rulepack") from exc
    if pack.department != department:
        raise unprocessable(
            f"the pack is for {pack.department.value}, not {department.value}",
            [FieldProblem(field="department", message="does not match the path")],
            slug="invalid-rulepack",
        )
    current = _packs(runtime).get(department.value)
    if current is not None:
        if pack.pack_version <= current.pack_version:
            raise conflict(f"pack_version must be above the current {current.pack_version}", slug="stale-rulepack")
        changed = _published_versions_kept(current, pack)
        if changed:
            raise conflict(f"published rule versions may not change or disappear: {', '.join(changed)}",
                           slug="rule-version-changed")
    value = pack.model_dump_json().encode()
    headers = [("fundtrail-document", b"RulePack"), (HEADER_SCHEMA_VERSION, b"1")]
    try:
        (delivery,) = await publisher.publish([OutMessage(RULE_PACKS, department.value.encode(), value, headers)])
    except PublisherUnavailable as exc:
        raise unavailable("the event broker is not reachable; nothing was published") from exc
    if not delivery.ok:
        raise unavailable(f"the broker did not acknowledge the pack: {delivery.error}")
    runtime.packs = sorted([*(p for p in runtime.packs if p.department != department), pack],
                           key=lambda p: p.department.value)
    log.info("published rule pack %s v%d by %s", department.value, pack.pack_version, principal.subject)
    return json_response(
        {
            "department": department.value,
            "pack_version": pack.pack_version,
            "rules": len(pack.rules),
            "topic": RULE_PACKS,
            "partition": delivery.partition,
            "offset": delivery.offset,
        },
        status_code=202,
    )
