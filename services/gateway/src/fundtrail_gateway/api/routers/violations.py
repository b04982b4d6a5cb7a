"""Violations: list and filter, detail with evidence, case actions, live stream."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import ValidationError
from starlette.responses import Response

from fundtrail_schemas.cases import EVENT_TYPE_OF, CaseAction, CaseRole, CaseStatus, allowed_actions, decide, overdue
from fundtrail_schemas.decode import encode_event, has_nul, parse_object, plain_errors
from fundtrail_schemas.events import EVENT_TYPES, ViolationRaised, event_key, now_utc
from fundtrail_schemas.headers import event_headers
from fundtrail_schemas.telemetry import current_trace_id
from fundtrail_schemas.topics import CASES
from fundtrail_schemas.types import Department, Severity, level_of_region

from ...adapters import repository
from ...adapters.publisher import OutMessage, PublisherUnavailable
from ...adapters.violation_tail import ViolationTail
from ...core.cursor import cursor_or_problem, encode_cursor
from ...core.leafview import leaf_block
from ...core.problems import (
    FieldProblem,
    ProblemError,
    conflict,
    make_problem,
    not_found,
    unavailable,
    unprocessable,
)
from ...core.regions import DISJOINT, intersect, region_prefix
from ...core.scoping import evidence_rules, redact_violation
from ..deps import CaseActor, PublisherDep, Reader, RuntimeDep, SessionDep, SettingsDep
from ..models import (
    AcknowledgeRequest,
    AssignRequest,
    CaseActionAccepted,
    DismissRequest,
    RectifyRequest,
    ViolationDetail,
    ViolationsPage,
)
from ..openapi import problem_responses
from ..paging import CursorQuery, LimitQuery, json_response, link, next_link, page_size, read_prefix, seg
from ..violation_query import RegionQuery, TimeQuery, instant

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/violations", tags=["violations"])

# Serialises check-then-publish of case actions in this process, so two clicks publish one action.
_case_lock = asyncio.Lock()


def _links(settings: SettingsDep, row: Any, trail_seqs: list[int] | None = None) -> dict[str, Any]:
    vid = row.violation_id
    evidence_ids = (row.evidence or {}).get("event_ids", []) if isinstance(row.evidence, dict) else []
    status = row.status
    return {
        "self": link(settings, f"/v1/violations/{vid}"),
        "triggering_event": link(settings, f"/v1/events/{row.triggering_event_id}"),
        "evidence": [link(settings, f"/v1/events/{e}") for e in evidence_ids],
        "fund_trail": link(settings, f"/v1/funds/{seg(row.fund_doc_no)}/trail") if row.fund_doc_no else None,
        "project_trail": link(settings, f"/v1/projects/{seg(row.project_id)}/trail") if row.project_id else None,
        "trail_entries": [link(settings, f"/v1/proofs/entries/{s}") for s in trail_seqs or []],
        "actions": {a.value: link(settings, f"/v1/violations/{vid}/{a.value}") for a in allowed_actions(status)},
    }


def _summary(settings: SettingsDep, row: Any) -> dict[str, Any]:
    return {
        "violation_id": row.violation_id,
        "rule_id": row.rule_id,
        "rule_version": row.rule_version,
        "department": row.department,
        "severity": row.severity,
        "status": row.status,
        "triggering_event_id": row.triggering_event_id,
        "fund_doc_no": row.fund_doc_no,
        "project_id": row.project_id,
        "region_code": row.region_code,
        "occurred_at": row.occurred_at,
        "raised_at": row.raised_at,
        "status_changed_at": row.status_changed_at,
        "trace_id": row.trace_id,
        "explanation_zh": row.explanation_zh,
        "explanation_en": row.explanation_en,
        "assignee": row.assignee,
        "due_date": row.due_date,
        "overdue": overdue(row.status, row.due_date, now_utc()),
        "links": _links(settings, row),
    }


def _scope(principal: Reader, region: str | None) -> str | object | None:
    return intersect(read_prefix(principal), region_prefix(region) if region else None)


@dataclass(frozen=True, slots=True)
class _StreamFilters:
    department: Department | None
    severity: Severity | None
    region: str | None


async def _stream_filters(
    department: Department | None = None, severity: Severity | None = None, region: RegionQuery = None
) -> _StreamFilters:
    # A dependency of its own, so invalid filters are refused before a consumer is opened.
    return _StreamFilters(department, severity, region)


@dataclass(frozen=True, slots=True)
class _StreamStart:
    tail: ViolationTail
    positions: dict[int, int]
    filters: _StreamFilters


def _positions_id(positions: dict[int, int]) -> str:
    return "v1:" + ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))


def _parse_positions(value: str | None) -> dict[int, int] | None:
    if not value or not value.startswith("v1:"):
        return None
    try:
        pairs = [part.split(":") for part in value[3:].split(",") if part]
        return {int(p): int(o) for p, o in pairs if int(o) >= 0}
    except ValueError:
        return None


async def _stream_start(
    runtime: RuntimeDep,
    principal: Reader,
    filters: Annotated[_StreamFilters, Depends(_stream_filters)],
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", max_length=2048, description="Resume after this event (sent by EventSource)"),
    ] = None,
) -> AsyncIterator[_StreamStart]:
    if runtime.sse_connections >= runtime.settings.sse_max_connections:
        raise unavailable("too many live streams are open; retry later", retry_after=10)
    tail = ViolationTail(runtime.settings.kafka_bootstrap_servers)
    try:
        positions = await tail.start(_parse_positions(last_event_id))
    except Exception as exc:
        log.warning("cannot open the violations stream: %s", exc)
        raise unavailable("the event broker is not reachable") from exc
    runtime.sse_connections += 1
    try:
        yield _StreamStart(tail, positions, filters)
    finally:
        runtime.sse_connections -= 1
        await tail.stop()


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses=problem_responses(503),
    summary="Live violations (Server-Sent Events)",
    description=(
        "Each connection tails the all-violations topic from its end with its own consumer (no consumer "
        "group, no commits). The first event is `ready` (the stream is positioned: nothing published after "
        "it is missed); then one `violation` event per ViolationRaised inside the caller's region and the "
        "filters, its data the event JSON. Event ids are partition offsets: a reconnecting EventSource sends "
        "`Last-Event-ID` and resumes exactly where it stopped. Comments (`: ping`) keep idle connections open."
    ),
)
async def stream_violations(
    principal: Reader, runtime: RuntimeDep, start: Annotated[_StreamStart, Depends(_stream_start)]
) -> AsyncIterable[ServerSentEvent]:
    """Server-Sent Events of new violations, filtered by department, severity and region."""
    department, severity = start.filters.department, start.filters.severity
    scope = _scope(principal, start.filters.region)
    positions = dict(start.positions)
    yield ServerSentEvent(event="ready", id=_positions_id(positions), data={"positions": positions})
    if scope is DISJOINT:
        # Nothing can ever match; keep the stream open (pings) rather than pretend an error.
        await asyncio.Event().wait()
    async for msg in start.tail.messages():
        positions[msg.partition] = msg.offset + 1
        parsed = parse_object(_loads(msg.value), source_only=False)
        if not isinstance(parsed, ViolationRaised):
            continue
        if department is not None and parsed.department != department:
            continue
        if severity is not None and parsed.severity != severity:
            continue
        if isinstance(scope, str) and not parsed.region_code.startswith(scope):
            continue
        region = principal.read_region()
        if region is None:
            yield ServerSentEvent(event="violation", id=_positions_id(positions), raw_data=msg.value.decode())
        else:  # evidence as the region may see it (core.scoping)
            shown = redact_violation(_loads(msg.value), region, evidence_rules(runtime.packs))
            yield ServerSentEvent(event="violation", id=_positions_id(positions), raw_data=orjson.dumps(shown).decode())


def _loads(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


@router.get("", response_model=ViolationsPage, responses=problem_responses(400), summary="List violations")
async def list_violations(
    request: Request,
    principal: Reader,
    session: SessionDep,
    settings: SettingsDep,
    department: Department | None = None,
    severity: Severity | None = None,
    rule_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    region: RegionQuery = None,
    status: CaseStatus | None = None,
    fund_doc_no: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    raised_from: TimeQuery = None,
    raised_until: TimeQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = None,
) -> Response:
    """Violations in the caller's region, newest first, filtered."""
    time_from, time_until = instant("raised_from", raised_from), instant("raised_until", raised_until)
    after = cursor_or_problem("violations", cursor, (str, str))
    after_key: tuple[datetime, uuid.UUID] | None = None
    if after is not None:
        try:
            after_key = (datetime.fromisoformat(after[0]), uuid.UUID(after[1]))
        except ValueError as exc:
            problem = make_problem(400, "cursor is not one this server issued", slug="invalid-cursor")
            raise ProblemError(problem) from exc
    scope = _scope(principal, region)
    size = page_size(settings, limit)
    rows: list[Any] = []
    if scope is not DISJOINT:
        flt = repository.ViolationFilter(
            prefix=scope if isinstance(scope, str) else None,
            department=department.value if department else None,
            severity=severity.value if severity else None,
            rule_id=rule_id,
            status=status.value if status else None,
            raised_from=time_from,
            raised_until=time_until,
            fund_doc_no=fund_doc_no,
        )
        rows = list(await repository.violations_page(session, flt, after_key, size))
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = (
        encode_cursor("violations", [rows[-1].raised_at.isoformat(), str(rows[-1].violation_id)]) if more else None
    )
    next_url = next_link(settings, request, next_cursor) if next_cursor else None
    items = [_summary(settings, r) for r in rows]
    return json_response({"items": items, "next": next_url, "next_cursor": next_cursor}, next_url=next_url)


async def _visible_violation(session: SessionDep, principal: Any, violation_id: uuid.UUID) -> Any:
    row = await repository.violation(session, violation_id)
    if row is None or not principal.can_read(row.region_code):
        raise not_found(f"no violation {violation_id} in your region")
    return row


@router.get(
    "/{violation_id}", response_model=ViolationDetail, responses=problem_responses(404), summary="One violation"
)
async def get_violation(
    violation_id: uuid.UUID, principal: Reader, session: SessionDep, settings: SettingsDep, runtime: RuntimeDep,
) -> Response:
    """A violation with explanation, legal basis, evidence links and case history."""
    row = await _visible_violation(session, principal, violation_id)
    history = await repository.case_actions(session, violation_id)
    entries = await repository.stored_entries_of_violation(session, violation_id)
    body = _summary(settings, row)
    body["links"] = _links(settings, row, [e.seq for e in entries])
    body.update(legal_basis=row.legal_basis, evidence=row.evidence, leaf=None)
    leaves: dict[str, tuple[Any, dict[str, Any]]] = {}
    for entry in entries:
        leaf, block = leaf_block(entry, region=principal.read_region())
        leaves[str(entry.columns["entry_id"])] = (leaf, block)
        if entry.columns["entry_kind"] == "violation":
            # What the log committed replaces the copy in the violation row; a differing copy is named.
            if leaf is not None:
                differs = [k for k in _LEAF_FIELDS if k in leaf.payload and not _same(body[k], leaf.payload[k])]
                body.update({k: leaf.payload[k] for k in _LEAF_FIELDS if k in leaf.payload})
                if differs:
                    block["verification"]["problems"].append("served_fact_mismatch")
                    block["verification"]["ok"] = False
            body["leaf"] = block
    case_history = []
    for h in history:
        leaf, case_block = leaves.get(str(h.event_id), (None, None))
        case_history.append({
            "event_id": h.event_id,
            "action": h.action,
            "actor": leaf.payload.get("actor", h.actor) if leaf is not None else h.actor,
            "at": h.at,
            "trace_id": h.trace_id,
            "payload": leaf.payload if leaf is not None else h.payload,
            "outcome": h.outcome,
            "reason": h.reason,
            "leaf": case_block,
        })
    body.update(case_history=case_history, allowed_actions=[a.value for a in allowed_actions(row.status)])
    region = principal.read_region()
    if region is not None:
        # Evidence as the region may see it; the signed leaf holding more is then not served (core.leafview).
        rules = evidence_rules(runtime.packs)
        shown = redact_violation({**body, "evidence": body["evidence"]}, region, rules)["evidence"]
        if shown is not body["evidence"]:
            body["evidence"] = shown
            if body["leaf"] is not None:
                body["leaf"].update(leaf_data=None, leaf_withheld=True)
    return json_response(body)


def _same(stored: Any, committed: Any) -> bool:
    if isinstance(stored, datetime) and isinstance(committed, str):
        try:
            return stored == datetime.fromisoformat(committed)
        except ValueError:
            return False
    if isinstance(stored, uuid.UUID | Enum):
        return str(stored.value if isinstance(stored, Enum) else stored) == committed
    return bool(stored == committed)


# Facts of a violation its raised event carries (the leaf's payload), served from the leaf.
_LEAF_FIELDS = ("rule_id", "rule_version", "department", "severity", "triggering_event_id", "fund_doc_no",
                "project_id", "region_code", "occurred_at", "trace_id", "explanation_zh", "explanation_en",
                "legal_basis", "evidence")


def _rank(status: str) -> int:
    return {CaseStatus.RAISED.value: 0, CaseStatus.ACKNOWLEDGED.value: 1}.get(status, 2)


# Case actions taken through this API are a compliance group's (`CaseActor` admits only that role).
_ROLE = CaseRole.COMPLIANCE


def _effective_status(stored: str, pending: str | None) -> str:
    """The stored status, or the one this gateway just published if compliance has not recorded it yet."""
    return pending if pending is not None and _rank(pending) > _rank(stored) else stored


async def _act(
    action: CaseAction,
    violation_id: uuid.UUID,
    fields: dict[str, Any],
    principal: Any,
    runtime: RuntimeDep,
    publisher: PublisherDep,
    session: SessionDep,
) -> Response:
    row = await _visible_violation(session, principal, violation_id)
    if not principal.can_act_on_case(row.region_code):
        raise not_found(f"no violation {violation_id} in your region")
    async with _case_lock:
        now = runtime.clock()
        current = _effective_status(row.status, runtime.pending_cases.get(violation_id, now))
        decision = decide(current, action, _ROLE)  # the contract's table, the one compliance applies
        if not decision.applied or decision.to_status is None:
            raise conflict(decision.message or "not allowed", slug="impossible-transition", status_now=current)
        target = CaseStatus(decision.to_status)
        at = now_utc()
        envelope = {
            "event_id": uuid.uuid4(),
            "occurred_at": at,
            "published_at": at,
            "source_bureau": f"{principal.region}-compliance",
            "level": level_of_region(row.region_code),
            "region_code": row.region_code,
            "fund_doc_no": row.fund_doc_no,
            "project_id": row.project_id,
            "violation_id": violation_id,
            "actor": principal.subject,
            "actor_role": _ROLE,
        }
        model = EVENT_TYPES[EVENT_TYPE_OF[action]]
        try:
            event = model(**envelope, **fields)
        except ValidationError as exc:
            errors = [FieldProblem(field=e.field, message=e.message) for e in plain_errors(exc, model.__name__)]
            raise unprocessable("the case action is not a valid event", errors) from exc
        if has_nul(encode_event(event)):
            raise unprocessable("the case action contains a NUL character (U+0000), which cannot be stored",
                                [FieldProblem(field="body", message="contains U+0000")])
        headers = event_headers(event.event_type, event.schema_version)
        try:
            (delivery,) = await publisher.publish([OutMessage(CASES, event_key(event), encode_event(event), headers)])
        except PublisherUnavailable as exc:
            raise unavailable("the event broker is not reachable; nothing was published") from exc
        if not delivery.ok:
            raise unavailable(f"the broker did not acknowledge the case action: {delivery.error}")
        runtime.pending_cases.put(violation_id, target.value, runtime.clock())
    log.info("published %s for violation %s (trace %s)", event.event_type, violation_id, current_trace_id())
    body = {
        "event_id": event.event_id,
        "violation_id": violation_id,
        "event_type": EVENT_TYPE_OF[action],
        "status": target.value,
        "topic": CASES,
        "partition": delivery.partition,
        "offset": delivery.offset,
    }
    return json_response(body, status_code=202)


_ACTION_RESPONSES = problem_responses(404, 409, 503)


@router.post(
    "/{violation_id}/acknowledge",
    status_code=202,
    response_model=CaseActionAccepted,
    responses=_ACTION_RESPONSES,
    summary="Acknowledge a violation",
)
async def acknowledge(
    violation_id: uuid.UUID, body: AcknowledgeRequest, principal: CaseActor, runtime: RuntimeDep,
    publisher: PublisherDep, session: SessionDep,
) -> Response:
    """raised → acknowledged (publishes ViolationAcknowledged to the cases topic), optionally assigning it."""
    fields = {"note": body.note, "assignee": body.assignee, "due_date": body.due_date}
    return await _act(CaseAction.ACKNOWLEDGE, violation_id, fields, principal, runtime, publisher, session)


@router.post(
    "/{violation_id}/rectify",
    status_code=202,
    response_model=CaseActionAccepted,
    responses=_ACTION_RESPONSES,
    summary="Record the rectification of a violation",
)
async def rectify(
    violation_id: uuid.UUID, body: RectifyRequest, principal: CaseActor, runtime: RuntimeDep,
    publisher: PublisherDep, session: SessionDep,
) -> Response:
    """acknowledged → rectified, with a note and the SHA-256 of the supporting document."""
    fields = {"note": body.note, "document_sha256": body.document_sha256}
    return await _act(CaseAction.RECTIFY, violation_id, fields, principal, runtime, publisher, session)


@router.post(
    "/{violation_id}/dismiss",
    status_code=202,
    response_model=CaseActionAccepted,
    responses=_ACTION_RESPONSES,
    summary="Dismiss a violation",
)
async def dismiss(
    violation_id: uuid.UUID, body: DismissRequest, principal: CaseActor, runtime: RuntimeDep,
    publisher: PublisherDep, session: SessionDep,
) -> Response:
    """raised or acknowledged → dismissed, with a reason."""
    return await _act(CaseAction.DISMISS, violation_id, {"reason": body.reason}, principal, runtime, publisher,
                      session)


@router.post(
    "/{violation_id}/assign",
    status_code=202,
    response_model=CaseActionAccepted,
    responses=_ACTION_RESPONSES,
    summary="Assign a violation and set its rectification due date",
)
async def assign(
    violation_id: uuid.UUID, body: AssignRequest, principal: CaseActor, runtime: RuntimeDep,
    publisher: PublisherDep, session: SessionDep,
) -> Response:
    """Any open status, unchanged: publishes ViolationAssigned with the assignee and the 整改期限."""
    fields = {"assignee": body.assignee, "due_date": body.due_date}
    return await _act(CaseAction.ASSIGN, violation_id, fields, principal, runtime, publisher, session)
