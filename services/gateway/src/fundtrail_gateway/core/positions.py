"""The "where is the money" tree of a fund: city → county → town → village positions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from fundtrail_schemas.types import level_of_region, parent_region


@dataclass(frozen=True, slots=True)
class Position:
    """A fund at one level and region, as stored by fund-tracker."""

    region_code: str
    level: str
    received_fen: int
    passed_down_fen: int
    paid_fen: int
    returned_fen: int
    contracted_fen: int

    @property
    def balance_fen(self) -> int:
        """Money the level holds and has neither passed down, paid nor returned (idle)."""
        return self.received_fen - self.passed_down_fen - self.paid_fen - self.returned_fen


@dataclass(slots=True)
class PositionNode:
    position: Position
    children: list[PositionNode] = field(default_factory=list)

    @property
    def subtree_paid_fen(self) -> int:
        """Paid at this node and below."""
        return self.position.paid_fen + sum(c.subtree_paid_fen for c in self.children)

    @property
    def subtree_balance_fen(self) -> int:
        """Idle money at this node and below."""
        return self.position.balance_fen + sum(c.subtree_balance_fen for c in self.children)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form, children sorted by region code."""
        p = self.position
        return {
            "region_code": p.region_code,
            "level": p.level,
            "received_fen": p.received_fen,
            "passed_down_fen": p.passed_down_fen,
            "contracted_fen": p.contracted_fen,
            "paid_fen": p.paid_fen,
            "returned_fen": p.returned_fen,
            "balance_fen": p.balance_fen,
            "subtree_paid_fen": self.subtree_paid_fen,
            "subtree_balance_fen": self.subtree_balance_fen,
            "children": [c.as_dict() for c in sorted(self.children, key=lambda n: n.position.region_code)],
        }


def build_tree(positions: Iterable[Position]) -> list[PositionNode]:
    """Nest positions under their nearest present ancestor region; the roots come back sorted."""
    nodes = {p.region_code: PositionNode(p) for p in positions}
    roots: list[PositionNode] = []
    for code, node in nodes.items():
        parent = parent_region(code)
        while parent is not None and parent not in nodes:
            parent = parent_region(parent)
        if parent is None:
            roots.append(node)
        else:
            nodes[parent].children.append(node)
    return sorted(roots, key=lambda n: (level_of_region(n.position.region_code).depth, n.position.region_code))
