"""Region scoping as string prefixes, so SQL can use `LIKE 'prefix%'` on indexed columns."""

from __future__ import annotations

from fundtrail_schemas.types import Level, level_of_region


class Disjoint:
    """Marker: two region scopes share no region, so a query must return nothing."""

    def __repr__(self) -> str:
        return "DISJOINT"


DISJOINT = Disjoint()


def region_prefix(region: str) -> str:
    """The code prefix shared by every region inside `region` (same rule as `region_within`)."""
    level = level_of_region(region)
    if level is Level.PROVINCE:
        return region[:2]
    if level is Level.CITY:
        return region[:4]
    return region


def intersect(scope: str | None, requested: str | None) -> str | Disjoint | None:
    """The narrower of two region prefixes, None when unrestricted, DISJOINT when they do not overlap."""
    if scope is None:
        return requested
    if requested is None:
        return scope
    if requested.startswith(scope):
        return requested
    if scope.startswith(requested):
        return scope
    return DISJOINT


def like_pattern(prefix: str) -> str:
    """SQL LIKE pattern for a digits-only prefix (digits need no escaping)."""
    if not prefix.isdigit():
        raise ValueError(f"region prefix {prefix!r} must be digits")
    return prefix + "%"
