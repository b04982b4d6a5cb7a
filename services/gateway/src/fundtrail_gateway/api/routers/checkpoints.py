"""The log's identity and its checkpoints as C2SP signed notes; witnesses submit cosignatures here.

Public by design (no token): checkpoints, the verifier key and cosignatures are what anyone must be
able to fetch and compare, and a cosignature authenticates itself (it verifies against a configured
witness key or is refused). A verified cosignature is published to `fundtrail.trail.cosignatures`
(the gateway writes only through Kafka); fund-tracker stores it; reads verify it again.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from fundtrail_schemas.topics import TRAIL_COSIGNATURES
from fundtrail_verify.cosignatures import CheckpointCosigned
from fundtrail_verify.note import Note, NoteError

from ...adapters import repository
from ...adapters.publisher import OutMessage, PublisherUnavailable
from ...core.checkpoints import CosignatureRejected, LogKeys, VerifiedCosignature, check_submission, cosigned_note
from ...core.checkpoints import valid_cosignatures as valid_lines
from ...core.cursor import cursor_or_problem, encode_cursor
from ...core.problems import ProblemError, bad_request, make_problem, not_found, unavailable
from ..deps import PublisherDep, SessionDep, SettingsDep
from ..models import CheckpointEntryOut, CheckpointsPage, CosignaturesAccepted, LogKeyOut
from ..openapi import problem_responses
from ..paging import CursorQuery, LimitQuery, json_response, link, next_link, page_size
from .proofs import MAX_SIZE, checkpoint_model

log = logging.getLogger(__name__)
router = APIRouter(tags=["proofs"])

TEXT = "text/plain; charset=utf-8"
MAX_COSIGNATURE_BODY = 16 * 1024
SizePath = Annotated[int, Path(ge=1, le=MAX_SIZE, description="Tree size of a stored checkpoint")]
_TEXT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "A C2SP signed note"}
}


def _keys(settings: SettingsDep) -> LogKeys:
    return LogKeys.parse(settings.trail_vkey, settings.witness_vkeys)


async def _entry(session: SessionDep, settings: SettingsDep, rows: list[Any]) -> list[dict[str, Any]]:
    """Rows as checkpoint entries with their verified cosignatures appended to the note."""
    witnesses = _keys(settings).witnesses
    lines = await repository.cosignature_lines(session, [int(r.tree_size) for r in rows]) if witnesses else {}
    out = []
    for row in rows:
        text = Note.parse(row.note).text
        cosigs = valid_lines(text, lines.get(int(row.tree_size), []), witnesses)
        cp = checkpoint_model(row, cosigned_note(row.note, cosigs))
        body = cp.model_dump(mode="json")
        body["cosignatures"] = [_cosig_json(c) for c in cosigs]
        body["links"] = {
            "self": link(settings, f"/v1/checkpoints/{row.tree_size}"),
            "note": link(settings, f"/v1/checkpoints/{row.tree_size}/note"),
        }
        out.append(body)
    return out


def _cosig_json(c: VerifiedCosignature) -> dict[str, Any]:
    return {
        "witness": c.signature.name,
        "key_hash": f"{c.signature.key_hash:08x}",
        "timestamp": datetime.fromtimestamp(c.timestamp, UTC).isoformat().replace("+00:00", "Z"),
    }


async def _row(session: SessionDep, tree_size: int | None) -> Any:
    row = (
        await repository.latest_checkpoint(session)
        if tree_size is None
        else await repository.checkpoint_of_size(session, tree_size)
    )
    if row is None:
        what = "no checkpoint has been signed yet" if tree_size is None else f"no checkpoint of size {tree_size}"
        raise not_found(what)
    return row


@router.get("/v1/log/key", responses={**_TEXT_RESPONSE, **problem_responses(404)}, summary="The log's verifier key")
async def log_key(settings: SettingsDep) -> Response:
    """The note verifier key of the trail log (golang.org/x/mod/sumdb/note vkey), one line of text."""
    keys = _keys(settings)
    if keys.log is None:
        raise not_found("this gateway has no trail verifier key configured (FUNDTRAIL_GATEWAY_TRAIL_VKEY)")
    return Response(keys.log.vkey + "\n", media_type=TEXT)


@router.get("/.well-known/fundtrail/log.json", response_model=LogKeyOut, summary="The log's identity (JSON)")
async def well_known(settings: SettingsDep) -> Response:
    """Origin, verifier key, raw public key and the witnesses whose cosignatures are served."""
    keys = _keys(settings)
    v = keys.log
    return json_response({
        "origin": v.name if v else None,
        "vkey": v.vkey if v else None,
        "key_hash": f"{v.key_hash:08x}" if v else None,
        "public_key": base64.b64encode(v.public_key).decode("ascii") if v else None,
        "witnesses": [w.vkey for w in keys.witnesses],
        "checkpoints": link(settings, "/v1/checkpoints"),
        "latest_note": link(settings, "/v1/checkpoints/latest/note"),
    })


@router.get("/v1/checkpoints", response_model=CheckpointsPage, responses=problem_responses(400),
            summary="Every signed checkpoint, oldest first")
async def list_checkpoints(
    request: Request, session: SessionDep, settings: SettingsDep, cursor: CursorQuery = None, limit: LimitQuery = None
) -> Response:
    """All checkpoints the log signed, by tree size; follow `next` (and the Link header) for more."""
    size = page_size(settings, limit)
    after = cursor_or_problem("checkpoints", cursor, (int,))
    rows = list(await repository.checkpoints_after(session, after[0] if after else None, size + 1))
    more = len(rows) > size
    rows = rows[:size]
    nxt = next_link(settings, request, encode_cursor("checkpoints", [int(rows[-1].tree_size)])) if more else None
    return json_response({"items": await _entry(session, settings, rows), "next": nxt}, next_url=nxt)


@router.get("/v1/checkpoints/latest", response_model=CheckpointEntryOut, responses=problem_responses(404),
            summary="The latest checkpoint (JSON)")
async def latest(session: SessionDep, settings: SettingsDep) -> Response:
    """The checkpoint with the largest tree size."""
    return json_response((await _entry(session, settings, [await _row(session, None)]))[0])


@router.get("/v1/checkpoints/latest/note", responses={**_TEXT_RESPONSE, **problem_responses(404)},
            summary="The latest checkpoint as a signed note")
async def latest_note(session: SessionDep, settings: SettingsDep) -> Response:
    """The latest checkpoint as a C2SP signed note, with valid witness cosignatures appended."""
    entry = (await _entry(session, settings, [await _row(session, None)]))[0]
    return Response(entry["note"], media_type=TEXT)


@router.get("/v1/checkpoints/{tree_size}", response_model=CheckpointEntryOut, responses=problem_responses(404),
            summary="One checkpoint (JSON)")
async def one(tree_size: SizePath, session: SessionDep, settings: SettingsDep) -> Response:
    """The checkpoint of exactly `tree_size` leaves."""
    return json_response((await _entry(session, settings, [await _row(session, tree_size)]))[0])


@router.get("/v1/checkpoints/{tree_size}/note", responses={**_TEXT_RESPONSE, **problem_responses(404)},
            summary="One checkpoint as a signed note")
async def one_note(tree_size: SizePath, session: SessionDep, settings: SettingsDep) -> Response:
    """The checkpoint of `tree_size` leaves as a C2SP signed note, with valid witness cosignatures appended."""
    entry = (await _entry(session, settings, [await _row(session, tree_size)]))[0]
    return Response(entry["note"], media_type=TEXT)


@router.post(
    "/v1/checkpoints/{tree_size}/cosignatures",
    status_code=202,
    response_model=CosignaturesAccepted,
    responses=problem_responses(400, 404, 413, 415, 422, 503),
    openapi_extra={"requestBody": {"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}}},
    summary="Submit a witness cosignature",
)
async def submit_cosignature(
    tree_size: SizePath, request: Request, session: SessionDep, settings: SettingsDep, publisher: PublisherDep
) -> Response:
    """A witness posts its tlog-cosignature/v1 line(s) (or the whole cosigned note) as text/plain.

    Accepted only from configured witness keys and only if the cosignature verifies against the
    stored checkpoint; then published for fund-tracker to store.
    """
    if not request.headers.get("content-type", "").startswith("text/plain"):
        raise ProblemError(make_problem(415, "send the signature lines as text/plain", slug="unsupported-media-type"))
    raw = await request.body()
    if len(raw) > MAX_COSIGNATURE_BODY:
        raise ProblemError(make_problem(413, f"a cosignature body is at most {MAX_COSIGNATURE_BODY} bytes",
                                        slug="payload-too-large"))
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request("the body is not UTF-8") from exc
    row = await _row(session, tree_size)
    witnesses = _keys(settings).witnesses
    if not witnesses:
        raise ProblemError(make_problem(422, "this gateway accepts no witnesses (FUNDTRAIL_GATEWAY_WITNESS_VKEYS)",
                                        slug="cosignature-rejected"))
    try:
        accepted = check_submission(body, row.note, witnesses)
    except (CosignatureRejected, NoteError) as exc:
        log.warning("refused a cosignature for size %d: %s", tree_size, exc)
        raise ProblemError(make_problem(422, str(exc), slug="cosignature-rejected")) from exc
    messages = [
        OutMessage(TRAIL_COSIGNATURES, record.kafka_key, record.model_dump_json().encode())
        for record in (
            CheckpointCosigned(
                origin=row.log_id, tree_size=int(row.tree_size), root_hash=row.root_hash,
                witness_name=c.signature.name, key_hash=f"{c.signature.key_hash:08x}", timestamp=c.timestamp,
                line=c.signature.line,
            )
            for c in accepted
        )
    ]
    try:
        deliveries = await publisher.publish(messages)
    except PublisherUnavailable as exc:
        raise unavailable("the event broker is not reachable; nothing was published") from exc
    if not all(d.ok for d in deliveries):
        raise unavailable("the event broker did not acknowledge the cosignature; send it again")
    log.info("published %d cosignature(s) of checkpoint %d", len(accepted), tree_size)
    return Response(
        orjson.dumps({"tree_size": tree_size, "accepted": [_cosig_json(c) for c in accepted],
                      "topic": TRAIL_COSIGNATURES}),
        status_code=202, media_type="application/json",
    )
