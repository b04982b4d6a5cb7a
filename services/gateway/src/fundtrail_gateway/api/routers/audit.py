"""Audit reads: every leaf with the columns stored beside it, and every stored subtree hash.

`fundtrail verify --audit` recomputes the log from these and compares it with the signed checkpoint,
the stored nodes, and what the other endpoints show. Unscoped readers (auditors) only.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from ...adapters import repository
from ...core.problems import forbidden
from ..deps import Reader, SessionDep
from ..openapi import problem_responses
from ..paging import json_response, read_prefix

router = APIRouter(prefix="/v1/audit", tags=["proofs"])

AfterQuery = Annotated[int, Query(ge=-1, le=2**63 - 1, description="Return items after this index")]
AuditLimit = Annotated[int, Query(ge=1, le=5000)]


def _column(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _auditor(principal: Reader) -> None:
    if read_prefix(principal) is not None:
        raise forbidden("the audit reads need a token that may read every region")


@router.get("/leaves", responses=problem_responses(403), summary="Leaves with their stored columns")
async def leaves(principal: Reader, session: SessionDep, after: AfterQuery = -1, limit: AuditLimit = 1000) -> Response:
    """Trail entries after leaf `after` in log order: leaf bytes (base64) and the columns stored beside them."""
    _auditor(principal)
    rows = await repository.stored_entries(session, after, limit)
    copies = await repository.leaf_copies(session, after, limit)
    items = [
        {
            "leaf_index": e.seq,
            "leaf_data": base64.b64encode(e.leaf_data).decode("ascii"),
            "stored_leaf_hash": e.stored_hash.hex() if e.stored_hash is not None else None,
            "columns": {k: _column(v) for k, v in e.columns.items()},
            "copies": copies.get(e.seq, {}),
        }
        for e in rows
    ]
    return json_response({"items": items})


@router.get("/nodes", responses=problem_responses(403), summary="Stored subtree hashes of one level")
async def nodes(
    principal: Reader, session: SessionDep, level: Annotated[int, Query(ge=0, le=63)] = 0,
    after: AfterQuery = -1, limit: AuditLimit = 5000,
) -> Response:
    """The stored hashes of complete subtrees (level, index) after `after`, as the proofs use them."""
    _auditor(principal)
    rows = await repository.nodes_page(session, level, after, limit)
    return json_response({"items": [{"index": i, "hash": h.hex()} for i, h in rows]})
