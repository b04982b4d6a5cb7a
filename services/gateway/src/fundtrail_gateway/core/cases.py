"""The rectification loop of a violation: which case actions are possible from which status."""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    RECTIFIED = "rectified"
    DISMISSED = "dismissed"
    RESOLVED = "resolved"  # refuted by late evidence (compliance itself)


class CaseActionKind(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RECTIFY = "rectify"
    DISMISS = "dismiss"


# raised → acknowledged → rectified | dismissed. A group may dismiss a false positive without
# acknowledging it first, but a rectification always follows an acknowledgement.
_TRANSITIONS: dict[CaseActionKind, tuple[frozenset[CaseStatus], CaseStatus]] = {
    CaseActionKind.ACKNOWLEDGE: (frozenset({CaseStatus.RAISED}), CaseStatus.ACKNOWLEDGED),
    CaseActionKind.RECTIFY: (frozenset({CaseStatus.ACKNOWLEDGED}), CaseStatus.RECTIFIED),
    CaseActionKind.DISMISS: (frozenset({CaseStatus.RAISED, CaseStatus.ACKNOWLEDGED}), CaseStatus.DISMISSED),
}

TERMINAL = frozenset({CaseStatus.RECTIFIED, CaseStatus.DISMISSED, CaseStatus.RESOLVED})

EVENT_TYPE_OF = {
    CaseActionKind.ACKNOWLEDGE: "ViolationAcknowledged",
    CaseActionKind.RECTIFY: "ViolationRectified",
    CaseActionKind.DISMISS: "ViolationDismissed",
}


class ImpossibleTransition(ValueError):
    """The action cannot be applied to a violation in its current status."""

    def __init__(self, action: CaseActionKind, status: str) -> None:
        allowed = ", ".join(sorted(s.value for s in _TRANSITIONS[action][0]))
        super().__init__(f"cannot {action.value} a violation that is {status}; {action.value} needs status {allowed}")
        self.action, self.status, self.allowed = action, status, allowed


def next_status(current: str, action: CaseActionKind) -> CaseStatus:
    """The status after `action`, or ImpossibleTransition."""
    sources, target = _TRANSITIONS[action]
    if current not in {s.value for s in sources}:
        raise ImpossibleTransition(action, current)
    return target


def allowed_actions(current: str) -> list[CaseActionKind]:
    """Actions that are possible from `current` (for hypermedia links)."""
    return [a for a, (sources, _) in _TRANSITIONS.items() if current in {s.value for s in sources}]
