"""The rectification loop of a violation: raised → acknowledged → rectified | dismissed; resolved."""

from __future__ import annotations

from dataclasses import dataclass

RAISED = "raised"
ACKNOWLEDGED = "acknowledged"
RECTIFIED = "rectified"
DISMISSED = "dismissed"
RESOLVED = "resolved"
STATUSES = (RAISED, ACKNOWLEDGED, RECTIFIED, DISMISSED, RESOLVED)

# event type → (statuses it may follow, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "ViolationAcknowledged": (frozenset({RAISED}), ACKNOWLEDGED),
    "ViolationRectified": (frozenset({ACKNOWLEDGED}), RECTIFIED),
    "ViolationDismissed": (frozenset({ACKNOWLEDGED}), DISMISSED),
    # Late evidence can refute a violation until someone has closed it.
    "ViolationResolved": (frozenset({RAISED, ACKNOWLEDGED}), RESOLVED),
}
ACTIONS = {
    "ViolationAcknowledged": "acknowledged",
    "ViolationRectified": "rectified",
    "ViolationDismissed": "dismissed",
    "ViolationResolved": "resolved",
}


@dataclass(frozen=True)
class Decision:
    applied: bool
    from_status: str | None
    to_status: str | None
    reason: str | None = None  # machine-readable code when rejected
    message: str | None = None


def decide(current: str | None, event_type: str) -> Decision:
    """Whether a case action may be applied to a violation in status `current` (None: unknown violation)."""
    if event_type not in TRANSITIONS:
        return Decision(False, current, None, "unknown_action", f"{event_type} is not a case action")
    if current is None:
        return Decision(False, None, None, "unknown_violation", "no violation with this id has been raised")
    allowed, target = TRANSITIONS[event_type]
    if current not in allowed:
        return Decision(
            False, current, None, "invalid_transition",
            f"{ACTIONS[event_type]} is not allowed when the violation is {current} "
            f"(allowed from: {', '.join(sorted(allowed))})",
        )
    return Decision(True, current, target)
