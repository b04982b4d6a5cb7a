"""Roles, principals and what each role may do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from fundtrail_schemas.types import Department, region_within


class Role(StrEnum):
    """Roles travel as OAuth-style scopes in the token's `scope` claim."""

    BUREAU = "bureau"  # publish events for its own region
    COMPLIANCE = "compliance"  # read trails and violations in its region, act on cases there
    AUDITOR = "auditor"  # read everything, verify proofs
    ADMIN = "admin"  # publish rule packs


# Roles that only make sense with a region claim.
REGIONAL_ROLES = frozenset({Role.BUREAU, Role.COMPLIANCE})
READ_ROLES = frozenset({Role.COMPLIANCE, Role.AUDITOR})


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    subject: str
    roles: frozenset[Role]
    region: str | None
    token_id: str | None = None
    department: Department | None = None  # which of the nine departments the caller works for, if any

    def has_any(self, roles: Iterable[Role]) -> bool:
        """True if the principal holds at least one of `roles`."""
        return not self.roles.isdisjoint(roles)

    @property
    def reads_everything(self) -> bool:
        """Auditors read every region."""
        return Role.AUDITOR in self.roles

    def read_region(self) -> str | None:
        """The region the principal may read, or None for no restriction (auditor)."""
        if self.reads_everything:
            return None
        return self.region

    def can_read(self, region_code: str | None) -> bool:
        """Object-level check for one record's region."""
        if not self.has_any(READ_ROLES):
            return False
        scope = self.read_region()
        if scope is None:
            return True
        return region_code is not None and region_within(region_code, scope)

    def can_publish_for(self, region_code: str) -> bool:
        """A bureau publishes only for its own region (or regions inside it)."""
        return Role.BUREAU in self.roles and self.region is not None and region_within(region_code, self.region)

    def can_act_on_case(self, region_code: str) -> bool:
        """Compliance groups act on violations inside their region."""
        return Role.COMPLIANCE in self.roles and self.region is not None and region_within(region_code, self.region)


def parse_scopes(scope: str | list[str] | None) -> frozenset[Role]:
    """Known roles in a space-separated `scope` claim (unknown scopes are ignored)."""
    if scope is None:
        return frozenset()
    items = scope.split() if isinstance(scope, str) else [s for s in scope if isinstance(s, str)]
    known = {r.value for r in Role}
    return frozenset(Role(s) for s in items if s in known)
