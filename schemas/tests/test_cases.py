"""The one case lifecycle: every status × action × role, and the due-date rule."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fundtrail_schemas.cases import (
    ACTION_OF_EVENT,
    INVALID_TRANSITION,
    NOT_PERMITTED,
    RECORDED_AS,
    UNKNOWN_ACTION,
    UNKNOWN_VIOLATION,
    CaseAction,
    CaseRole,
    CaseStatus,
    allowed_actions,
    decide,
    overdue,
)
from fundtrail_schemas.events import CASE_EVENTS

# The lifecycle written out by hand: (status, action) -> the status it leads to, for the group role.
EXPECTED = {
    ("raised", "acknowledge"): "acknowledged",
    ("raised", "dismiss"): "dismissed",  # a false positive may be dismissed without acknowledging it
    ("raised", "assign"): "raised",
    ("acknowledged", "rectify"): "rectified",
    ("acknowledged", "dismiss"): "dismissed",
    ("acknowledged", "assign"): "acknowledged",
}
SYSTEM = {("raised", "resolve"): "resolved", ("acknowledged", "resolve"): "resolved"}


@pytest.mark.parametrize("status", list(CaseStatus))
@pytest.mark.parametrize("action", list(CaseAction))
@pytest.mark.parametrize("role", list(CaseRole))
def test_every_status_action_and_role(status: CaseStatus, action: CaseAction, role: CaseRole) -> None:
    d = decide(status.value, action, role)
    table = SYSTEM if role is CaseRole.SYSTEM else EXPECTED if role is CaseRole.COMPLIANCE else {}
    may = (action is CaseAction.RESOLVE) == (role is CaseRole.SYSTEM) and role in (CaseRole.SYSTEM,
                                                                                   CaseRole.COMPLIANCE)
    target = table.get((status.value, action.value))
    if target is not None:
        assert d.applied and (d.from_status, d.to_status) == (status.value, target)
    else:
        assert not d.applied and d.to_status is None and d.message
        assert d.reason == (INVALID_TRANSITION if may else NOT_PERMITTED)


def test_event_types_decide_the_same_as_actions() -> None:
    for ev in CASE_EVENTS:
        event_type = ev.model_fields["event_type"].default
        for status in CaseStatus:
            for role in CaseRole:
                assert decide(status.value, event_type, role) == decide(status.value, ACTION_OF_EVENT[event_type], role)


def test_unknown_violation_and_action() -> None:
    assert decide(None, CaseAction.ACKNOWLEDGE, CaseRole.COMPLIANCE).reason == UNKNOWN_VIOLATION
    assert decide("raised", "ViolationRaised", CaseRole.COMPLIANCE).reason == UNKNOWN_ACTION
    assert decide("raised", "promote", CaseRole.COMPLIANCE).reason == UNKNOWN_ACTION


def test_allowed_actions_per_role() -> None:
    assert allowed_actions("raised") == [CaseAction.ACKNOWLEDGE, CaseAction.DISMISS, CaseAction.ASSIGN]
    assert allowed_actions("acknowledged") == [CaseAction.RECTIFY, CaseAction.DISMISS, CaseAction.ASSIGN]
    assert allowed_actions("rectified") == []
    assert allowed_actions("raised", CaseRole.SYSTEM) == [CaseAction.RESOLVE]
    assert allowed_actions("raised", CaseRole.AUDITOR) == []


def test_overdue_is_judged_on_the_shanghai_date_for_open_cases() -> None:
    # 2026-04-30 16:30 UTC is already 2026-05-01 00:30 in Shanghai.
    late, same_day = datetime(2026, 4, 30, 16, 30, tzinfo=UTC), datetime(2026, 4, 30, 15, 59, tzinfo=UTC)
    due = date(2026, 4, 30)
    assert overdue("raised", due, late) and overdue("acknowledged", due, late)
    assert not overdue("raised", due, same_day)
    assert not overdue("rectified", due, late) and not overdue("dismissed", due, late)
    assert not overdue("resolved", due, late) and not overdue("raised", None, late)


def test_every_case_event_has_a_history_name() -> None:
    names = {ev.model_fields["event_type"].default for ev in CASE_EVENTS}
    assert set(RECORDED_AS) == names == set(ACTION_OF_EVENT)
    assert RECORDED_AS["ViolationRectified"] == "rectified" and RECORDED_AS["ViolationAssigned"] == "assigned"
