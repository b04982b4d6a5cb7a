"""County overview: per county and month, violations by department and severity, money, rectification."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

RECTIFIED = "rectified"
CLOSED = frozenset({"rectified", "dismissed", "resolved"})


@dataclass
class CountyMonth:
    """One county's violations of one month (the month the triggering event happened, Asia/Shanghai)."""

    county: str
    month: str
    total: int = 0
    amount_fen: int = 0
    rectified: int = 0
    closed: int = 0
    overdue: int = 0
    by_department: dict[str, int] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def rectification_rate(self) -> float | None:
        """Rectified share of the closed cases, or None while none is closed (a rate of nothing is not 0)."""
        return None if self.closed == 0 else round(self.rectified / self.closed, 4)

    def as_dict(self, county_name: str) -> dict[str, Any]:
        """JSON shape of the overview endpoint."""
        return {
            "county": self.county,
            "county_name": county_name,
            "month": self.month,
            "total": self.total,
            "amount_fen": self.amount_fen,
            "rectified": self.rectified,
            "closed": self.closed,
            "open": self.total - self.closed,
            "rectification_rate": self.rectification_rate,
            "overdue": self.overdue,
            "by_department": dict(sorted(self.by_department.items())),
            "by_severity": dict(sorted(self.by_severity.items())),
            "by_status": dict(sorted(self.by_status.items())),
        }


def _bump(counts: dict[str, int], key: str, n: int) -> None:
    counts[key] = counts.get(key, 0) + n


def aggregate(rows: Iterable[Any]) -> list[CountyMonth]:
    """Fold (county, month, department, severity, status, n, amount_fen, overdue) rows, sorted by county, month."""
    cells: dict[tuple[str, str], CountyMonth] = {}
    for county, month, department, severity, status, n, amount_fen, overdue in rows:
        cell = cells.setdefault((county, month), CountyMonth(county, month))
        cell.total += n
        cell.amount_fen += int(amount_fen or 0)
        cell.overdue += int(overdue or 0)
        _bump(cell.by_department, department, n)
        _bump(cell.by_severity, severity, n)
        _bump(cell.by_status, status, n)
        if status in CLOSED:
            cell.closed += n
        if status == RECTIFIED:
            cell.rectified += n
    return [cells[k] for k in sorted(cells)]
