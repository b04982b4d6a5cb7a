"""Pure core: regions, cursors, case transitions, rate limits, expiring maps, positions, ingest."""

from __future__ import annotations

import itertools
import uuid

import pytest

from fundtrail_gateway.core.auth import Principal, Role, parse_scopes
from fundtrail_gateway.core.cursor import InvalidCursor, cursor_or_problem, decode_cursor, encode_cursor
from fundtrail_gateway.core.ingest import Outcome, accepted_ids, mark_recorded, validate_items
from fundtrail_gateway.core.positions import Position, build_tree
from fundtrail_gateway.core.problems import ProblemError, make_problem, too_many_requests
from fundtrail_gateway.core.ratelimit import RateLimiter
from fundtrail_gateway.core.recent import ExpiringMap
from fundtrail_gateway.core.regions import DISJOINT, intersect, like_pattern, region_prefix
from fundtrail_schemas.examples import load_examples
from fundtrail_schemas.types import region_within

CODES = ["440000", "440700", "440705", "440781", "440705101", "440705102", "440781101", "440705101201",
         "440705102201", "450000", "450100", "450102"]


@pytest.mark.parametrize(("code", "scope"), list(itertools.product(CODES, CODES)))
def test_region_prefix_agrees_with_region_within(code: str, scope: str) -> None:
    assert code.startswith(region_prefix(scope)) == region_within(code, scope)


def test_intersect() -> None:
    assert intersect(None, None) is None
    assert intersect("440705", None) == "440705"
    assert intersect(None, "4407") == "4407"
    assert intersect("440705", "4407") == "440705"
    assert intersect("4407", "440705101") == "440705101"
    assert intersect("440705", "440781") is DISJOINT
    with pytest.raises(ValueError):
        like_pattern("44%")


def test_principal_scoping() -> None:
    county = Principal("u", frozenset({Role.COMPLIANCE}), "440705")
    assert county.can_read("440705101201")
    assert not county.can_read("440781101")
    assert not county.can_read("440700")
    auditor = Principal("a", frozenset({Role.AUDITOR}), None)
    assert auditor.can_read("450102") and auditor.read_region() is None
    bureau = Principal("b", frozenset({Role.BUREAU}), "440705")
    assert not bureau.can_read("440705")
    assert bureau.can_publish_for("440705101") and not bureau.can_publish_for("440781")
    assert not county.can_publish_for("440705")
    assert county.can_act_on_case("440705101") and not auditor.can_act_on_case("440705101")
    assert parse_scopes("compliance  auditor unknown") == {Role.COMPLIANCE, Role.AUDITOR}
    assert parse_scopes(["admin", 3]) == {Role.ADMIN}
    assert parse_scopes(None) == frozenset()


def test_cursor_round_trip_and_refusals() -> None:
    c = encode_cursor("trail", [42])
    assert decode_cursor("trail", c, (int,)) == [42]
    with pytest.raises(InvalidCursor):
        decode_cursor("violations", c, (int,))
    with pytest.raises(InvalidCursor):
        decode_cursor("trail", c, (str,))
    with pytest.raises(InvalidCursor):
        decode_cursor("trail", encode_cursor("trail", [True]), (int,))
    for junk in ("!!!", "e30", "a" * 2000, "ey"):
        with pytest.raises(InvalidCursor):
            decode_cursor("trail", junk, (int,))
    with pytest.raises(ProblemError) as info:
        cursor_or_problem("trail", "nope", (int,))
    assert info.value.problem.status == 400
    assert cursor_or_problem("trail", None, (int,)) is None


def test_rate_limiter_token_bucket() -> None:
    rl = RateLimiter(rate=2.0, burst=3)
    assert [rl.acquire("a", 0.0) for _ in range(3)] == [None, None, None]
    wait = rl.acquire("a", 0.0)
    assert wait == pytest.approx(0.5)
    assert rl.acquire("b", 0.0) is None  # buckets are per subject
    assert rl.acquire("a", 0.5) is None
    assert rl.acquire("a", 0.5) is not None
    assert rl.acquire("a", 100.0) is None  # refills, capped at burst
    assert [rl.acquire("a", 100.0) for _ in range(3)][-1] is not None
    problem = too_many_requests(0.2)
    assert problem.headers["Retry-After"] == "1" and problem.problem.status == 429


def test_expiring_map() -> None:
    m: ExpiringMap[str, int] = ExpiringMap(ttl=10, max_size=2)
    m.put("a", 1, 0)
    assert m.get("a", 5) == 1
    assert m.get("a", 10) is None
    m.put("b", 2, 20)
    m.put("c", 3, 21)
    m.put("d", 4, 22)
    assert m.get("b", 22) is None and m.get("d", 22) == 4 and len(m) == 2


def test_position_tree() -> None:
    def pos(region: str, level: str, received: int, down: int = 0, paid: int = 0) -> Position:
        return Position(region, level, received, down, paid, 0, 0)

    roots = build_tree([
        pos("440705101201", "village", 50, paid=10),
        pos("440700", "city", 1000, down=1000),
        pos("440705", "county", 1000, down=400),
        pos("440705101", "town", 400, down=50, paid=100),
        pos("440781102", "town", 30),  # its county has no position: hangs under the city
    ])
    assert [r.position.region_code for r in roots] == ["440700"]
    city = roots[0].as_dict()
    assert [c["region_code"] for c in city["children"]] == ["440705", "440781102"]
    town = city["children"][0]["children"][0]
    assert town["balance_fen"] == 250 and town["subtree_paid_fen"] == 110
    assert city["subtree_balance_fen"] == 0 + 600 + 250 + 40 + 30


def test_validate_items_region_duplicates_and_rejections() -> None:
    ex = load_examples()
    bureau = Principal("b", frozenset({Role.BUREAU}), "440705")
    transfer = ex["FundTransferred"]
    allocation = ex["FundAllocated"]  # a city event: outside a county bureau's region
    items = validate_items([transfer, transfer, allocation, {"event_type": "Nope"}, 7, ex["ViolationRaised"]],
                           bureau, "/v1/events")
    assert [i.outcome for i in items] == [Outcome.ACCEPTED, Outcome.ALREADY_RECORDED, Outcome.REJECTED,
                                          Outcome.REJECTED, Outcome.REJECTED, Outcome.REJECTED]
    assert items[2].problem is not None and items[2].problem.status == 403
    assert items[3].problem is not None and items[3].problem.status == 422 and items[3].problem.errors
    assert items[5].problem is not None and items[5].problem.type.endswith("not-allowed-here")
    mark_recorded(items, [uuid.UUID(transfer["event_id"])])
    assert items[0].outcome is Outcome.ALREADY_RECORDED and accepted_ids(items) == []


def test_problem_document_shape() -> None:
    p = make_problem(404, "gone", instance="/x", extra="y")
    doc = p.model_dump(exclude_none=True)
    assert doc == {"type": "urn:fundtrail:problem:not-found", "title": "Not Found", "status": 404,
                   "detail": "gone", "instance": "/x", "extra": "y"}
