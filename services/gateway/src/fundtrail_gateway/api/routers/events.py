"""Events: publishing (bureaus) and reading one accepted event (evidence links)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from fundtrail_schemas.decode import JsonLimitError, encode_event, load_json_bounded
from fundtrail_schemas.events import Envelope, event_key
from fundtrail_schemas.headers import event_headers
from fundtrail_schemas.topics import HEADER_PUBLISHED_BY, RAW_EVENTS

from ...adapters import repository
from ...adapters.publisher import KafkaPublisher, OutMessage, PublisherUnavailable
from ...core.ingest import Item, Outcome, accepted_ids, mark_recorded, validate_items
from ...core.leafview import leaf_block
from ...core.problems import ProblemError, bad_request, make_problem, not_found, unavailable
from ...core.scoping import redact_state
from ...runtime import Runtime
from ..deps import Bureau, PublisherDep, Reader, RuntimeDep, SessionDep
from ..models import EventOut, IngestReport
from ..openapi import events_request_body, problem_responses
from ..paging import json_response

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/events", tags=["events"])


def event_message(event: Envelope) -> OutMessage:
    """The raw-topic message of an event: contract bytes, event key, type and version headers."""
    return OutMessage(
        RAW_EVENTS,
        event_key(event),
        encode_event(event),
        event_headers(event.event_type, event.schema_version),
    )


def _message(item: Item, subject: str) -> OutMessage:
    # Who published it travels with the record (fundtrail-published-by), next to the checked source bureau.
    by = (HEADER_PUBLISHED_BY, subject.encode())
    if item.wire is not None:
        key, value, headers = item.wire
        return OutMessage(RAW_EVENTS, key, value, [*headers, by])
    assert item.event is not None
    msg = event_message(item.event)
    return OutMessage(msg.topic, msg.key, msg.value, [*msg.headers, by])


async def publish_items(
    items: list[Item], runtime: Runtime, publisher: KafkaPublisher, session: Any, instance: str,
    publisher_subject: str,
) -> None:
    """Drop already-recorded ids, publish the rest, and turn delivery failures into per-item problems."""
    now = runtime.clock()
    pending = accepted_ids(items)
    known = await repository.known_event_ids(session, pending)
    known |= {i for i in pending if runtime.recent_ids.get(i, now)}
    mark_recorded(items, known)
    to_send = [i for i in items if i.outcome is Outcome.ACCEPTED]
    if not to_send:
        return
    try:
        deliveries = await publisher.publish([_message(i, publisher_subject) for i in to_send])
    except PublisherUnavailable as exc:
        log.warning("publishing %d events failed: %s", len(to_send), exc)
        raise unavailable("the event broker is not reachable; nothing was published") from exc
    now = runtime.clock()
    for item, delivery in zip(to_send, deliveries, strict=True):
        if delivery.ok:
            runtime.recent_ids.put(item.event_id, True, now)  # type: ignore[arg-type]
            continue
        item.outcome = Outcome.REJECTED
        item.problem = make_problem(
            503, f"the broker did not acknowledge this event: {delivery.error}; retry it",
            slug="not-published", instance=instance, index=item.index,
        )


def report(items: list[Item]) -> dict[str, Any]:
    """The response body listing every item's outcome."""
    return {
        "accepted": [i.event_id for i in items if i.outcome is Outcome.ACCEPTED],
        "already_recorded": [i.event_id for i in items if i.outcome is Outcome.ALREADY_RECORDED],
        "rejected": [
            {"index": i.index, "event_id": i.event_id, "problem": i.problem.model_dump(mode="json", exclude_none=True)}
            for i in items
            if i.outcome is Outcome.REJECTED and i.problem is not None
        ],
    }


def _outcome_status(items: list[Item]) -> int:
    """202 when anything was accepted or already recorded; otherwise the items' own status."""
    if any(i.outcome is not Outcome.REJECTED for i in items):
        return 202
    statuses = {i.problem.status for i in items if i.problem is not None}
    if statuses == {403}:
        return 403
    if 503 in statuses:
        return 503
    return 422


async def read_json_body(request: Request, max_bytes: int) -> Any:
    """The parsed JSON body; a 413 problem past `max_bytes`, 422 past the nesting and number limits,
    400 for what is not JSON. The limits hold before any validation work."""
    raw = await request.body()
    if len(raw) > max_bytes:
        raise ProblemError(make_problem(413, f"the body is {len(raw)} bytes; at most {max_bytes} are accepted "
                                             "(send fewer events per request)"))
    try:
        return load_json_bounded(raw)
    except JsonLimitError as exc:
        raise ProblemError(make_problem(422, f"the body exceeds a limit: {exc}", slug="json-limit")) from exc
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        raise bad_request(f"the body is not valid UTF-8 JSON: {exc}", slug="malformed-json") from exc


@router.post(
    "",
    status_code=202,
    response_model=IngestReport,
    responses=problem_responses(400, 413, 415, 503),
    summary="Publish events",
    openapi_extra={"requestBody": events_request_body(500)},
    description=(
        "Validate one event or a batch with the event contract and publish the valid ones to the raw "
        "events topic (acks=all, idempotent producer, keyed by fund). A bureau may only publish for its own "
        "region. Re-posting publishes nothing new: ids that fund-tracker already recorded, that this gateway "
        "published in the last minutes, or that repeat inside the batch are listed in `already_recorded`. "
        "The answer is 202 when at least one item was accepted or already recorded; when every item is "
        "rejected it is the items' problem status (422, or 403 for a foreign region) with the full report "
        "in the problem's `report` member."
    ),
)
async def post_events(
    request: Request, principal: Bureau, runtime: RuntimeDep, publisher: PublisherDep, session: SessionDep
) -> Response:
    """Publish events (one or a batch)."""
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() not in ("application/json", ""):
        raise ProblemError(make_problem(415, f"send application/json, not {ctype}"))
    body = await read_json_body(request, runtime.settings.max_events_body_bytes)
    batch = isinstance(body, list)
    items_in: list[Any] = body if batch else [body]
    limit = runtime.settings.max_batch_events
    if batch and not 1 <= len(items_in) <= limit:
        raise ProblemError(make_problem(
            422, f"a batch holds 1 to {limit} events; this one has {len(items_in)}", slug="batch-size"
        ))
    if not batch and not isinstance(body, dict):
        raise ProblemError(make_problem(422, "the body must be an event object or an array of events",
                                        slug="not-an-event"))
    instance = request.url.path
    items = validate_items(items_in, principal, instance)
    await publish_items(items, runtime, publisher, session, instance, principal.subject)
    status = _outcome_status(items)
    body_out = report(items)
    if status == 202:
        return json_response(body_out, status_code=202)
    first = next(i.problem for i in items if i.problem is not None)
    problem = make_problem(
        status,
        first.detail if len(items) == 1 else f"all {len(items)} events were rejected",
        slug=first.type.rsplit(":", 1)[-1] if len(items) == 1 else "batch-rejected",
        errors=first.errors if len(items) == 1 else None,
        report=body_out,
    )
    headers = {"Retry-After": "5"} if status == 503 else None
    raise ProblemError(problem, headers)


@router.get(
    "/{event_id}",
    response_model=EventOut,
    responses=problem_responses(404, 409),
    summary="One accepted event",
)
async def get_event(event_id: uuid.UUID, principal: Reader, session: SessionDep) -> Response:
    """An accepted event with the ledger state around it (the target of evidence links), parsed from its leaf."""
    entry = await repository.stored_entry_by_id(session, event_id)
    if entry is None or entry.columns["entry_kind"] != "event":
        raise not_found(f"no event {event_id} in your region")
    region_scope = principal.read_region()
    leaf, block = leaf_block(entry, region=region_scope)
    region = leaf.region_code if leaf is not None else entry.columns["region_code"]
    if not principal.can_read(region):
        raise not_found(f"no event {event_id} in your region")
    if leaf is None:
        # Nothing can be shown that the log vouches for: say so instead of serving the copies.
        raise ProblemError(make_problem(409, f"the trail entry of event {event_id} is not a readable leaf",
                                        slug="trail-inconsistent", leaf=block))
    return json_response({
        "event_id": event_id,
        "sequence": entry.seq,
        "event_type": leaf.event_type,
        "fund_doc_no": leaf.fund_doc_no,
        "project_id": leaf.project_id,
        "region_code": leaf.region_code,
        "level": leaf.payload.get("level"),
        "occurred_at": leaf.occurred_at,
        "accepted_at": leaf.appended_at,
        "trace_id": leaf.trace_id,
        "payload": leaf.payload,
        # Positions outside the reader's region and vendor totals are withheld (core.scoping).
        "state_before": redact_state(leaf.before, region_scope),
        "state_after": redact_state(leaf.after, region_scope),
        "leaf": block,
    })
