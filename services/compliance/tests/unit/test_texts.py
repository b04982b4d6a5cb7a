"""What officers read: labels instead of codes, Asia/Shanghai dates, amounts with separators."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum

import pytest

from fundtrail_compliance import scenario as sc
from fundtrail_compliance.core.engine import Engine
from fundtrail_compliance.core.helpers import parse_time
from fundtrail_schemas import types
from fundtrail_schemas.labels import LABELS, label

from .test_rules import EXAMPLES, G, fired, run, steps

# Every coded value of the contract's enums, and the event types: none may appear in a Chinese text.
CODES = sorted({str(c) for c in LABELS if re.fullmatch(r"[A-Za-z_]+", str(c))}, key=len, reverse=True)
RAW_CODE = re.compile(r"(?<![A-Za-z0-9_-])(" + "|".join(map(re.escape, CODES)) + r")(?![A-Za-z0-9_-])")
UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


@pytest.mark.parametrize("rule_id", sorted(EXAMPLES))
def test_no_raw_code_or_utc_timestamp_in_the_texts(engine: Engine, rule_id: str) -> None:
    violations = []
    for step in steps(rule_id, "fires"):
        violations += run(engine, step).violations
    hits = [v for v in violations if v.rule_id == rule_id]
    assert hits
    for v in hits:
        assert not RAW_CODE.search(v.explanation_zh), v.explanation_zh
        assert not UTC_TIME.search(v.explanation_zh) and not UTC_TIME.search(v.explanation_en), v.explanation_en


def test_idle_funds_text_shows_china_dates_and_labels(engine: Engine) -> None:
    transfer = G["FundTransferred"]
    assert fired(engine, sc.enriched(transfer)) == set()
    out = engine.advance(parse_time(transfer["occurred_at"]) + timedelta(days=90))
    v = out.violations[0]
    assert "于2026年3月7日到达440705101（镇级）" in v.explanation_zh and "至2026年6月5日" in v.explanation_zh
    assert "400,000,000" not in v.explanation_zh and "4,000,000.00元" in v.explanation_zh
    assert "(town) on 2026-03-07" in v.explanation_en


def test_labels_name_the_tender_method_and_category(engine: Engine) -> None:
    doc = sc.enriched(sc.variant(G["ProcurementAwarded"], 1, method="single_source", amount_fen=400_000_000))
    v = next(v for v in engine.process(doc).violations if v.rule_id == "trading.tender_threshold")
    assert v.explanation_zh.startswith("施工类采购") and "却采用单一来源方式" in v.explanation_zh
    assert "construction procurement" in v.explanation_en and "used single source" in v.explanation_en


def test_collusion_names_the_shared_field(engine: Engine) -> None:
    bidders = [dict(b) for b in G["ProcurementAwarded"]["bidders"]]
    bidders[1]["phone"] = bidders[0]["phone"]
    doc = sc.enriched(sc.variant(G["ProcurementAwarded"], 1, bidders=bidders))
    v = next(v for v in engine.process(doc).violations if v.rule_id == "discipline.bidder_collusion")
    first, second = sorted((bidders[0]["vendor_id"], bidders[1]["vendor_id"]))
    assert f"{first}与{second}共用联系电话" in v.explanation_zh
    assert f"{first} and {second} share the phone number" in v.explanation_en


def test_every_enum_code_has_one_label_in_both_languages() -> None:
    enums = [e for e in vars(types).values() if isinstance(e, type) and issubclass(e, StrEnum) and e is not StrEnum]
    codes = [str(m) for e in enums for m in e]
    assert len(codes) == len(set(codes)), "two enums share a code: one label table would be ambiguous"
    for code in codes:
        zh, en = LABELS[code]
        assert zh and en and label(code, "zh") == zh and label(code, "en") == en
    assert label("unknown_code", "zh") == "unknown_code"
