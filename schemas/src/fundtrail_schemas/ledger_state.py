"""The ledger's working state: plain dataclasses mirroring the contract's state models field for field.

The contract models (`fundtrail_schemas.enriched.FundState`, ...) define what is stored and sent.
Applying tens of thousands of events a second through pydantic attribute assignment and
serialization costs more than everything else in a batch, so the core works on these slotted
dataclasses and serializes them with orjson; `services/fund-tracker/tests/test_core_state.py` checks that the field
names, defaults and JSON stay identical to the contract's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from .enriched import ContractState, FundState, PositionState, ProjectState, VendorState
from .types import Category, Level, ProcurementCategory

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        """JSON bytes of a state (or a list of them)."""
        return orjson.dumps(obj, option=orjson.OPT_UTC_Z)
except ImportError:  # pragma: no cover - depends on the environment
    import dataclasses

    def _default(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj):
            return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        if isinstance(obj, datetime | date):
            return obj.isoformat()
        raise TypeError(f"cannot serialize {type(obj).__name__}")

    def dumps(obj: Any) -> bytes:
        """JSON bytes of a state (or a list of them)."""
        return json.dumps(obj, default=_default, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(slots=True)
class Fund:
    fund_doc_no: str
    known: bool = False
    purpose_category: Category | None = None
    allocated_fen: int = 0
    deadline: date | None = None
    allocated_at: datetime | None = None


@dataclass(slots=True)
class Position:
    fund_doc_no: str
    level: Level
    region_code: str
    received_fen: int = 0
    passed_down_fen: int = 0
    paid_fen: int = 0
    returned_fen: int = 0
    contracted_fen: int = 0
    first_received_at: datetime | None = None
    last_outflow_at: datetime | None = None

    @property
    def balance_fen(self) -> int:
        return self.received_fen - self.passed_down_fen - self.paid_fen - self.returned_fen


@dataclass(slots=True)
class Project:
    project_id: str
    approved: bool = False
    approved_at: datetime | None = None
    region_code: str | None = None
    owner_unit: str | None = None
    category: Category | None = None
    procurement_category: ProcurementCategory | None = None
    budget_fen: int = 0
    land_use_approval_ref: str | None = None
    approving_official_id: str | None = None
    awards_count: int = 0
    awarded_fen: int = 0
    contracted_fen: int = 0
    paid_fen: int = 0
    accepted: bool = False
    accepted_at: datetime | None = None
    accepted_progress_bps: int = 0
    settled: bool = False
    closed: bool = False
    settled_at: datetime | None = None


@dataclass(slots=True)
class Contract:
    contract_id: str
    signed: bool = False
    signed_at: datetime | None = None
    vendor_id: str | None = None
    amount_fen: int = 0
    amendments_fen: int = 0
    approved_amendments_fen: int = 0
    paid_fen: int = 0
    prepaid_fen: int = 0
    payments_count: int = 0
    retention_share_bps: int = 300


@dataclass(slots=True)
class Vendor:
    vendor_id: str
    awards_count: int = 0
    awarded_fen: int = 0
    paid_fen: int = 0


CONTRACT_MODELS: dict[type, type[BaseModel]] = {
    Fund: FundState,
    Position: PositionState,
    Project: ProjectState,
    Contract: ContractState,
    Vendor: VendorState,
}


def to_model(state: Any) -> BaseModel:
    """The contract model of a working state (validated)."""
    return CONTRACT_MODELS[type(state)].model_validate_json(dumps(state))


def from_model(cls: type[Any], model: BaseModel) -> Any:
    """A working state from a contract model."""
    return cls(**{f.name: getattr(model, f.name) for f in fields(cls)})


def from_json(cls: type[Any], data: dict[str, Any] | str | bytes) -> Any:
    """A working state from stored JSON, validated by the contract model."""
    model_cls = CONTRACT_MODELS[cls]
    model = model_cls.model_validate_json(data) if isinstance(data, str | bytes) else model_cls.model_validate(data)
    return from_model(cls, model)
