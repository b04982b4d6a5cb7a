"""Reference data: the vendor registry, debarments and declared relations, as rules read them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fundtrail_schemas.eventspec import SPECS, Family, vendor_of

# The reference-data types, as the event-type registry says (each needs a branch in `apply`).
REFERENCE_TYPES = frozenset(s.name for s in SPECS.values() if s.family is Family.REFERENCE)
_REGISTRY_FIELDS = ("name", "founded_on")
_DEBARMENT_FIELDS = ("debarred_from", "debarred_until", "authority", "reason")


def event_vendor(event: Mapping[str, Any]) -> str | None:
    """The vendor an event concerns, if any (the field the registry names for its type)."""
    return vendor_of(event)


@dataclass
class ReferenceData:
    vendors: dict[str, dict[str, Any]] = field(default_factory=dict)
    debarments: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # vendor → event id → record
    relations: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # vendor → event id → record
    changed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (kind, the event)
    _views: dict[tuple[str | None, date], dict[str, Any]] = field(default_factory=dict)

    def apply(self, event: Mapping[str, Any], *, record: bool = True) -> bool:
        """Take in one reference event (idempotent); True when it changed anything."""
        kind = event["event_type"]
        if kind not in REFERENCE_TYPES:
            raise ValueError(f"{kind} is not reference data")
        vendor = str(event["vendor_id"])
        self._views.clear()
        eid = str(event["event_id"])
        if kind == "VendorRegistered":
            current = self.vendors.get(vendor)
            if current is not None and (current["occurred_at"], current["event_id"]) >= (event["occurred_at"], eid):
                return False
            rec = {k: event.get(k) for k in ("name", "legal_rep_id", "phone", "bank_account", "address", "founded_on")}
            rec.update(vendor_id=vendor, event_id=eid, occurred_at=event["occurred_at"])
            self.vendors[vendor] = rec
        elif kind == "VendorDebarred":
            bucket = self.debarments.setdefault(vendor, {})
            if eid in bucket:
                return False
            bucket[eid] = {
                "vendor_id": vendor, "event_id": eid, "debarred_from": event["debarred_from"],
                "debarred_until": event.get("debarred_until"), "authority": event["authority"],
                "reason": event["reason"], "occurred_at": event["occurred_at"],
            }
        elif kind == "RelationDeclared":
            bucket = self.relations.setdefault(vendor, {})
            if eid in bucket:
                return False
            bucket[eid] = {
                "vendor_id": vendor, "event_id": eid, "official_id": event["official_id"],
                "relation": event["relation"], "occurred_at": event["occurred_at"],
            }
        else:
            raise ValueError(f"{kind} is reference data this registry does not take in yet (add a branch)")
        if record:
            self.changed.append((kind, dict(event)))
        return True

    def signature(self, vendor: str) -> tuple[Any, ...]:
        """Everything a view of `vendor` is made from (not which events said it): equal signatures,
        equal views on every date."""
        reg = self.vendors.get(vendor)
        return (
            tuple(reg.get(k) for k in _REGISTRY_FIELDS) if reg else None,
            frozenset(tuple(d.get(k) for k in _DEBARMENT_FIELDS) for d in self.debarments.get(vendor, {}).values()),
            frozenset(r["official_id"] for r in self.relations.get(vendor, {}).values()),
        )

    def vendor_view(self, vendor: str | None, on: date) -> dict[str, Any]:
        """`ref.vendor` for an event about `vendor` on date `on` (cached until reference data changes)."""
        hit = self._views.get((vendor, on))
        if hit is None:
            if len(self._views) > 100_000:
                self._views.clear()
            hit = self._views[(vendor, on)] = self._view(vendor, on)
        return hit

    def _view(self, vendor: str | None, on: date) -> dict[str, Any]:
        reg = self.vendors.get(vendor) if vendor else None
        active = None
        for d in (self.debarments.get(vendor, {}).values() if vendor else ()):
            start = date.fromisoformat(d["debarred_from"])
            until = date.fromisoformat(d["debarred_until"]) if d.get("debarred_until") else None
            if start <= on and (until is None or on <= until):
                if active is None or d["debarred_from"] < active["debarred_from"]:
                    active = d
        founded = date.fromisoformat(reg["founded_on"]) if reg and reg.get("founded_on") else None
        officials = sorted({r["official_id"] for r in self.relations.get(vendor, {}).values()}) if vendor else []
        return {
            "vendor_id": vendor,
            "registered": reg is not None,
            "name": reg.get("name") if reg else None,
            "founded_on": reg.get("founded_on") if reg else None,
            "age_days": (on - founded).days if founded else None,
            "debarred": active is not None,
            "debarred_from": active["debarred_from"] if active else None,
            "debarred_until": active.get("debarred_until") if active else None,
            "debarred_by": active["authority"] if active else None,
            "debarment_reason": active["reason"] if active else None,
            "related_officials": officials,
        }

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        """Reference events taken in since the last drain (for persistence)."""
        out, self.changed = self.changed, []
        return out
