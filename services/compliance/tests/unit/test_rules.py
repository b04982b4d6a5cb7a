"""Every catalogue rule fires on its examples and not on its near misses; then the rules that need more.

The examples sit next to the packs, one file per pack (rulepacks/examples/, format in its README):
cases start from the golden example events with a compliant ledger state and break one thing.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from fundtrail_compliance import scenario as sc
from fundtrail_compliance.core.engine import Engine, Outcome
from fundtrail_compliance.core.helpers import parse_time
from fundtrail_schemas.catalogue import RULE_IDS

G = sc.golden()
PAY, AWARD = G["PaymentDisbursed"], G["ProcurementAwarded"]
APPROVED, TRANSFER = G["ProjectApproved"], G["FundTransferred"]
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "rulepacks" / "examples"
STEP_KEYS = {"event", "n", "days_later", "set", "keep", "before", "after"}

Step = dict[str, Any]  # an enriched-event document, or {"advance_to": ISO time}


def _put(doc: Any, dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    for key in path:
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    if isinstance(doc, list):
        doc[int(last)] = value
    else:
        doc[last] = value


def _state(normal: dict[str, Any], parts: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(normal)
    for part, value in parts.items():
        merge = isinstance(value, dict) and isinstance(out.get(part), dict)
        out[part] = {**out[part], **value} if merge else value
    return out


def build_step(spec: dict[str, Any]) -> Step:
    """One step of an example (README.md of the examples directory)."""
    if "advance_to" in spec:
        return {"advance_to": spec["advance_to"]}
    unknown = set(spec) - STEP_KEYS
    assert not unknown, f"unknown step keys {unknown}"
    ev = copy.deepcopy(G[spec["event"]])
    if "n" in spec:
        ev = sc.variant(ev, spec["n"])
    if days := spec.get("days_later"):
        ev["occurred_at"] = sc.shift(ev["occurred_at"], days=days)
        ev["published_at"] = sc.shift(ev["published_at"], days=days)
    for field, count in spec.get("keep", {}).items():
        ev[field] = ev[field][:count]
    for dotted, value in spec.get("set", {}).items():
        _put(ev, dotted, value)
    nb, na = sc.normal_states(ev)
    return sc.enriched(ev, _state(nb, spec.get("before", {})), _state(na, spec.get("after", {})))


def _load_examples() -> dict[str, dict[str, list[dict[str, Any]]]]:
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        for rule_id, cases in yaml.safe_load(path.read_text(encoding="utf-8")).items():
            assert rule_id.startswith(f"{path.stem}."), f"{path.name}: {rule_id} belongs to another pack"
            assert rule_id not in out, f"{rule_id} has examples twice"
            assert set(cases) == {"fires", "near_miss"}, f"{path.name} {rule_id}: needs fires and near_miss"
            out[rule_id] = {kind: list(cases[kind]) for kind in ("fires", "near_miss")}
    return out


EXAMPLES = _load_examples()


def steps(rule_id: str, kind: str) -> list[Step]:
    """Fresh documents of one example (built anew each time: the engine may keep what it is given)."""
    return [build_step(s) for s in EXAMPLES[rule_id][kind]]


def run(engine: Engine, step: Step) -> Outcome:
    """The engine's output for one step: a document processed, or its clock advanced."""
    return engine.advance(parse_time(step["advance_to"])) if "advance_to" in step else engine.process(step)


def fired(engine: Engine, *docs: Step) -> set[str]:
    """Rule ids fired by the last step (earlier ones only build state)."""
    out = None
    for d in docs:
        out = run(engine, d)
        assert not out.errors, out.errors
    assert out is not None
    return {v.rule_id for v in out.violations}


def payment(n: int, **changes: Any) -> dict[str, Any]:
    return sc.enriched(sc.variant(PAY, n, **changes))


def award(n: int, **changes: Any) -> dict[str, Any]:
    return sc.enriched(sc.variant(AWARD, n, **changes))


def test_every_rule_of_the_packs_has_examples(packs) -> None:
    assert set(EXAMPLES) == RULE_IDS
    assert packs.rule_ids() == RULE_IDS


@pytest.mark.parametrize("rule_id", sorted(EXAMPLES))
def test_rule_fires(engine: Engine, rule_id: str) -> None:
    assert rule_id in fired(engine, *steps(rule_id, "fires"))


@pytest.mark.parametrize("rule_id", sorted(EXAMPLES))
def test_rule_near_miss_does_not_fire(engine: Engine, rule_id: str) -> None:
    assert rule_id not in fired(engine, *steps(rule_id, "near_miss"))


def test_golden_lifecycle_is_clean(engine: Engine) -> None:
    lifecycle = sorted((ev for et, ev in G.items() if not et.startswith("Violation")), key=lambda e: e["occurred_at"])
    for ev in lifecycle:
        assert fired(engine, sc.enriched(ev)) == set(), ev["event_type"]


def _transfer_and_timer(engine: Engine) -> None:
    assert fired(engine, sc.enriched(TRANSFER)) == set()
    assert len(engine.state.timers.pending) == 1


def test_idle_funds_fires_without_an_event_for_that_fund(engine: Engine) -> None:
    _transfer_and_timer(engine)
    due = parse_time(TRANSFER["occurred_at"]) + timedelta(days=90)
    assert engine.advance(due - timedelta(seconds=1)).violations == []
    out = engine.advance(due)
    assert [v.rule_id for v in out.violations] == ["audit.idle_funds"]
    v = out.violations[0]
    assert v.region_code == "440705101" and str(v.triggering_event_id) == TRANSFER["event_id"]
    assert "90" in v.explanation_en and v.evidence.values["received"] == 400_000_000
    assert engine.advance(due + timedelta(days=5)).violations == []


def test_idle_funds_is_driven_by_any_later_event(engine: Engine) -> None:
    _transfer_and_timer(engine)
    other = sc.variant(G["VendorRegistered"], 7, occurred_at=sc.shift(TRANSFER["occurred_at"], days=100),
                       published_at=sc.shift(TRANSFER["occurred_at"], days=100))
    out = engine.process(sc.enriched(other, sc.ledger(), sc.ledger()))
    assert [v.rule_id for v in out.violations] == ["audit.idle_funds"]


def test_version_is_chosen_by_occurred_date(engine: Engine) -> None:
    in_2024 = dict(occurred_at="2024-06-02T01:30:00Z", published_at="2024-06-02T01:33:00Z")
    wage_2025 = payment(1, account_kind="wage", amount_fen=5_000_001, payment_kind="progress", **in_2024)
    out = engine.process(wage_2025)
    hits = [v for v in out.violations if v.rule_id == "finance.personal_account_payment"]
    assert [v.rule_version for v in hits] == [1]
    wage_2026 = payment(2, account_kind="wage", amount_fen=5_000_001, payment_kind="progress")
    assert "finance.personal_account_payment" not in {v.rule_id for v in engine.process(wage_2026).violations}
    personal_2026 = payment(3, account_kind="personal", amount_fen=5_000_001, payment_kind="progress")
    hits = [v for v in engine.process(personal_2026).violations if v.rule_id == "finance.personal_account_payment"]
    assert [v.rule_version for v in hits] == [2]


def test_no_version_effective_before_the_packs(engine: Engine) -> None:
    old = payment(1, handler_id=PAY["approver_id"], occurred_at="2023-06-02T01:30:00Z",
                  published_at="2023-06-02T01:33:00Z")
    assert fired(engine, old) == set()


def _clock_moved_on(engine: Engine, days: int = 200) -> datetime:
    later = sc.variant(G["VendorRegistered"], 8, occurred_at=sc.shift(TRANSFER["occurred_at"], days=days),
                       published_at=sc.shift(TRANSFER["occurred_at"], days=days))
    engine.process(sc.enriched(later, sc.ledger(), sc.ledger()))
    return parse_time(later["occurred_at"])


def test_a_timer_started_behind_the_clock_waits_for_its_funds_history_then_fires(engine: Engine) -> None:
    # Semantics changed (issue 18): it used to fire at once, before the fund's later history was read.
    now = _clock_moved_on(engine)
    assert engine.process(sc.enriched(TRANSFER)).violations == []  # its 90 days are long over, but wait
    assert engine.advance(now + timedelta(days=14)).violations == []
    out = engine.advance(now + timedelta(days=15))  # the history ended idle: nothing else came
    assert [v.rule_id for v in out.violations] == ["audit.idle_funds"]
    assert engine.state.timers.pending == {}


def test_history_loaded_late_raises_no_idle_noise(engine: Engine) -> None:
    """An earlier year loaded after later-dated traffic: the transfer's money was spent in time, so
    nothing is raised (it used to be raised at once, then resolved by the payment read next)."""
    _clock_moved_on(engine)
    raised = [v.rule_id for v in engine.process(sc.enriched(TRANSFER)).violations]
    pay = payment(1, payment_kind="progress", occurred_at=sc.shift(TRANSFER["occurred_at"], days=40),
                  published_at=sc.shift(TRANSFER["occurred_at"], days=40))
    out = engine.process(pay)
    raised += [v.rule_id for v in out.violations]
    # The fund's own history goes on past the due time plus the grace period.
    late = payment(2, payment_kind="progress", amount_fen=1_234_567,
                   occurred_at=sc.shift(TRANSFER["occurred_at"], days=106),
                   published_at=sc.shift(TRANSFER["occurred_at"], days=106))
    out = engine.process(late)
    raised += [v.rule_id for v in out.violations]
    assert "audit.idle_funds" not in raised and out.resolutions == []
    assert engine.state.timers.pending == {}


def test_history_loaded_late_raises_idle_money_once_its_fund_is_past_the_due_time(engine: Engine) -> None:
    _clock_moved_on(engine)
    assert engine.process(sc.enriched(TRANSFER)).violations == []
    # The town's next record of this fund (not an outflow of its own) is dated past due + grace.
    other = sc.variant(APPROVED, 5, occurred_at=sc.shift(TRANSFER["occurred_at"], days=106),
                       published_at=sc.shift(TRANSFER["occurred_at"], days=106))
    out = engine.process(sc.enriched(other))
    assert "audit.idle_funds" in {v.rule_id for v in out.violations}


def _replay(packs, blobs: list[bytes], verdicts: list[bytes] | None = None):
    from fundtrail_compliance.replay import evaluate

    values = iter(blobs) if verdicts is None else iter(zip(blobs, verdicts, strict=True))
    res = evaluate(values, packs, start=None, end=None, grace=timedelta(days=15))
    return {k: v.model_dump_json() for k, v in res.violations.items()}, dict(res.errors_by_rule)


@pytest.mark.parametrize("share", ["all", "every other", "none"])
def test_prejudged_replay_gives_what_the_engine_alone_gives(packs, share: str) -> None:
    """A parallel replay's reader process judges the plain conditions of as many records as it keeps
    up with: whichever records those are, the violations and errors are the same."""
    import orjson

    from fundtrail_compliance.replay import Prejudge

    bad = payment(900, account_kind="personal", amount_fen=None)  # `> 5000000` on null: an evaluation error
    timed = {"audit.idle_funds"}  # a replay judges records; the examples of timer rules move a clock
    cases = [steps(r, kind) for r in sorted(set(EXAMPLES) - timed) for kind in ("fires", "near_miss")] + [[bad]]
    judged_here = 0
    for docs in cases:
        blobs = [orjson.dumps(d) for d in docs]
        prejudge = Prejudge(packs)
        ask = {"all": lambda i: True, "every other": lambda i: i % 2 == 0, "none": lambda i: False}[share]
        verdicts = [prejudge(b, ask(i)) for i, b in enumerate(blobs)]
        judged_here += sum(v not in (b"", b"0") for v in verdicts)
        assert _replay(packs, blobs, verdicts) == _replay(packs, blobs)
    if share == "none":
        assert judged_here == 0
    else:
        assert judged_here >= 10  # conditions fired (or failed) in the reader, not only in the engine
    blob = orjson.dumps(bad)
    verdict = Prejudge(packs)(blob, True)
    assert verdict == b"!"  # the reader only knows one failed; the engine runs them one by one to name it
    violations, errors = _replay(packs, [blob], [verdict])
    assert violations == {} and errors["finance.personal_account_payment@2"] == 1


def test_each_window_rule_keeps_its_entries_as_long_as_its_own_window_needs(engine: Engine) -> None:
    pay, buy = payment(1), award(1, amount_fen=6_000_000, method="inquiry", platform_ref=None)
    for d in (pay, buy):
        engine.process(d)
    by_rule = lambda: {rule for rule, _ in engine.state.windows.entries}  # noqa: E731
    assert by_rule() == {"finance.similar_payment_review", "trading.split_purchase", "trading.split_tender"}
    last = max(parse_time(d["event"]["occurred_at"]) for d in (pay, buy))
    # similar payments look back 30 days (kept 60), split purchases 90 (kept 180)
    engine.advance(last + timedelta(days=61))
    assert by_rule() == {"trading.split_purchase", "trading.split_tender"}
    engine.advance(last + timedelta(days=181))
    assert by_rule() == set()
