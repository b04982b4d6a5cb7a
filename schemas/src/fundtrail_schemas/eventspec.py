"""The event-type registry: one `EventSpec` per event type, the one place per-type facts live.

Everything that treats event types differently reads it: the contract's lists and unions
(`events`), spreadsheet imports (`tabular`: natural keys), fund-tracker (business keys, vendor,
contract and counterparty of an event, trail columns, which types need a ledger handler),
compliance (reference data, vendor of an event), the gateway (OpenAPI examples, the seed), the
demo and the benchmarks (bureau types, month-end mix). `completeness_problems` says what a type
lacks; the tests run it. Recipe: docs/contributing.md, "Adding an event type".

This module imports nothing from `events` at import time (`events` derives its lists from it).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .events import Envelope

__all__ = [
    "SPECS",
    "TRAIL_COLUMNS",
    "EventSpec",
    "Family",
    "bureau_specs",
    "business_key",
    "completeness_problems",
    "contract_of",
    "counterparty_of",
    "message_key",
    "natural_key",
    "spec_of",
    "trail_columns",
    "vendor_of",
]


class Family(enum.StrEnum):
    LIFECYCLE = "lifecycle"
    """Money of a special fund (a `FundEventBase`: the fund reference is mandatory)."""
    REFERENCE = "reference"
    """Reference data about a vendor (its Kafka key is the vendor)."""
    VIOLATION = "violation"
    CASE = "case"
    """A step of a violation's case lifecycle."""


# Trail query columns an event fills from its own fields (fund_doc_no and project_id come from the
# envelope; violations and case actions inherit all of them from the entry they refer to).
TRAIL_COLUMNS = ("payment_id", "contract_id", "vendor_id")


@dataclass(frozen=True, slots=True)
class EventSpec:
    """What the system needs to know about one event type besides its pydantic model."""

    name: str
    family: Family
    bureau: bool
    """Bureaus may publish it (raw topic, POST /v1/events, imports); else only services do."""
    business_key: tuple[str, ...] = ()
    """Fields naming the business fact: a second event id for the same fact is rejected by
    fund-tracker (the last field is the one the rejection names). Empty: no such check."""
    natural_key: tuple[str, ...] = ()
    """Fields naming the source record of a spreadsheet row (its event id derives from them)."""
    payment: str | None = None
    """Field holding the payment id (trail column `payment_id`)."""
    contract: str | None = None
    """Field holding the contract id (trail column `contract_id`, the ledger's contract row)."""
    vendor: str | None = None
    """Field holding the vendor the event awards, contracts, pays or describes (trail column `vendor_id`)."""
    counterparty: tuple[str, str] | None = None
    """(level field, region field) of the position that receives the money, if one does."""
    mix_weight: float = 0.0
    """Relative frequency in a month-end mix (DOMAIN.md); the benchmarks draw events with it."""

    @property
    def model(self) -> type[Envelope]:
        """The pydantic model of the type."""
        from .events import EVENT_TYPES

        return EVENT_TYPES[self.name]

    def fields(self) -> set[str]:
        """Every field name this spec refers to (each must exist on the model)."""
        named = {*self.business_key, *self.natural_key, *(self.counterparty or ())}
        return named | {f for f in (self.payment, self.contract, self.vendor) if f}


def _lifecycle(name: str, key: tuple[str, ...], *, natural: tuple[str, ...] | None = None,
               weight: float, **accessors: Any) -> EventSpec:
    # Where a type has a business key, its spreadsheet natural key is the same fields.
    return EventSpec(name, Family.LIFECYCLE, True, key, key if natural is None else natural,
                     mix_weight=weight, **accessors)


def _reference(name: str, natural: tuple[str, ...], *, weight: float) -> EventSpec:
    return EventSpec(name, Family.REFERENCE, True, (), natural, vendor="vendor_id", mix_weight=weight)


_SPECS: tuple[EventSpec, ...] = (
    _lifecycle("FundAllocated", (), natural=("fund_doc_no", "recipient_region_code"), weight=1,
               counterparty=("recipient_level", "recipient_region_code")),
    _lifecycle("FundTransferred", ("fund_doc_no", "transfer_id"), weight=5,
               counterparty=("to_level", "to_region_code")),
    _lifecycle("ProjectApproved", ("project_id",), weight=6),
    _lifecycle("ProcurementAwarded", ("award_id",), weight=8, vendor="winner_vendor_id"),
    _lifecycle("ContractSigned", ("contract_id",), weight=8, contract="contract_id", vendor="vendor_id"),
    _lifecycle("ContractAmended", ("contract_id", "amendment_id"), weight=5, contract="contract_id"),
    _lifecycle("PaymentDisbursed", ("payment_id",), weight=55, payment="payment_id", contract="contract_id",
               vendor="payee_vendor_id"),
    _lifecycle("ProjectAccepted", ("project_id", "acceptance_id"), weight=4),
    _lifecycle("ProjectSettled", (), natural=("project_id", "closed"), weight=2),
    _lifecycle("FundReturned", ("fund_doc_no", "return_id"), weight=1, counterparty=("to_level", "to_region_code")),
    _lifecycle("BudgetAdjusted", ("project_id", "adjustment_id"), weight=2),
    _reference("VendorRegistered", ("vendor_id", "occurred_at"), weight=2),
    _reference("VendorDebarred", ("vendor_id", "debarred_from"), weight=0.5),
    _reference("RelationDeclared", ("official_id", "vendor_id", "relation"), weight=0.5),
    EventSpec("ViolationRaised", Family.VIOLATION, False),
    EventSpec("ViolationAcknowledged", Family.CASE, False),
    EventSpec("ViolationRectified", Family.CASE, False),
    EventSpec("ViolationDismissed", Family.CASE, False),
    EventSpec("ViolationAssigned", Family.CASE, False),
    EventSpec("ViolationResolved", Family.CASE, False),
)

SPECS: Mapping[str, EventSpec] = {s.name: s for s in _SPECS}
"""Every event type's spec, by event type, in the contract's order."""


def spec_of(event_type: str) -> EventSpec:
    """The spec of an event type; KeyError names the unknown type."""
    try:
        return SPECS[event_type]
    except KeyError:
        raise KeyError(f"{event_type!r} is not an event type of the contract") from None


def bureau_specs() -> list[EventSpec]:
    """The specs of the types bureaus may publish, in the contract's order."""
    return [s for s in _SPECS if s.bureau]


# --------------------------------------------------------------------------- accessors
# They take a contract event or its JSON object (compliance works on decoded dicts).

_MISSING = object()


def _get(event: Envelope | Mapping[str, Any], name: str) -> Any:
    # Per event on hot paths: `type() is dict` and getattr are cheap; isinstance on a pydantic model
    # is not (~200 ns against dict, ~650 ns against Mapping), so it comes last.
    if type(event) is dict:
        return event.get(name)
    value = getattr(event, name, _MISSING)
    if value is _MISSING:
        return event.get(name) if isinstance(event, Mapping) else None
    return value


# Accessor -> event type -> the field it reads (None: the type has no such field).
_ACCESSED: dict[str, dict[str, str | None]] = {
    attr: {s.name: getattr(s, attr) for s in _SPECS} for attr in ("payment", "contract", "vendor")
}


def _field_value(event: Envelope | Mapping[str, Any], attr: str) -> str | None:
    name = _ACCESSED[attr].get(_get(event, "event_type"))
    value = _get(event, name) if name else None
    return str(value) if value else None


def vendor_of(event: Envelope | Mapping[str, Any]) -> str | None:
    """The vendor an event refers to (award winner, contractor, payee, reference data subject)."""
    return _field_value(event, "vendor")


def contract_of(event: Envelope | Mapping[str, Any]) -> str | None:
    """The contract an event refers to."""
    return _field_value(event, "contract")


def counterparty_of(event: Envelope | Mapping[str, Any]) -> tuple[Any, str] | None:
    """(level, region code) of the position receiving an allocation, transfer or return."""
    spec = SPECS.get(_get(event, "event_type"))
    if spec is None or spec.counterparty is None:
        return None
    level_field, region_field = spec.counterparty
    return _get(event, level_field), _get(event, region_field)


def trail_columns(event: Envelope | Mapping[str, Any]) -> dict[str, str | None]:
    """The trail query columns (`TRAIL_COLUMNS`) an event fills from its own fields."""
    return {"payment_id": _field_value(event, "payment"), "contract_id": _field_value(event, "contract"),
            "vendor_id": _field_value(event, "vendor")}


def message_key(event: Envelope | Mapping[str, Any]) -> str:
    """Kafka message key: reference data by vendor, fund events by fund, else by project or event id."""
    spec = SPECS.get(_get(event, "event_type"))
    if spec is not None and spec.family is Family.REFERENCE:
        return f"vendor:{vendor_of(event)}"
    if fund := _get(event, "fund_doc_no"):
        return str(fund)
    if project := _get(event, "project_id"):
        return f"project:{project}"
    return str(_get(event, "event_id"))


def _key(event_type: str, fields: tuple[str, ...], values: Mapping[str, Any] | Envelope) -> str | None:
    parts = [event_type]
    for f in fields:
        v = _get(values, f)
        if v is None or v == "":
            return None
        if isinstance(v, datetime | date):
            parts.append(v.isoformat())
        elif isinstance(v, bool):
            parts.append(str(v).lower())
        else:
            parts.append(str(v))
    return ":".join(parts)


def natural_key(event_type: str, values: Mapping[str, Any]) -> str | None:
    """The source record key of a spreadsheet row from its identifying fields (None if one is missing)."""
    spec = SPECS.get(event_type)
    if spec is None or not spec.natural_key:
        return None
    return _key(event_type, spec.natural_key, values)


def business_key(event: Envelope) -> tuple[str, str] | None:
    """The natural id of the business fact an event records, and the field that carries it.

    Two different event ids for one fact (a payment sent by file and by HTTP with different ids)
    must not count the money twice: fund-tracker rejects the second one.
    """
    spec = SPECS.get(event.event_type)
    if spec is None or not spec.business_key:
        return None
    key = _key(spec.name, spec.business_key, event)
    return (key, spec.business_key[-1]) if key is not None else None


# --------------------------------------------------------------------------- completeness


def completeness_problems(
    specs: Iterable[EventSpec],
    models: Mapping[str, type[BaseModel]],
    bureau_models: Iterable[type[BaseModel]],
    examples: Iterable[str],
) -> list[str]:
    """What the registry lacks, one sentence each (empty: complete).

    `models`: every model of the contract by event type (the `AnyEvent` union); `bureau_models`:
    the `SourceEvent` union's; `examples`: the event types with a golden example.
    """
    from .events import FundEventBase

    specs = list(specs)
    problems: list[str] = []
    by_name = {s.name: s for s in specs}
    if len(by_name) != len(specs):
        problems.append("two specs have the same name")
    for name in models:
        if name not in by_name:
            problems.append(f"{name}: a model without a spec (add one to eventspec.SPECS)")
    have_example = set(examples)
    bureau_names = {m.model_fields["event_type"].default for m in bureau_models}
    for spec in specs:
        model = models.get(spec.name)
        if model is None:
            problems.append(f"{spec.name}: a spec without a model in the AnyEvent union")
            continue
        missing = sorted(f for f in spec.fields() if f not in model.model_fields)
        if missing:
            problems.append(f"{spec.name}: the spec names fields the model lacks: {', '.join(missing)}")
        if spec.name not in have_example:
            problems.append(f"{spec.name}: no golden example (examples.golden_events, then `make schemas`)")
        if (spec.family is Family.LIFECYCLE) != issubclass(model, FundEventBase):
            problems.append(f"{spec.name}: family {spec.family.value} but the model "
                            f"{'is' if issubclass(model, FundEventBase) else 'is not'} a FundEventBase")
        if spec.bureau != (spec.name in bureau_names):
            problems.append(f"{spec.name}: bureau={spec.bureau} disagrees with the SourceEvent union")
        if spec.bureau and not spec.natural_key:
            problems.append(f"{spec.name}: bureaus publish it but it has no natural key (spreadsheet imports)")
        if spec.bureau and spec.mix_weight <= 0:
            problems.append(f"{spec.name}: bureaus publish it but its mix weight is not positive (benchmarks)")
        if spec.family is Family.REFERENCE and not spec.vendor:
            problems.append(f"{spec.name}: reference data without a vendor field (its message key)")
    return problems
