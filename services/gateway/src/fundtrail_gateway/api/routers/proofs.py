"""Proofs: signed checkpoints, inclusion and consistency proofs, offline bundles (RFC 9162)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session
from starlette.responses import Response

from fundtrail_schemas.leaf import LeafError, decode_leaf
from fundtrail_verify import merkle
from fundtrail_verify.checkpoint import (
    Checkpoint,
    ConsistencyProof,
    InclusionProof,
    ProofBundle,
    build_proof_bundle,
)

from ...adapters import repository
from ...adapters.repository import MissingNode, merkle_store
from ...core.leafview import leaf_bytes_out, leaf_withheld
from ...core.problems import ProblemError, make_problem, not_found
from ..deps import Reader, SessionDep
from ..models import CheckpointOut, ConsistencyOut, InclusionOut
from ..openapi import problem_responses
from ..paging import json_response

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/proofs", tags=["proofs"])

MAX_SIZE = 2**63 - 1
SizeQuery = Annotated[int | None, Query(ge=1, le=MAX_SIZE, description="Tree size of a stored checkpoint")]
LeafPath = Annotated[int, Path(ge=0, le=MAX_SIZE - 1, description="Leaf index (trail entry `leaf_index`)")]


def checkpoint_model(row: Any, note: str | None = None) -> Checkpoint:
    """A stored tree head as the contract model (``note``: the cosigned note instead of the stored one)."""
    return Checkpoint(
        log_id=row.log_id,
        tree_size=row.tree_size,
        root_hash=row.root_hash,
        timestamp=row.signed_at,
        note=note or row.note,
    )


async def _checkpoint(session: SessionDep, tree_size: int | None) -> Checkpoint:
    row = (
        await repository.latest_checkpoint(session)
        if tree_size is None
        else await repository.checkpoint_of_size(session, tree_size)
    )
    if row is None:
        what = "no checkpoint has been signed yet" if tree_size is None else f"no checkpoint of size {tree_size}"
        raise not_found(what)
    return checkpoint_model(row)


def _storage_problem(exc: Exception) -> ProblemError:
    # Stored data that cannot make a proof was altered or removed: a verification failure, not a server error.
    log.error("trail storage is inconsistent: %s", exc)
    return ProblemError(make_problem(409, f"the stored trail cannot prove this: {exc}", slug="trail-inconsistent"))


def _withheld(principal: Reader, leaf_data: bytes) -> bool:
    """Whether the leaf bytes are withheld from this reader (core.leafview.leaf_withheld)."""
    region = principal.read_region()
    if region is None:
        return False
    try:
        leaf = decode_leaf(leaf_data)
    except LeafError:
        return True
    return leaf_withheld(leaf, region)


async def _visible_entry(session: SessionDep, principal: Reader, leaf_index: int, cp: Checkpoint) -> Any:
    entry = await repository.trail_entry(session, leaf_index)
    if entry is None or not principal.can_read(entry.region_code) or leaf_index >= cp.tree_size:
        raise not_found(f"no trail entry {leaf_index} in your region under checkpoint size {cp.tree_size}")
    return entry


@router.get("/checkpoint", response_model=CheckpointOut, responses=problem_responses(404), summary="Latest checkpoint")
async def latest_checkpoint(principal: Reader, session: SessionDep) -> Response:
    """The latest Ed25519-signed tree head; verify it with the log's public key."""
    return json_response((await _checkpoint(session, None)).model_dump(mode="json"))


@router.get(
    "/entries/{leaf_index}",
    response_model=InclusionOut,
    responses=problem_responses(404, 409),
    summary="Inclusion proof of a trail entry",
)
async def inclusion(
    leaf_index: LeafPath, principal: Reader, session: SessionDep, tree_size: SizeQuery = None
) -> Response:
    """Audit path from the entry's leaf to the root of a signed checkpoint (latest by default)."""
    cp = await _checkpoint(session, tree_size)
    entry = await _visible_entry(session, principal, leaf_index, cp)

    def prove(sync: Session) -> list[bytes]:
        return merkle.inclusion_proof_from_store(merkle_store(sync), leaf_index, cp.tree_size)

    try:
        proof = await session.run_sync(prove)
    except MissingNode as exc:
        raise _storage_problem(exc) from exc
    # The hash of the bytes served, never the stored hash column: the client proves what it is shown.
    body = {
        "checkpoint": cp.model_dump(mode="json"),
        "leaf_index": leaf_index,
        "leaf_hash": merkle.leaf_hash(bytes(entry.leaf_data)).hex(),
        **leaf_bytes_out(bytes(entry.leaf_data), _withheld(principal, bytes(entry.leaf_data))),
        "entry_id": entry.entry_id,
        "inclusion_proof": InclusionProof.from_hashes(leaf_index, cp.tree_size, proof).model_dump(mode="json"),
    }
    return json_response(body)


@router.get(
    "/consistency",
    response_model=ConsistencyOut,
    responses=problem_responses(404, 409),
    summary="Consistency proof between two tree sizes",
)
async def consistency(
    principal: Reader,
    session: SessionDep,
    old_size: Annotated[int, Query(ge=0, le=MAX_SIZE, description="The smaller tree size (e.g. your last checkpoint)")],
    new_size: SizeQuery = None,
) -> Response:
    """Proof that the log of `old_size` leaves is a prefix of the signed log of `new_size` leaves (latest)."""
    new_cp = await _checkpoint(session, new_size)
    if old_size > new_cp.tree_size:
        raise not_found(f"the log of size {new_cp.tree_size} has no prefix of size {old_size}")
    old_row = await repository.checkpoint_of_size(session, old_size) if old_size else None

    def prove(sync: Session) -> list[bytes]:
        return merkle.consistency_proof_from_store(merkle_store(sync), old_size, new_cp.tree_size)

    try:
        proof = await session.run_sync(prove)
    except MissingNode as exc:
        raise _storage_problem(exc) from exc
    body = {
        "old_checkpoint": checkpoint_model(old_row).model_dump(mode="json") if old_row is not None else None,
        "new_checkpoint": new_cp.model_dump(mode="json"),
        "consistency_proof": ConsistencyProof.from_hashes(old_size, new_cp.tree_size, proof).model_dump(mode="json"),
    }
    return json_response(body)


@router.get(
    "/entries/{leaf_index}/bundle",
    response_model=ProofBundle,
    responses=problem_responses(404, 409),
    summary="Export a proof bundle",
)
async def bundle(
    leaf_index: LeafPath,
    principal: Reader,
    session: SessionDep,
    tree_size: SizeQuery = None,
    previous_size: Annotated[
        int | None, Query(ge=1, le=MAX_SIZE, description="Include a consistency proof from this stored checkpoint")
    ] = None,
) -> Response:
    """Everything needed to check the entry offline with `fundtrail verify --bundle` and the public key."""
    cp = await _checkpoint(session, tree_size)
    entry = await _visible_entry(session, principal, leaf_index, cp)
    previous = None
    if previous_size is not None:
        if previous_size > cp.tree_size:
            raise not_found(f"the log of size {cp.tree_size} has no earlier checkpoint of size {previous_size}")
        previous = await _checkpoint(session, previous_size)
    leaf_data = bytes(entry.leaf_data)
    if _withheld(principal, leaf_data):
        raise ProblemError(make_problem(
            403, f"trail entry {leaf_index} holds ledger state outside your region; its bundle is for auditors",
            slug="leaf-withheld"))

    def build(sync: Session) -> ProofBundle:
        return build_proof_bundle(merkle_store(sync), leaf_data, leaf_index, cp, previous)

    try:
        result = await session.run_sync(build)
    except (MissingNode, ValueError) as exc:
        raise _storage_problem(exc) from exc
    return json_response(result.model_dump(mode="json"))
