"""The case lifecycle of a violation, defined once: states, actions, who may take them, and what a
refused action leaves behind. The gateway (HTTP), compliance (the cases consumer, which keeps the
status) and fund-tracker (the trail) all read this table; none keeps a copy.

    raised ──acknowledge──▶ acknowledged ──rectify──▶ rectified
      │                          │
      ├──────dismiss─────────────┴──────────────────▶ dismissed   (a reason is required)
      └──────resolve (late evidence, compliance only)─▶ resolved  (also from acknowledged)
    assign: any non-terminal status, status unchanged (assignee + 整改期限 due date)

Dismissing a *raised* violation is allowed: a compliance group that finds a false positive need not
acknowledge it first, and the dismissal carries a mandatory reason that the trail records.
A rectification always follows an acknowledgement (someone took responsibility for it first).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo


class CaseStatus(StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    RECTIFIED = "rectified"
    DISMISSED = "dismissed"
    RESOLVED = "resolved"  # refuted by late evidence (compliance itself)


class CaseAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RECTIFY = "rectify"
    DISMISS = "dismiss"
    ASSIGN = "assign"
    RESOLVE = "resolve"


class CaseRole(StrEnum):
    """Who acts: the gateway's roles (carried as token scopes) and the compliance worker itself."""

    BUREAU = "bureau"
    COMPLIANCE = "compliance"
    AUDITOR = "auditor"
    ADMIN = "admin"
    SYSTEM = "system"  # the compliance worker (late evidence)


TERMINAL = frozenset({CaseStatus.RECTIFIED, CaseStatus.DISMISSED, CaseStatus.RESOLVED})
OPEN = frozenset(s for s in CaseStatus if s not in TERMINAL)

# The actor name the compliance worker signs its own case actions with.
SYSTEM_ACTOR = "compliance"


@dataclass(frozen=True)
class Step:
    """One action of the lifecycle: the event it publishes, where it may start, where it leads
    (None: the status does not change), and the roles that may take it."""

    action: CaseAction
    event_type: str
    sources: frozenset[CaseStatus]
    target: CaseStatus | None
    roles: frozenset[CaseRole]


_GROUP = frozenset({CaseRole.COMPLIANCE})
LIFECYCLE: dict[CaseAction, Step] = {
    s.action: s
    for s in (
        Step(CaseAction.ACKNOWLEDGE, "ViolationAcknowledged", frozenset({CaseStatus.RAISED}), CaseStatus.ACKNOWLEDGED,
             _GROUP),
        Step(CaseAction.RECTIFY, "ViolationRectified", frozenset({CaseStatus.ACKNOWLEDGED}), CaseStatus.RECTIFIED,
             _GROUP),
        Step(CaseAction.DISMISS, "ViolationDismissed", frozenset({CaseStatus.RAISED, CaseStatus.ACKNOWLEDGED}),
             CaseStatus.DISMISSED, _GROUP),
        Step(CaseAction.ASSIGN, "ViolationAssigned", OPEN, None, _GROUP),
        # Late evidence can refute a violation until someone has closed it.
        Step(CaseAction.RESOLVE, "ViolationResolved", frozenset({CaseStatus.RAISED, CaseStatus.ACKNOWLEDGED}),
             CaseStatus.RESOLVED, frozenset({CaseRole.SYSTEM})),
    )
}
ACTION_OF_EVENT: dict[str, CaseAction] = {s.event_type: s.action for s in LIFECYCLE.values()}
# How a step is named in the case history (`case_action.action`): the past tense of its action.
_PAST = {CaseAction.ACKNOWLEDGE: "acknowledged", CaseAction.RECTIFY: "rectified", CaseAction.DISMISS: "dismissed",
         CaseAction.ASSIGN: "assigned", CaseAction.RESOLVE: "resolved"}
RECORDED_AS: dict[str, str] = {s.event_type: _PAST[s.action] for s in LIFECYCLE.values()}
EVENT_TYPE_OF: dict[CaseAction, str] = {s.action: s.event_type for s in LIFECYCLE.values()}

# Whether an action compliance refuses is still appended to the trail. Yes: the trail is the record
# of every case action submitted on fundtrail.cases and of who submitted it (fund-tracker appends
# what it reads, before and independently of compliance's decision). Whether it was applied is
# compliance's verdict, kept in `case_action.outcome` and shown in the violation's case history.
# With this one table the gateway refuses (409/403) what compliance would refuse, so a refused
# action reaches the topic only by a race between two submissions or from a client that bypasses
# the gateway.
REFUSED_ACTIONS_ENTER_TRAIL = True

# Reason codes of a refusal (also dead-letter reason codes, `fundtrail_schemas.decode.ReasonCode`).
UNKNOWN_ACTION = "unknown_action"
UNKNOWN_VIOLATION = "unknown_violation"
INVALID_TRANSITION = "invalid_transition"
NOT_PERMITTED = "action_not_permitted"


@dataclass(frozen=True)
class Decision:
    applied: bool
    from_status: str | None
    to_status: str | None
    reason: str | None = None  # machine-readable code when refused
    message: str | None = None


def decide(current: str | None, action: CaseAction | str, role: CaseRole | str) -> Decision:
    """Whether `role` may take `action` (an action or its event type) on a violation in status
    `current` (None: no such violation); the status it leads to (unchanged for assign)."""
    key = ACTION_OF_EVENT.get(action, action) if isinstance(action, str) else action
    step = LIFECYCLE.get(CaseAction(key)) if key in CaseAction._value2member_map_ else None
    if step is None:
        return Decision(False, current, None, UNKNOWN_ACTION, f"{action} is not a case action")
    if role not in step.roles:
        who = ", ".join(sorted(r.value for r in step.roles))
        return Decision(False, current, None, NOT_PERMITTED, f"{step.action.value} needs the {who} role, not {role}")
    if current is None:
        return Decision(False, None, None, UNKNOWN_VIOLATION, "no violation with this id has been raised")
    if current not in step.sources:
        allowed = ", ".join(sorted(s.value for s in step.sources))
        return Decision(
            False, current, None, INVALID_TRANSITION,
            f"cannot {step.action.value} a violation that is {current}; {step.action.value} needs status {allowed}",
        )
    return Decision(True, current, (step.target or CaseStatus(current)).value)


def allowed_actions(current: str, role: CaseRole | str = CaseRole.COMPLIANCE) -> list[CaseAction]:
    """The actions `role` may take now on a violation in status `current` (for hypermedia links)."""
    return [s.action for s in LIFECYCLE.values() if current in s.sources and role in s.roles]


_SHANGHAI = ZoneInfo("Asia/Shanghai")


def overdue(status: str, due_date: date | None, now: datetime) -> bool:
    """An open case whose due date has passed (the due date itself is still in time), Asia/Shanghai."""
    return due_date is not None and status in OPEN and due_date < now.astimezone(_SHANGHAI).date()
