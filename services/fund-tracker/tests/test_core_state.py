"""The working state dataclasses stay identical to the contract's state models."""

from __future__ import annotations

from dataclasses import MISSING, fields
from datetime import UTC, date, datetime

import pytest
from pydantic_core import PydanticUndefined

from fundtrail_schemas.ledger_state import CONTRACT_MODELS, Fund, Position, Project, dumps, from_json, to_model
from fundtrail_schemas.types import Category, Level, ProcurementCategory


@pytest.mark.parametrize("cls", list(CONTRACT_MODELS), ids=lambda c: c.__name__)
def test_fields_and_defaults_match_the_contract(cls: type) -> None:
    model = CONTRACT_MODELS[cls]
    ours = {f.name: (None if f.default is MISSING else f.default) for f in fields(cls)}
    theirs = {n: (None if i.default is PydanticUndefined else i.default) for n, i in model.model_fields.items()}
    assert list(ours) == list(theirs)
    assert ours == theirs


def test_json_round_trips_through_the_contract_models() -> None:
    at = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    project = Project("P1", approved=True, approved_at=at, category=Category.WATER,
                      procurement_category=ProcurementCategory.GOODS, budget_fen=5)
    model = to_model(project)
    assert model.model_dump() == {f.name: getattr(project, f.name) for f in fields(Project)}
    assert from_json(Project, dumps(project)) == project
    assert from_json(Project, model.model_dump(mode="json")) == project
    fund = Fund("F", True, Category.WATER, 10, date(2026, 12, 31), at)
    assert to_model(fund).model_dump_json() == dumps(fund).decode()
    pos = Position("F", Level.TOWN, "440705101", received_fen=10, paid_fen=3)
    assert pos.balance_fen == 7 and to_model(pos).balance_fen == 7  # type: ignore[attr-defined]
