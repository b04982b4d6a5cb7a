"""Classify posted events: accepted for publishing, already recorded, or rejected with a problem."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fundtrail_schemas.decode import FieldError, ReasonCode, Rejection, parse_object
from fundtrail_schemas.events import Envelope

from .auth import Principal
from .problems import FieldProblem, Problem, make_problem


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    ALREADY_RECORDED = "already_recorded"
    REJECTED = "rejected"


@dataclass(slots=True)
class Item:
    """One posted item and what became of it."""

    index: int
    outcome: Outcome
    event: Envelope | None = None
    event_id: uuid.UUID | None = None
    problem: Problem | None = None


def _raw_event_id(obj: Any) -> uuid.UUID | None:
    if isinstance(obj, dict) and isinstance(obj.get("event_id"), str):
        try:
            return uuid.UUID(obj["event_id"])
        except ValueError:
            return None
    return None


def rejection_problem(rejection: Rejection, index: int, instance: str | None = None) -> Problem:
    """The problem document of one rejected item (403 for a foreign region, else 422)."""
    status = 403 if rejection.reason is ReasonCode.REGION_FORBIDDEN else 422
    errors = [FieldProblem(field=e.field, message=e.message) for e in rejection.errors]
    return make_problem(
        status, rejection.message, slug=rejection.reason.value.replace("_", "-"), instance=instance,
        errors=errors or None, reason=rejection.reason.value, index=index,
    )


def validate_items(items: Sequence[Any], principal: Principal, instance: str | None = None) -> list[Item]:
    """Parse each item with the contract and check the bureau's region; duplicates in a batch count once."""
    out: list[Item] = []
    seen: set[uuid.UUID] = set()
    for index, obj in enumerate(items):
        parsed = parse_object(obj)
        if isinstance(parsed, Rejection):
            out.append(Item(index, Outcome.REJECTED, event_id=_raw_event_id(obj),
                            problem=rejection_problem(parsed, index, instance)))
            continue
        if not principal.can_publish_for(parsed.region_code):
            rejection = Rejection(
                ReasonCode.REGION_FORBIDDEN,
                f"region {parsed.region_code} is outside your bureau's region {principal.region}",
                (FieldError("region_code", "outside your region"),),
            )
            out.append(Item(index, Outcome.REJECTED, event_id=parsed.event_id,
                            problem=rejection_problem(rejection, index, instance)))
            continue
        if parsed.event_id in seen:
            out.append(Item(index, Outcome.ALREADY_RECORDED, event=parsed, event_id=parsed.event_id))
            continue
        seen.add(parsed.event_id)
        out.append(Item(index, Outcome.ACCEPTED, event=parsed, event_id=parsed.event_id))
    return out


def mark_recorded(items: list[Item], known: Iterable[uuid.UUID]) -> None:
    """Accepted items whose id is already known become `already_recorded` (nothing is published again)."""
    known_ids = set(known)
    for item in items:
        if item.outcome is Outcome.ACCEPTED and item.event_id in known_ids:
            item.outcome = Outcome.ALREADY_RECORDED


def accepted_ids(items: Iterable[Item]) -> list[uuid.UUID]:
    """Ids of items still to publish."""
    return [i.event_id for i in items if i.outcome is Outcome.ACCEPTED and i.event_id is not None]
