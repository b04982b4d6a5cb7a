"""Evidence redaction against the real rule packs: which named values a regional reader keeps."""

from __future__ import annotations

from fundtrail_gateway.core.scoping import evidence_rules, redact_evidence, redact_violation
from fundtrail_gateway.settings import DEFAULT_RULEPACK_DIR
from fundtrail_schemas.rulepack import load_pack_dir

RULES = evidence_rules(load_pack_dir(DEFAULT_RULEPACK_DIR))


def test_another_regions_payments_of_the_invoice_are_withheld() -> None:
    expressions = RULES[("finance.duplicate_invoice", 1)]
    evidence = {"event_ids": ["e"], "values": {
        "invoice_no": "INV-1", "payment_id": "ZF-1", "other_payments": ["ZF-440781-9"],
        "read": {"before.invoice_payment_ids": ["ZF-440781-9"], "event.payment_id": "ZF-1"}, "params": {}}}
    shown = redact_evidence(evidence, "440705", expressions)
    assert shown["values"] == {"invoice_no": "INV-1", "payment_id": "ZF-1", "read": {"event.payment_id": "ZF-1"},
                               "params": {}}
    assert shown["withheld"] == ["other_payments", "read.before.invoice_payment_ids"]
    assert shown["event_ids"] == ["e"] and redact_evidence(evidence, None, expressions) is evidence


def test_unknown_rules_withhold_every_named_value_and_own_facts_pass_untouched() -> None:
    own = {"values": {"read": {"event.amount_fen": 5, "after.fund.allocated_fen": 9}, "params": {"x": 1}}}
    assert redact_evidence(own, "440705", None) is own
    named = {"values": {"amount": 5}}
    assert redact_evidence(named, "440705", None) == {"values": {}, "withheld": ["amount"]}
    payload = {"rule_id": "no.such_rule", "rule_version": 1, "evidence": named}
    assert redact_violation(payload, "440705", RULES)["evidence"]["withheld"] == ["amount"]
    assert redact_violation(payload, None, RULES) is payload


def test_every_real_rule_keeps_its_own_event_values() -> None:
    """Each rule's names that read only the event, the own position, fund, project, contract, params or timer."""
    kept = {key: [n for n, e in exprs.items() if redact_evidence({"values": {n: 1}}, "440705", exprs) ==
                  {"values": {n: 1}}] for key, exprs in RULES.items()}
    assert "invoice_no" in kept[("finance.duplicate_invoice", 1)]
    assert "other_payments" not in kept[("finance.duplicate_invoice", 1)]
    assert any(kept.values()) and len(RULES) > 10
