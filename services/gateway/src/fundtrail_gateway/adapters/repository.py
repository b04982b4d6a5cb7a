"""SQL reads of the tables fund-tracker and compliance write. Route handlers never hold SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from fundtrail_runtime.store.compliance import CaseAction, Violation
from fundtrail_runtime.store.tracker import (
    Fund,
    FundPosition,
    ProcessedEvent,
    TrailCheckpoint,
    TrailCosignature,
    TrailEntry,
    TrailNode,
)
from fundtrail_runtime.trail_nodes import MissingNode as MissingNode
from fundtrail_runtime.trail_nodes import TrailNodeStore

from ..core.leafview import StoredEntry
from ..core.positions import Position
from ..core.regions import like_pattern

te = TrailEntry.metadata.tables[str(TrailEntry.__tablename__)]
pe = ProcessedEvent.metadata.tables[str(ProcessedEvent.__tablename__)]
ca = CaseAction.metadata.tables[str(CaseAction.__tablename__)]
vi = Violation.metadata.tables[str(Violation.__tablename__)]
fu = Fund.metadata.tables[str(Fund.__tablename__)]
fp = FundPosition.metadata.tables[str(FundPosition.__tablename__)]
tn = TrailNode.metadata.tables[str(TrailNode.__tablename__)]
tc = TrailCheckpoint.metadata.tables[str(TrailCheckpoint.__tablename__)]
tcs = TrailCosignature.metadata.tables[str(TrailCosignature.__tablename__)]

def _region_clause(column: Any, prefix: str | None) -> Any:
    return None if prefix is None else column.like(like_pattern(prefix))


def _where(stmt: Any, *clauses: Any) -> Any:
    for clause in clauses:
        if clause is not None:
            stmt = stmt.where(clause)
    return stmt


async def fund(session: AsyncSession, fund_doc_no: str) -> Row[Any] | None:
    """The fund row."""
    return (await session.execute(select(fu).where(fu.c.fund_doc_no == fund_doc_no))).first()


async def fund_positions(session: AsyncSession, fund_doc_no: str, prefix: str | None) -> list[Position]:
    """Every position of a fund inside the region prefix."""
    stmt = _where(select(fp).where(fp.c.fund_doc_no == fund_doc_no), _region_clause(fp.c.region_code, prefix))
    rows = (await session.execute(stmt)).mappings().all()
    return [
        Position(
            region_code=r["region_code"],
            level=r["level"],
            received_fen=r["received_fen"],
            passed_down_fen=r["passed_down_fen"],
            paid_fen=r["paid_fen"],
            returned_fen=r["returned_fen"],
            contracted_fen=r["contracted_fen"],
        )
        for r in rows
    ]


async def funds_page(
    session: AsyncSession, prefix: str | None, after: str | None, limit: int
) -> Sequence[Row[Any]]:
    """Funds with a position inside the region prefix, by document number."""
    stmt = select(fu)
    if prefix is not None:
        inside = select(fp.c.fund_doc_no).where(
            fp.c.fund_doc_no == fu.c.fund_doc_no, fp.c.region_code.like(like_pattern(prefix))
        )
        stmt = stmt.where(inside.exists())
    if after is not None:
        stmt = stmt.where(fu.c.fund_doc_no > after)
    return (await session.execute(stmt.order_by(fu.c.fund_doc_no).limit(limit + 1))).all()


async def processed_event(session: AsyncSession, event_id: uuid.UUID) -> Row[Any] | None:
    """One accepted event with the state after it."""
    return (await session.execute(select(pe).where(pe.c.event_id == event_id))).first()


async def known_event_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """The subset of `ids` fund-tracker has already recorded."""
    if not ids:
        return set()
    rows = await session.execute(select(pe.c.event_id).where(pe.c.event_id.in_(list(ids))))
    return {r[0] for r in rows}


@dataclass(frozen=True, slots=True)
class ViolationFilter:
    prefix: str | None = None
    department: str | None = None
    severity: str | None = None
    rule_id: str | None = None
    status: str | None = None
    raised_from: datetime | None = None
    raised_until: datetime | None = None
    fund_doc_no: str | None = None


async def violations_page(
    session: AsyncSession, flt: ViolationFilter, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> Sequence[Row[Any]]:
    """Violations newest first, keyset-paged on (raised_at, violation_id)."""
    stmt = select(vi)
    stmt = _where(
        stmt,
        _region_clause(vi.c.region_code, flt.prefix),
        None if flt.department is None else vi.c.department == flt.department,
        None if flt.severity is None else vi.c.severity == flt.severity,
        None if flt.rule_id is None else vi.c.rule_id == flt.rule_id,
        None if flt.status is None else vi.c.status == flt.status,
        None if flt.raised_from is None else vi.c.raised_at >= flt.raised_from,
        None if flt.raised_until is None else vi.c.raised_at < flt.raised_until,
        None if flt.fund_doc_no is None else vi.c.fund_doc_no == flt.fund_doc_no,
    )
    if after is not None:
        at, vid = after
        stmt = stmt.where(or_(vi.c.raised_at < at, and_(vi.c.raised_at == at, vi.c.violation_id < vid)))
    stmt = stmt.order_by(vi.c.raised_at.desc(), vi.c.violation_id.desc()).limit(limit + 1)
    return (await session.execute(stmt)).all()


async def violation(session: AsyncSession, violation_id: uuid.UUID) -> Row[Any] | None:
    """One violation."""
    return (await session.execute(select(vi).where(vi.c.violation_id == violation_id))).first()


async def case_actions(session: AsyncSession, violation_id: uuid.UUID) -> Sequence[Row[Any]]:
    """The case history of a violation, oldest first."""
    stmt = select(ca).where(ca.c.violation_id == violation_id).order_by(ca.c.at, ca.c.event_id)
    return (await session.execute(stmt)).all()


async def trail_entries_of_violation(
    session: AsyncSession, violation_id: uuid.UUID
) -> Sequence[Row[Any, Any, Any, Any]]:
    """Leaf indexes of the trail entries that mention a violation (raised and case actions)."""
    stmt = select(te.c.seq, te.c.entry_kind, te.c.event_type, te.c.entry_id).where(
        te.c.violation_id == violation_id
    )
    return (await session.execute(stmt.order_by(te.c.seq))).all()


# Rows signed before migration 0006 have no note until fund-tracker re-signs them: never served.
_SIGNED_NOTE = tc.c.note.is_not(None)


async def latest_checkpoint(session: AsyncSession) -> Row[Any] | None:
    """The signed tree head with the largest tree size."""
    stmt = select(tc).where(_SIGNED_NOTE).order_by(tc.c.tree_size.desc()).limit(1)
    return (await session.execute(stmt)).first()


async def checkpoint_of_size(session: AsyncSession, tree_size: int) -> Row[Any] | None:
    """The signed tree head for exactly `tree_size` leaves."""
    return (await session.execute(select(tc).where(tc.c.tree_size == tree_size, _SIGNED_NOTE))).first()


async def checkpoints_after(session: AsyncSession, after: int | None, limit: int) -> Sequence[Row[Any]]:
    """Up to `limit` signed tree heads with sizes above `after`, smallest first."""
    stmt = select(tc).where(_SIGNED_NOTE)
    if after is not None:
        stmt = stmt.where(tc.c.tree_size > after)
    return (await session.execute(stmt.order_by(tc.c.tree_size).limit(limit))).all()


async def cosignature_lines(session: AsyncSession, sizes: Sequence[int]) -> dict[int, list[str]]:
    """The stored witness signature lines per tree size (verified again before they are served)."""
    if not sizes:
        return {}
    stmt = select(tcs.c.tree_size, tcs.c.line).where(tcs.c.tree_size.in_(list(sizes)))
    out: dict[int, list[str]] = {}
    for size, line in (await session.execute(stmt.order_by(tcs.c.tree_size, tcs.c.witness_name))).all():
        out.setdefault(int(size), []).append(str(line))
    return out


async def trail_entry(session: AsyncSession, seq: int) -> Row[Any] | None:
    """One leaf of the log with its bytes."""
    return (await session.execute(select(te).where(te.c.seq == seq))).first()


def merkle_store(session: Session) -> TrailNodeStore:
    """The trail_node table as a Merkle store over a sync session (for run_sync)."""

    def rows(levels: list[int], idxs: list[int]) -> Any:
        ids = list(zip(levels, idxs, strict=True))
        return session.execute(select(tn.c.level, tn.c.idx, tn.c.hash).where(tuple_(tn.c.level, tn.c.idx).in_(ids)))

    return TrailNodeStore(rows)


_ENTRY_COLUMNS = ("entry_kind", "entry_id", "event_type", "fund_doc_no", "project_id", "payment_id", "contract_id",
                  "vendor_id", "violation_id", "region_code", "occurred_at", "appended_at", "trace_id")


def _stored(row: Any) -> StoredEntry:
    return StoredEntry(row.seq, bytes(row.leaf_data), bytes(row.leaf_hash),
                       bytes(row.node_hash) if row.node_hash is not None else None,
                       {c: getattr(row, c) for c in _ENTRY_COLUMNS})


def _with_node() -> Any:
    return select(te, tn.c.hash.label("node_hash")).select_from(
        te.outerjoin(tn, and_(tn.c.level == 0, tn.c.idx == te.c.seq))
    )


async def stored_entry_by_id(session: AsyncSession, entry_id: uuid.UUID) -> StoredEntry | None:
    """The trail entry whose entry id is `entry_id` (an event, a case action, or a violation id)."""
    row = (await session.execute(_with_node().where(te.c.entry_id == entry_id))).first()
    return None if row is None else _stored(row)


async def stored_entries_of_violation(session: AsyncSession, violation_id: uuid.UUID) -> list[StoredEntry]:
    """The violation's own entry and its case actions' entries, in log order."""
    rows = (await session.execute(_with_node().where(te.c.violation_id == violation_id).order_by(te.c.seq))).all()
    return [_stored(r) for r in rows]


async def stored_entries(session: AsyncSession, after: int, limit: int) -> list[StoredEntry]:
    """Trail entries after leaf `after`, in log order (the audit's full read)."""
    rows = (await session.execute(_with_node().where(te.c.seq > after).order_by(te.c.seq).limit(limit))).all()
    return [_stored(r) for r in rows]


async def nodes_page(session: AsyncSession, level: int, after: int, limit: int) -> list[tuple[int, bytes]]:
    """Stored subtree hashes of one level after index `after`."""
    stmt = select(tn.c.idx, tn.c.hash).where(tn.c.level == level, tn.c.idx > after).order_by(tn.c.idx).limit(limit)
    return [(r.idx, bytes(r.hash)) for r in (await session.execute(stmt)).all()]


async def leaf_copies(session: AsyncSession, after: int, limit: int) -> dict[int, dict[str, Any]]:
    """Other tables' copies of the facts of leaves after `after`: processed_event, violation, case_action rows."""
    page = select(te.c.seq, te.c.entry_kind, te.c.entry_id, te.c.violation_id).where(te.c.seq > after).order_by(
        te.c.seq).limit(limit).subquery()
    stmt = select(page.c.seq, pe.c.payload, pe.c.state_after, vi.c.payload.label("vpayload"),
                  ca.c.payload.label("cpayload")).select_from(
        page.outerjoin(pe, and_(page.c.entry_kind == "event", pe.c.event_id == page.c.entry_id))
        .outerjoin(vi, and_(page.c.entry_kind == "violation", vi.c.violation_id == page.c.violation_id))
        .outerjoin(ca, and_(page.c.entry_kind == "case", ca.c.event_id == page.c.entry_id))
    )
    out: dict[int, dict[str, Any]] = {}
    for r in (await session.execute(stmt)).all():
        copy: dict[str, Any] = {}
        if r.payload is not None:
            copy = {"payload": r.payload, "state_after": r.state_after}
        elif r.vpayload is not None:
            copy = {"payload": r.vpayload}
        elif r.cpayload is not None:
            copy = {"payload": r.cpayload}
        out[r.seq] = copy
    return out
