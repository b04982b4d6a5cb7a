"""Trail pages: every item parsed from its leaf, final pages cached per region scope with ETags, answered
from memory only after the same checks as the route, and dropped when trail rows change underneath.

Every test writes its own small log into a fresh migrated database, so it can append to the log and
change rows underneath the gateway (the log's tables refuse UPDATE and DELETE; the tests bypass the
triggers as a superuser could, to see whether the cache notices).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from fundtrail_gateway.adapters.trails import conninfo
from fundtrail_gateway.core.auth import Role
from fundtrail_gateway.core.tokens import TokenCodec
from fundtrail_gateway.main import create_app
from fundtrail_gateway.seed import TrailBuilder
from fundtrail_gateway.settings import GatewaySettings
from fundtrail_gateway.testing import free_port, running
from fundtrail_runtime.db import sync_engine
from fundtrail_schemas.events import (
    Evidence,
    FundAllocated,
    FundTransferred,
    PaymentDisbursed,
    ProjectApproved,
    ViolationAcknowledged,
    ViolationRaised,
)
from fundtrail_schemas.leaf import decode_leaf
from fundtrail_schemas.types import (
    AccountKind,
    Category,
    Department,
    Level,
    PaymentKind,
    ProcurementCategory,
    ProcurementMethod,
    Severity,
)
from fundtrail_verify import merkle

pytestmark = pytest.mark.integration

COUNTY, TOWN, OTHER_COUNTY = "440705", "440705101", "440781"
FUND = "江财农〔2026〕18号"
PROJECT = f"P-{TOWN}-CACHE"
T0 = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
FINAL = "private, max-age=3600, immutable"
LIVE = "private, no-cache"


def _env(n: int, level: Level, region: str, at: datetime, project: str | None = None) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid5(uuid.NAMESPACE_URL, f"trail-cache/{n}"),
        "occurred_at": at,
        "published_at": at + timedelta(minutes=3),
        "source_bureau": f"{region}-CZ",
        "level": level,
        "region_code": region,
        "fund_doc_no": FUND,
        "project_id": project,
    }


def _payment(n: int, at: datetime) -> PaymentDisbursed:
    return PaymentDisbursed(
        **_env(n, Level.TOWN, TOWN, at, PROJECT), payment_id=f"ZF-{TOWN}-{n:04d}",
        payee_name="江门市绿野建设工程有限公司", payee_account="6222-0001", account_kind=AccountKind.CORPORATE,
        amount_fen=10_000 + n, invoice_no=f"INV-{n}",
        payment_kind=PaymentKind.PROGRESS, handler_id="STAFF-1", approver_id="STAFF-2", purpose="进度款\n第一期",
    )


@dataclass
class Log:
    """A fund's log in its own database; `append` adds more payments (as fund-tracker would)."""

    url: str
    engine: Engine
    builder: TrailBuilder
    violation_id: uuid.UUID
    withheld_case: dict[str, Any]

    def append(self, *ns: int) -> None:
        for n in ns:
            self.builder.event(_payment(n, T0 + timedelta(days=n, microseconds=n)))
        self.builder.write(self.engine)

    def sql(self, statement: str, *params: object) -> None:
        with psycopg.connect(conninfo(self.url), autocommit=True) as conn:
            conn.execute(statement, params)  # type: ignore[arg-type]

    def tamper(self, statement: str, *params: object) -> None:
        """Change a row of the log as a superuser can (past the append-only triggers), statistics flushed."""
        with psycopg.connect(conninfo(self.url), autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute(statement, params)  # type: ignore[arg-type]
            conn.execute("SELECT pg_stat_force_next_flush()")


@pytest.fixture
def log(migrated_database_url: str) -> Iterator[Log]:
    """Leaves 0-6 of one fund: with `limit=2`, pages [0 1] [2 3] are final, [4 5] holds a violation and a
    case action whose row compliance has not written yet, [6] is the live end of the trail."""
    b = TrailBuilder()
    b.event(FundAllocated(
        **_env(0, Level.CITY, "440700", T0), amount_fen=1_000_000_000, purpose_category=Category.INFRASTRUCTURE,
        recipient_level=Level.COUNTY, recipient_region_code=COUNTY, deadline=date(2026, 12, 31), title="基础设施专项",
    ))
    b.event(FundTransferred(
        **_env(1, Level.COUNTY, COUNTY, T0 + timedelta(days=1)), transfer_id="ZF-1", amount_fen=400_000_000,
        to_level=Level.TOWN, to_region_code=TOWN,
    ), state_after={"position": {"region_code": COUNTY, "passed_down_fen": 400_000_000}, "note": "下拨"})
    # Fractional seconds with and without trailing zeros: the text must be what orjson writes.
    b.event(ProjectApproved(
        **_env(2, Level.TOWN, TOWN, T0 + timedelta(days=2, microseconds=120_000), PROJECT), project_name="村道硬底化",
        owner_unit=f"{TOWN}-JSB", category=Category.INFRASTRUCTURE, budget_fen=200_000_000,
        planned_procurement_method=ProcurementMethod.OPEN_TENDER, procurement_category=ProcurementCategory.CONSTRUCTION,
        approval_doc_no=f"A-{TOWN}-1", approving_official_id="OFF-1",
    ))
    payment = _payment(3, T0 + timedelta(days=3, microseconds=123_456))
    b.event(payment)
    raised = ViolationRaised(
        **_env(4, Level.TOWN, TOWN, T0 + timedelta(days=4), PROJECT), violation_id=uuid.uuid4(),
        rule_id="inspection.same_handler_approver", rule_version=1, department=Department.INSPECTION,
        severity=Severity.HIGH, triggering_event_id=payment.event_id,
        evidence=Evidence(event_ids=[payment.event_id], values={"handler_id": "STAFF-1"}),
        explanation_zh="经办人与审批人相同", explanation_en="Handler and approver are the same person",
        legal_basis="第十二条", trace_id=uuid.uuid4().hex,
    )
    b.violation(raised, status="raised")
    ack = ViolationAcknowledged(**_env(5, Level.TOWN, TOWN, T0 + timedelta(days=5), PROJECT),
                                violation_id=raised.violation_id, actor="USER-1", note="已收到")
    b.case(ack, "acknowledged")
    case_row = b.rows.pop()  # fund-tracker appended the leaf; compliance has not recorded the action yet
    withheld = {"event_id": case_row.event_id, "violation_id": case_row.violation_id, "action": case_row.action,
                "actor": case_row.actor, "at": case_row.at, "payload": orjson.dumps(case_row.payload).decode()}
    b.event(_payment(6, T0 + timedelta(days=6)))
    b.checkpoint(Ed25519PrivateKey.generate())
    engine = sync_engine(migrated_database_url)
    b.write(engine)
    try:
        yield Log(migrated_database_url, engine, b, raised.violation_id, withheld)
    finally:
        engine.dispose()


@pytest.fixture
async def client(
    log: Log, settings_factory: Callable[..., GatewaySettings]
) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings_factory(database_url=log.url, trail_cache_probe_seconds=0))) as c:
        yield c


def _trail(limit: int = 2, cursor: str | None = None) -> str:
    return f"/v1/funds/{FUND}/trail?limit={limit}" + (f"&cursor={cursor}" if cursor else "")


async def _pages(client: httpx.AsyncClient, headers: dict[str, str], limit: int = 2) -> list[httpx.Response]:
    pages, url = [], _trail(limit)
    while url:
        r = await client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        pages.append(r)
        url = r.json()["next"]
    return pages


# The per-row renderer the SQL replaced, kept here as the oracle: the stored JSONB text verbatim, every
# other value as orjson writes it.
_REFERENCE_SQL = """
SELECT te.seq, te.entry_kind, te.entry_id, te.event_type, te.fund_doc_no, te.project_id, te.payment_id,
       te.contract_id, te.vendor_id, te.violation_id, te.region_code, te.occurred_at, te.appended_at,
       te.leaf_hash, te.trace_id, coalesce(pe.payload::jsonb, ca.payload, vi.payload)::text,
       pe.state_after::jsonb::text,
       vi.status
FROM trail_entry te
LEFT JOIN processed_event pe ON te.entry_kind = 'event' AND pe.event_id = te.entry_id
LEFT JOIN case_action ca ON te.entry_kind = 'case' AND ca.event_id = te.entry_id
LEFT JOIN violation vi ON te.entry_kind = 'violation' AND vi.violation_id = te.violation_id
WHERE te.fund_doc_no = %s ORDER BY te.seq"""


def _reference_items(url: str) -> list[bytes]:
    with psycopg.connect(conninfo(url), autocommit=True, options="-c TimeZone=Asia/Shanghai") as conn:
        rows = conn.execute(_REFERENCE_SQL, (FUND,)).fetchall()
    items = []
    for (seq, kind, entry_id, event_type, fund_doc_no, project_id, payment_id, contract_id, vendor_id, violation_id,
         region_code, occurred_at, appended_at, leaf_hash, trace_id, payload, state_after, status) in rows:
        items.append(orjson.dumps({
            "leaf_index": seq, "leaf_hash": leaf_hash.hex(), "entry_kind": kind, "entry_id": entry_id,
            "event_type": event_type, "fund_doc_no": fund_doc_no, "project_id": project_id, "payment_id": payment_id,
            "contract_id": contract_id, "vendor_id": vendor_id, "violation_id": violation_id,
            "violation_status": status, "region_code": region_code,
            "occurred_at": occurred_at.astimezone(UTC), "appended_at": appended_at.astimezone(UTC),
            "trace_id": trace_id,
            "event": orjson.Fragment(payload) if payload is not None else None,
            "state_after": orjson.Fragment(state_after) if state_after is not None else None,
            "links": {"proof": f"/v1/proofs/entries/{seq}",
                      "violation": f"/v1/violations/{violation_id}" if violation_id else None},
        }))
    return items








async def test_items_are_parsed_from_their_leaves(
    client: httpx.AsyncClient, log: Log, auth: Callable[..., dict[str, str]]
) -> None:
    pages = await _pages(client, auth("auditor"), limit=3)
    assert [len(p.json()["items"]) for p in pages] == [3, 3, 1]
    items = [item for p in pages for item in p.json()["items"]]
    previous = None
    for item in items:
        data = base64.b64decode(item["leaf_data"])
        assert merkle.leaf_hash(data).hex() == item["leaf_hash"]
        leaf = decode_leaf(data)
        assert (item["entry_kind"], item["event_type"], item["event"], item["state_after"]) == (
            leaf.kind, leaf.event_type, leaf.payload, leaf.after)
        assert item["prev"]["fund"] == previous and item["verification"] == {"ok": True, "problems": []}
        previous = item["leaf_index"]
    # The case action's row is not recorded yet; its leaf is, and that is what is shown.
    assert items[5]["event"]["event_type"] == "ViolationAcknowledged"
    stamps = [item["occurred_at"] for item in items]
    assert stamps[2].endswith("T01:30:00.120000+00:00") and stamps[3].endswith("T01:30:00.123456+00:00")
    assert stamps[0] == "2026-03-02T01:30:00+00:00"


async def test_final_pages_are_cached_until_trail_rows_change(
    client: httpx.AsyncClient, log: Log, auth: Callable[..., dict[str, str]]
) -> None:
    headers = auth("auditor")
    first = await _pages(client, headers)
    assert [[e["leaf_index"] for e in p.json()["items"]] for p in first] == [[0, 1], [2, 3], [4, 5], [6]]
    assert [p.headers["cache-control"] for p in first] == [FINAL, FINAL, LIVE, LIVE]
    assert all(p.headers["vary"] == "Authorization" and p.headers["etag"].startswith('"') for p in first)
    assert first[2].json()["items"][0]["violation_status"] == "raised"

    # A copy outside the log changes: final pages still come from memory, byte for byte.
    log.sql("UPDATE violation SET status = 'acknowledged' WHERE violation_id = %s", log.violation_id)
    again = await _pages(client, headers)
    assert again[0].content == first[0].content and again[1].content == first[1].content
    # A violation's status can change any time: a page showing one is never final.
    assert again[2].json()["items"][0]["violation_status"] == "acknowledged"
    assert again[2].headers["cache-control"] == LIVE and again[2].headers["etag"] != first[2].headers["etag"]

    # A leaf on a cached page is rewritten behind the triggers: the cache notices, the page is rendered
    # again from the rows as they are, with the failed check named, and is no longer final.
    log.tamper("UPDATE trail_entry SET leaf_data = leaf_data || ' '::bytea WHERE seq = 1")
    tampered = await client.get(first[0].request.url, headers=headers)
    assert tampered.status_code == 200 and tampered.headers["cache-control"] == LIVE
    assert tampered.json()["items"][1]["verification"] == {"ok": False, "problems": ["leaf_hash"]}
    assert (await client.get(first[1].request.url, headers=headers)).content == first[1].content


async def test_a_deleted_entry_is_a_named_chain_gap(
    client: httpx.AsyncClient, log: Log, auth: Callable[..., dict[str, str]]
) -> None:
    log.tamper("DELETE FROM trail_entry WHERE seq = 2")
    r = await client.get(_trail(limit=10), headers=auth("auditor"))
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["leaf_index"] for i in items] == [0, 1, 3, 4, 5, 6]
    assert items[2]["verification"] == {"ok": False, "problems": ["chain_gap"]}
    assert all(i["verification"]["ok"] for i in items if i["leaf_index"] != 3)


async def test_the_end_of_the_trail_becomes_final_once_followed(
    client: httpx.AsyncClient, log: Log, auth: Callable[..., dict[str, str]]
) -> None:
    headers = auth("auditor")
    pages = await _pages(client, headers)
    end = pages[-1].request.url
    assert pages[-1].json()["next"] is None and pages[-1].headers["cache-control"] == LIVE
    log.append(7)
    full = await client.get(end, headers=headers)
    assert [e["leaf_index"] for e in full.json()["items"]] == [6, 7]
    assert full.json()["next"] is None and full.headers["cache-control"] == LIVE
    log.append(8)
    followed = await client.get(end, headers=headers)
    assert followed.json()["next"] and followed.headers["cache-control"] == FINAL
    assert followed.headers["link"] == f'<{followed.json()["next"]}>; rel="next"'
    cached = await client.get(end, headers=headers)
    assert cached.content == followed.content and cached.headers["link"] == followed.headers["link"]
    tail = await client.get(followed.json()["next"], headers=headers)
    assert [e["leaf_index"] for e in tail.json()["items"]] == [8]
    assert tail.json()["items"][0]["prev"]["fund"] == 7


async def test_if_none_match_answers_304(
    client: httpx.AsyncClient, log: Log, auth: Callable[..., dict[str, str]]
) -> None:
    headers = auth("auditor")
    pages = await _pages(client, headers)
    for page in (pages[0], pages[-1]):  # a cached page and a live one
        url, etag = page.request.url, page.headers["etag"]
        for validator in (etag, f'"nope", W/{etag}', "*"):
            r = await client.get(url, headers={**headers, "If-None-Match": validator})
            assert r.status_code == 304 and r.content == b""
            assert r.headers["etag"] == etag and r.headers["cache-control"] == page.headers["cache-control"]
        changed = await client.get(url, headers={**headers, "If-None-Match": '"something else"'})
        assert changed.status_code == 200 and changed.content == page.content


async def test_cached_pages_respect_the_region_scope(
    client: httpx.AsyncClient, log: Log, auth: Callable[..., dict[str, str]]
) -> None:
    auditor = await _pages(client, auth("auditor"))
    county = await _pages(client, auth("compliance", COUNTY, subject="county-user-1"))
    # The city's allocation is outside the county's region: its pages start one leaf later.
    assert [e["leaf_index"] for e in county[0].json()["items"]] == [1, 2]
    assert county[0].request.url == auditor[0].request.url and county[0].content != auditor[0].content
    again = await client.get(auditor[0].request.url, headers=auth("compliance", COUNTY, subject="county-user-2"))
    assert again.content == county[0].content
    other = await client.get(auditor[0].request.url, headers=auth("compliance", OTHER_COUNTY))
    assert other.status_code == 404 and other.json()["type"] == "urn:fundtrail:problem:not-found"


async def test_cached_pages_are_only_given_after_the_routes_checks(
    log: Log, settings_factory: Callable[..., GatewaySettings], auth: Callable[..., dict[str, str]],
    codec: TokenCodec,
) -> None:
    settings = settings_factory(database_url=log.url, rate_limit_per_second=3 / 3600, rate_limit_window_seconds=3600)
    async with running(create_app(settings)) as c:
        url = _trail()
        reader = auth("auditor", subject="limited-auditor")
        assert (await c.get(url, headers=reader)).headers["cache-control"] == FINAL
        assert (await c.get(url, headers=reader)).status_code == 200  # from the cache
        no_token = await c.get(url)
        assert no_token.status_code == 401 and no_token.json()["type"] == "urn:fundtrail:problem:unauthorized"
        basic = await c.get(url, headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert basic.status_code == 401
        # Pages cached for the scopes an admin (no region) and a county bureau would look up:
        assert (await c.get(url, headers=auth("compliance", COUNTY))).status_code == 200
        for role, region in (("admin", None), ("bureau", COUNTY)):
            wrong_role = await c.get(url, headers=auth(role, region))
            assert wrong_role.status_code == 403 and wrong_role.json()["type"] == "urn:fundtrail:problem:forbidden"
        expired = codec.issue("late", [Role.AUDITOR], None, now=datetime.now(UTC) - timedelta(hours=2),
                              ttl=timedelta(minutes=5))
        assert (await c.get(url, headers={"Authorization": f"Bearer {expired}"})).status_code == 401
        assert (await c.get(url, headers=reader)).status_code == 200  # the third request of the window
        limited = await c.get(url, headers=reader)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        metrics = (await c.get("/metrics")).text
        route = 'method="GET",route="/v1/funds/{fund_doc_no}/trail"'
        assert f'fundtrail_gateway_requests_total{{{route},status="200"}} 4.0' in metrics
        assert f'fundtrail_gateway_requests_total{{{route},status="429"}} 1.0' in metrics


async def test_trail_answers_503_when_postgresql_is_gone(
    settings_factory: Callable[..., GatewaySettings], auth: Callable[..., dict[str, str]]
) -> None:
    url = f"postgresql+psycopg://fundtrail@127.0.0.1:{free_port()}/fundtrail"
    async with running(create_app(settings_factory(database_url=url, db_pool_timeout_seconds=0.5))) as c:
        r = await c.get(_trail(), headers=auth("auditor"))
        assert r.status_code == 503 and r.headers["retry-after"]
        assert r.json()["type"] == "urn:fundtrail:problem:unavailable"


_SAME = ("etag", "cache-control", "link", "vary", "content-type", "content-length")


async def test_cached_answers_are_byte_identical_to_rendered_ones(
    log: Log, settings_factory: Callable[..., GatewaySettings], auth: Callable[..., dict[str, str]]
) -> None:
    cached_app = create_app(settings_factory(database_url=log.url))
    uncached_app = create_app(settings_factory(database_url=log.url, trail_cache_bytes=0))
    async with running(cached_app) as cached, running(uncached_app) as uncached:
        for headers in (auth("auditor"), auth("compliance", COUNTY)):
            rendered = await _pages(uncached, headers)
            first = await _pages(cached, headers)  # rendered, and kept where they may be
            again = await _pages(cached, headers)  # from memory (the fast path) where kept
            for one, two, three in zip(rendered, first, again, strict=True):
                assert one.content == two.content == three.content
                assert [one.headers.get(h) for h in _SAME] == [two.headers.get(h) for h in _SAME] == [
                    three.headers.get(h) for h in _SAME]
        runtime = cached_app.state.runtime
        assert len(uncached_app.state.runtime.page_cache) == 0
        kept = [runtime.page_cache.get((prefix, f"/v1/funds/{FUND}/trail", b"limit=2")) for prefix in (None, COUNTY)]
        # The county's first page declares the city's leaf it does not see; both scopes keep their own copy.
        county_first = orjson.loads(again[0].content)["items"][0]
        assert county_first["leaf_index"] == 1 and county_first["withheld_before"] == [0]
        assert all(k is not None and k.end is None for k in kept) and kept[0] != kept[1]


async def test_the_end_of_the_trail_is_kept_while_nothing_follows_it(
    log: Log, settings_factory: Callable[..., GatewaySettings], auth: Callable[..., dict[str, str]]
) -> None:
    app = create_app(settings_factory(database_url=log.url))
    async with running(app) as client:
        await _the_end_is_kept(client, app.state.runtime.page_cache, log, auth("auditor"))


async def _the_end_is_kept(client: httpx.AsyncClient, cache: Any, log: Log, headers: dict[str, str]) -> None:
    end = (await _pages(client, headers))[-1]
    key = (None, f"/v1/funds/{FUND}/trail", end.request.url.query)
    kept = cache.get(key)
    assert kept is not None and kept.end is not None and kept.end.last_seq == 6 and kept.body == end.content
    # Revalidation answers from memory; the page stays live (no-cache), so clients keep asking.
    r = await client.get(end.request.url, headers={**headers, "If-None-Match": end.headers["etag"]})
    assert r.status_code == 304 and r.headers["cache-control"] == LIVE and r.headers["etag"] == end.headers["etag"]
    assert cache.get(key) is kept
    # The trail goes on: the kept copy is dropped and the page rendered again, with the new leaf.
    log.append(7)
    r = await client.get(end.request.url, headers={**headers, "If-None-Match": end.headers["etag"]})
    assert r.status_code == 200 and [e["leaf_index"] for e in r.json()["items"]] == [6, 7]
    assert r.headers["etag"] != end.headers["etag"] and r.headers["cache-control"] == LIVE
    renewed = cache.get(key)
    assert renewed is not None and renewed.end is not None and renewed.end.last_seq == 7
