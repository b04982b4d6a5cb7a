"""Classify posted events: accepted for publishing, already recorded, or rejected with a problem."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fundtrail_schemas.decode import (
    FieldError,
    ReasonCode,
    Rejection,
    encode_event,
    event_id_hint,
    has_nul,
    parse_object,
)
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
    # An import row arrives encoded by the worker that mapped it: (key, value, headers).
    wire: tuple[bytes, bytes, list[tuple[str, bytes]]] | None = None


def bureau_region(source_bureau: str) -> str:
    """The region code a bureau code starts with (`440705-CZJ` → `440705`)."""
    return source_bureau.split("-", 1)[0].strip()


def publish_refusal(principal: Principal, region_code: str, source_bureau: str) -> Rejection | None:
    """Why `principal` may not publish an event of `region_code` in the name of `source_bureau`, or None.

    Provenance comes from the token, never from the body alone: the event's region and the bureau it
    names must both lie inside the token's region (a 440705 token cannot publish as 440781-CZJ).
    """
    if not principal.can_publish_for(region_code):
        return Rejection(
            ReasonCode.REGION_FORBIDDEN,
            f"region {region_code} is outside your bureau's region {principal.region}",
            (FieldError("region_code", "outside your region"),),
        )
    if not principal.can_publish_for(bureau_region(source_bureau)):
        return Rejection(
            ReasonCode.REGION_FORBIDDEN,
            f"source_bureau {source_bureau!r} is not a bureau of your region {principal.region}; the source "
            f"bureau must start with your region code (e.g. {principal.region}-CZJ)",
            (FieldError("source_bureau", "not a bureau of your region"),),
        )
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
            out.append(Item(index, Outcome.REJECTED, event_id=event_id_hint(obj),
                            problem=rejection_problem(parsed, index, instance)))
            continue
        if has_nul(encode_event(parsed)):  # fund-tracker could not store it: refused here, not dead-lettered there
            rejection = Rejection(ReasonCode.INVALID_FIELD, "the event contains a NUL character (U+0000), which "
                                  "cannot be stored", (FieldError("(event)", "contains U+0000"),))
            out.append(Item(index, Outcome.REJECTED, event_id=parsed.event_id,
                            problem=rejection_problem(rejection, index, instance)))
            continue
        refusal = publish_refusal(principal, parsed.region_code, parsed.source_bureau)
        if refusal is not None:
            out.append(Item(index, Outcome.REJECTED, event_id=parsed.event_id,
                            problem=rejection_problem(refusal, index, instance)))
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
