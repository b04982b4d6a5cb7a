"""Pack loading: a broken pack names the file, the rule and the problem; expressions are checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fundtrail_compliance.core.evaluator import PackSet
from fundtrail_schemas.catalogue import GENERATED, render
from fundtrail_schemas.rulepack import RulePackError, load_pack_dir, parse_pack

RULEPACK_DIR = Path(__file__).resolve().parents[2] / "rulepacks"

def _pack_text(**rule_changes: object) -> str:
    doc = yaml.safe_load((RULEPACK_DIR / "inspection.yaml").read_text(encoding="utf-8"))
    doc["rules"][0].update(rule_changes)
    return yaml.safe_dump(doc, allow_unicode=True)


def _compile(text: str, path: str = "inspection.yaml") -> PackSet:
    return PackSet([(parse_pack(text, path), path)])


def test_shipped_packs_compile(packs: PackSet) -> None:
    assert len(packs.packs) == 9
    assert {p.department.value for p in packs.packs} == {
        "inspection", "finance", "agriculture", "audit", "development", "housing", "natural_resources", "trading",
        "discipline",
    }


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"condition": "event.handler_id == "}, "does not compile"),
        ({"condition": "event.handler == event.approver_id"}, "event.handler is not a known field"),
        ({"condition": "event.amount_fen > params.nope"}, "unknown parameter params.nope"),
        ({"condition": "has(event.handler_id)"}, "has() is not supported"),
        ({"condition": "frobnicate(event.handler_id)"}, "unknown function frobnicate()"),
        ({"condition": "event == null"}, "read fields of event"),
        ({"evidence": {"payment_id": "event.payment_id", "person": "event.handler_id.size"}}, "has no field size"),
    ],
)
def test_bad_expression_names_file_rule_and_problem(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(RulePackError) as err:
        _compile(_pack_text(**changes), "packs/inspection.yaml")
    assert err.value.path == "packs/inspection.yaml"
    assert err.value.rule == "inspection.same_handler_approver@1"
    assert problem in err.value.problem


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"parameters": {"x": {"type": "fen", "default": "12"}}}, "does not have type fen"),
        ({"parameters": {"x": {"type": "days", "default": -3}}}, "must not be negative"),
        ({"parameters": {"x": {"type": "int", "default": True}}}, "is a boolean"),
        ({"applies_to": ["PaymentMade"]}, "unknown event types"),
        ({"explanation_en": "{nobody}"}, "explanation uses nobody"),
    ],
)
def test_structural_errors(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(RulePackError) as err:
        parse_pack(_pack_text(**changes), "inspection.yaml")
    assert problem in str(err.value)
    assert "inspection.yaml" in str(err.value)


def test_duplicate_ids_are_refused() -> None:
    doc = yaml.safe_load((RULEPACK_DIR / "inspection.yaml").read_text(encoding="utf-8"))
    doc["rules"].append(dict(doc["rules"][0]))
    with pytest.raises(RulePackError, match="appears twice"):
        parse_pack(yaml.safe_dump(doc, allow_unicode=True), "inspection.yaml")


def test_same_rule_in_two_files_is_refused() -> None:
    text = (RULEPACK_DIR / "inspection.yaml").read_text(encoding="utf-8")
    with pytest.raises(RulePackError, match=r"already defined in a\.yaml"):
        PackSet([(parse_pack(text, "a.yaml"), "a.yaml"), (parse_pack(text, "b.yaml"), "b.yaml")])


def test_overlapping_versions_are_refused() -> None:
    doc = yaml.safe_load((RULEPACK_DIR / "inspection.yaml").read_text(encoding="utf-8"))
    v2 = dict(doc["rules"][0], version=2)
    doc["rules"].append(v2)
    with pytest.raises(RulePackError, match="overlap"):
        parse_pack(yaml.safe_dump(doc, allow_unicode=True), "inspection.yaml")


def test_parameter_override_is_typed(tmp_path: Path) -> None:
    text = (RULEPACK_DIR / "finance.yaml").read_text(encoding="utf-8")
    pack = parse_pack(text, "finance.yaml")
    ps = PackSet([(pack, "finance.yaml")], overrides={"finance.personal_account_payment": {"max_fen": 100}})
    assert ps.by_ref["finance.personal_account_payment@2"].params["max_fen"] == 100
    with pytest.raises(RulePackError, match="does not have type fen"):
        PackSet([(pack, "finance.yaml")], overrides={"finance.personal_account_payment": {"max_fen": "x"}})


def test_the_catalogue_is_derived_from_these_packs() -> None:
    """The contract's catalogue (rule ids, numbers, owners, default parameters) is generated from the
    packs and checked in; regenerate with `python -m fundtrail_schemas.catalogue services/compliance/rulepacks`."""
    assert render(load_pack_dir(RULEPACK_DIR)) == GENERATED.read_text(encoding="utf-8"), (
        "the catalogue has drifted from the packs: run "
        "`.tools/bin/uv run --frozen python -m fundtrail_schemas.catalogue services/compliance/rulepacks`"
    )
