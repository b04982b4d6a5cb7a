"""Fixtures of the compliance tests: the shipped packs, compiled once."""

from __future__ import annotations

from pathlib import Path

import pytest

from fundtrail_compliance.core.engine import Engine
from fundtrail_compliance.core.evaluator import PackSet
from fundtrail_schemas.rulepack import load_pack

RULEPACK_DIR = Path(__file__).resolve().parents[1] / "rulepacks"


@pytest.fixture(scope="session")
def packs() -> PackSet:
    return PackSet([(load_pack(p), str(p)) for p in sorted(RULEPACK_DIR.glob("*.yaml"))])


@pytest.fixture
def engine(packs: PackSet) -> Engine:
    return Engine(packs)
