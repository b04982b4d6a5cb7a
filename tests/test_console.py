"""The web console in a real browser (Debian's Chromium driven by Playwright) against the full stack
with the demo loaded: real Kafka, real PostgreSQL, the three services as processes, the gateway
serving the production build of console/.

Screenshots of every page go to out/console-screenshots/ (git-ignored); docs/console.md shows one each.

Assertions on the page are Playwright's `expect(...)`, which retries until its timeout: a check made the
instant after an action reads a page that may not have rendered yet (CI once failed on exactly that).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from fundtrail_devstack.lag import wait_for_zero_lag
from fundtrail_devstack.otlp_sink import OtlpSink
from fundtrail_devstack.run import write_demo
from fundtrail_devstack.stack import REPO_ROOT, Stack, publish_file
from fundtrail_devstack.testing import PostgresServer, dedicated_test_kafka
from fundtrail_runtime.db import sync_engine

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SEED, SIZE = 11, 0.25
CHROMIUM = os.environ.get("FUNDTRAIL_TEST_CHROMIUM", "/usr/bin/chromium")
DIST = REPO_ROOT / "console" / "dist" / "index.html"
SHOTS = REPO_ROOT / "out" / "console-screenshots"
XINHUI = "440705"
AXE = REPO_ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
SEEN = 30_000  # ms an `expect` waits for the page to show what the data already holds


def _rows(stack: Stack, sql: str, **params: Any) -> list[Any]:
    engine = sync_engine(stack.database_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def _tamper(stack: Stack, sql: str, **params: Any) -> None:
    """Change the log's tables as an insider with superuser rights would: past the append-only triggers
    (migration 0003), which session_replication_role = replica skips for this transaction only. The
    statistics are flushed so that the gateway's page cache sees the change at its next probe."""
    engine = sync_engine(stack.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text(sql), params)
            conn.execute(text("SELECT pg_stat_force_next_flush()"))
    finally:
        engine.dispose()


def _wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def console_stack(
    pg_node: PostgresServer, otlp_sink: OtlpSink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The three services on a broker and database of this module's own: these tests publish events and
    take case actions, which the other end-to-end tests must not see."""
    assert DIST.is_file(), f"{DIST} is missing: `make install` builds the console (npm ci && npm run build)"
    with dedicated_test_kafka(tmp_path_factory.mktemp("kafka-console")) as bootstrap:
        stack = Stack(
            home=Path(tmp_path_factory.mktemp("console-stack")),
            bootstrap=bootstrap,
            database_url=pg_node.create_database(f"console_{uuid.uuid4().hex[:12]}"),
            otlp_endpoint=otlp_sink.endpoint,
            group_suffix=f"-console-{uuid.uuid4().hex[:6]}",
        )
        stack.prepare()
        stack.start()
        try:
            stack.wait_ready(timeout=180)
            yield stack
        finally:
            codes = stack.stop()
            crashed = {n: c for n, c in codes.items() if c not in (0, -15, None)}
            assert not crashed, f"services exited abnormally: {crashed}"


@pytest.fixture(scope="module")
def demo_stack(console_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """The stack with the demo year recorded and its violations raised."""
    work = Path(tmp_path_factory.mktemp("console-demo"))
    path = work / "demo.jsonl"
    total, expected = write_demo(path, SEED, SIZE)
    lines = path.read_text(encoding="utf-8").splitlines()
    ref_types = ('"event_type":"VendorRegistered"', '"event_type":"VendorDebarred"', '"event_type":"RelationDeclared"')
    reference = [line for line in lines if any(t in line for t in ref_types)]
    (work / "reference.jsonl").write_text("\n".join(reference) + "\n", encoding="utf-8")
    rest = set(reference)
    (work / "transactions.jsonl").write_text("\n".join(x for x in lines if x not in rest) + "\n", encoding="utf-8")
    for name in ("reference.jsonl", "transactions.jsonl"):
        result = publish_file(work / name, console_stack.bootstrap, work / "publisher")
        assert result.returncode == 0, result.stdout + result.stderr
        wait_for_zero_lag(console_stack.bootstrap, timeout=300)
    _wait_until(lambda: _rows(console_stack, "select count(*) from processed_event")[0][0] >= total, 300,
                "demo recorded")
    _wait_until(lambda: _rows(console_stack, "select count(*) from violation")[0][0] >= len(expected), 180,
                "demo violations raised")
    # Late verdicts (timers, windows) settle before the pages are compared with the database.
    wait_for_zero_lag(console_stack.bootstrap, timeout=300)
    return console_stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make install` installs Debian's chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def open_as(browser: Any, demo_stack: Stack) -> Iterator[Any]:
    """open_as(subject, path) -> a page signed in through the role picker, at `path`."""
    contexts: list[Any] = []

    def make(subject: str, path: str = "") -> Any:
        ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai", accept_downloads=True)
        contexts.append(ctx)
        page = ctx.new_page()
        page.goto(f"{demo_stack.console_url}signin")
        page.locator(f'button[data-subject="{subject}"]').click()
        page.wait_for_selector('[data-testid="who"]')
        if path:
            page.goto(f"{demo_stack.console_url}{path}")
        return page

    yield make
    for ctx in contexts:
        ctx.close()


def shot(page: Any, name: str, height: int | None = None) -> None:
    """Save the viewport, or the top `height` pixels of the whole page."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    clip = {"x": 0, "y": 0, "width": 1280, "height": height} if height else None
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=height is not None, clip=clip)


def _department_counts(page: Any) -> dict[str, int]:
    tags = page.locator('[data-testid="department-counts"] [data-department]')
    return {t.get_attribute("data-department"): int(t.get_attribute("data-count")) for t in tags.all()}


def test_inbox_lists_the_demo_violations_per_department(open_as: Any, demo_stack: Stack) -> None:
    page = open_as("demo-auditor", "inbox")
    page.wait_for_selector('[data-testid="inbox-table"] tbody tr[data-row]')
    in_db = dict(_rows(demo_stack, "select department, count(*) from violation group by department"))
    assert len(in_db) >= 5
    _wait_until(lambda: {d: n for d, n in _department_counts(page).items() if n} == in_db, 30,
                f"counts per department {in_db}")
    expect(page.locator('[data-testid="total"]')).to_have_text(str(sum(in_db.values())), timeout=SEEN)
    # Filtering on one department lists only its violations, newest first, 50 to a page.
    finance = in_db.get("finance", 0)
    assert finance > 0
    page.locator('[data-testid="department-counts"] [data-department="finance"]').click()
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=inbox-table] tbody "
                           "[data-department]')].every(e => e.dataset.department === 'finance')")
    rows = page.locator('[data-testid="inbox-table"] tbody tr[data-row]')
    expect(rows).to_have_count(min(finance, 50), timeout=SEEN)
    expect_live(page)
    shot(page, "inbox")


def expect_live(page: Any) -> None:
    page.wait_for_selector('[data-testid="live"][data-live="true"]', timeout=30_000)


def test_a_new_violation_appears_live_with_a_marker(open_as: Any, demo_stack: Stack, tmp_path: Path) -> None:
    page = open_as("demo-auditor", "inbox")
    page.wait_for_selector('[data-testid="inbox-table"] tbody tr[data-row]')
    expect_live(page)
    expect(page.locator('[data-testid="new-marker"]')).to_have_count(0)
    # A bureau publishes a payment to a personal account above the limit (rule 8) while the page is open.
    template = _rows(demo_stack, "select payload::text from processed_event where event_type = 'PaymentDisbursed' "
                     "and region_code like :p order by sequence limit 1", p=f"{XINHUI}%")[0][0]
    run = uuid.uuid4().hex[:8]
    event = {**json.loads(template), "event_id": str(uuid.uuid4()), "payment_id": f"ZF-LIVE-{run}",
             "invoice_no": f"FP-LIVE-{run}", "account_kind": "personal", "payee_account": f"6217{run}",
             "amount_fen": 8_800_000}
    path = tmp_path / "live.jsonl"
    path.write_text(json.dumps(event, ensure_ascii=False) + "\n", encoding="utf-8")
    result = publish_file(path, demo_stack.bootstrap, tmp_path / "publisher")
    assert result.returncode == 0, result.stdout + result.stderr
    expect(page.locator('[data-testid="new-marker"]').first).to_be_visible(timeout=120_000)
    # The count shows with the marker (same event); it once zoomed in from zero width, which an instant
    # is_visible() caught on a loaded machine. expect() waits for it instead, and checks what it says.
    expect(page.locator('[data-testid="new-count"]')).to_be_visible(timeout=SEEN)
    shot(page, "inbox-live")


def test_a_county_user_sees_only_its_county(open_as: Any, demo_stack: Stack) -> None:
    page = open_as("demo-compliance-440705", "inbox")
    page.wait_for_selector('[data-testid="inbox-table"] tbody tr[data-row]')
    in_db = _rows(demo_stack, "select count(*) from violation where region_code like :p", p=f"{XINHUI}%")[0][0]
    assert in_db > 0
    expect(page.locator('[data-testid="total"]')).to_have_text(str(in_db), timeout=SEEN)
    seen: list[str] = []
    while True:
        regions = page.locator('[data-testid="inbox-table"] [data-region]')
        seen += [r.get_attribute("data-region") for r in regions.all()]
        nxt = page.locator('[data-testid="next"]')
        if nxt.is_disabled():
            break
        number = page.locator('[data-testid="page-no"]').inner_text()
        nxt.click()
        page.wait_for_function(f"() => document.querySelector('[data-testid=page-no]').innerText !== '{number}'")
    assert len(seen) == in_db
    assert all(code.startswith(XINHUI) for code in seen)


def test_a_case_action_reaches_compliance_and_comes_back_in_the_timeline(open_as: Any, demo_stack: Stack) -> None:
    vid = _rows(demo_stack, "select violation_id::text from violation where region_code like :p and status = 'raised' "
                "order by raised_at limit 1", p=f"{XINHUI}%")[0][0]
    page = open_as("demo-compliance-440705", f"violations/{vid}")
    page.wait_for_selector('[data-testid="explanation-zh"]')
    expect(page.locator('[data-testid="legal-basis"]')).to_have_text(re.compile(r"\S"), timeout=SEEN)
    expect(page.locator('[data-testid="timeline"] [data-step]')).to_have_count(0)
    page.locator('button[data-action="acknowledge"]').click()
    page.locator('textarea[data-testid="note"]').fill("已收到，正在核查（浏览器测试）")
    page.locator('[data-testid="submit-action"]').click()
    # Gateway → fundtrail.cases (Kafka) → compliance records it → the page's timeline shows it.
    page.wait_for_selector('[data-testid="timeline"] [data-step]', timeout=120_000)
    page.wait_for_function("() => document.querySelector('[data-testid=status]').innerText === '已确认'",
                           timeout=60_000)
    expect(page.locator('[data-testid="timeline"]')).to_contain_text("浏览器测试", timeout=SEEN)
    stored = _rows(demo_stack, "select action, actor from case_action where violation_id = cast(:v as uuid)", v=vid)
    assert stored and stored[0][1] == "demo-compliance-440705"
    shot(page, "violation")


def test_bulk_acknowledge_from_the_inbox(open_as: Any, demo_stack: Stack) -> None:
    page = open_as("demo-compliance-440705", "inbox")
    page.wait_for_selector('[data-testid="inbox-table"] tbody tr[data-row]')
    raised = page.locator('[data-testid="inbox-table"] tbody tr[data-row]', has_text="待处理")
    expect(raised.nth(1)).to_be_visible(timeout=SEEN)
    ids = [raised.nth(i).locator("input[type=checkbox]").get_attribute("aria-label") for i in range(2)]
    # By id: once a row is checked, `raised` would still find it, but the ids name the rows for good.
    for vid in ids:
        page.locator(f'input[type=checkbox][aria-label="{vid}"]').check()
    page.locator('[data-testid="bulk-ack"]').click()
    page.wait_for_selector(".el-message--success", timeout=60_000)

    def recorded() -> bool:
        rows = _rows(demo_stack, "select violation_id::text from case_action where violation_id::text = any(:ids)",
                     ids=ids)
        return {r[0] for r in rows} == set(ids)

    _wait_until(recorded, 120, "both acknowledgements recorded by compliance")
    statuses = _rows(demo_stack, "select status from violation where violation_id::text = any(:ids)", ids=ids)
    assert {s[0] for s in statuses} == {"acknowledged"}


def _demo_fund(stack: Stack) -> str:
    return _rows(stack, "select fund_doc_no from trail_entry where fund_doc_no is not null group by fund_doc_no "
                 "order by count(*) desc limit 1")[0][0]


def _marks(page: Any) -> dict[int, str]:
    entries = page.locator('[data-testid="trail"] [data-leaf]')
    return {int(e.get_attribute("data-leaf")): e.locator('[data-testid="verify-mark"]').get_attribute("data-state")
            for e in entries.all()}


def _settled(page: Any) -> dict[int, str]:
    page.wait_for_selector('[data-testid="trail"] [data-leaf]', timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('[data-testid=verify-mark][data-state=wait]').length === 0",
                           timeout=120_000)
    return _marks(page)


def test_every_verified_mark_of_a_demo_fund_is_green_and_an_altered_leaf_turns_red(
    open_as: Any, demo_stack: Stack
) -> None:
    fund = _demo_fund(demo_stack)
    page = open_as("demo-auditor", f"funds/{quote(fund, safe='')}")
    marks = _settled(page)
    assert len(marks) >= 5 and set(marks.values()) == {"ok"}, marks
    expect(page.locator('[data-testid="sankey"] svg')).to_have_count(1, timeout=SEEN)
    expect(page.locator('[data-testid="verify-reason"]')).to_have_count(0)
    shot(page, "fund", height=1500)

    # Alter one leaf's stored bytes behind the gateway's back (this module's own database): the first
    # quote becomes an apostrophe, so the bytes neither hash to the log's leaf nor parse as a leaf.
    leaf = sorted(marks)[len(marks) // 2]
    original = bytes(_rows(demo_stack, "select leaf_data from trail_entry where seq = :s", s=leaf)[0][0])
    tampered = original.replace(b'"', b"'", 1)
    assert tampered != original
    _tamper(demo_stack, "update trail_entry set leaf_data = :d where seq = :s", d=tampered, s=leaf)
    try:
        # The gateway drops cached pages when its probe sees the change (at most once a few seconds):
        # reload until the page shows the altered entry red.
        after: dict[int, str] = {}

        def red() -> bool:
            nonlocal after
            page.reload()
            after = _settled(page)
            return after.get(leaf) == "bad"

        _wait_until(red, 120, f"leaf {leaf} marked red after its bytes were altered")
        assert after.keys() == marks.keys()
        assert {k: v for k, v in after.items() if k != leaf} == {k: "ok" for k in after if k != leaf}
        entry = page.locator(f'[data-testid="trail"] [data-leaf="{leaf}"]')
        mark = entry.locator('[data-testid="verify-mark"]')
        expect(mark).to_have_css("color", "rgb(220, 38, 38)")
        # The reason is on the page, not only in a tooltip: the browser's failed check and the gateway's findings.
        reason = entry.locator('[data-testid="verify-reason"]')
        expect(reason).to_contain_text("inclusion.proof")
        expect(reason).to_contain_text("叶子数据无法解析")
        expect(page.locator('[data-testid="verify-reason"]')).to_have_count(1)
        entry.scroll_into_view_if_needed()
        shot(page, "fund-tampered")
    finally:
        _tamper(demo_stack, "update trail_entry set leaf_data = :d where seq = :s", d=original, s=leaf)


def test_an_import_with_a_broken_row_shows_that_rows_error(open_as: Any, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["event_type", "source_record_key", "occurred_at", "source_bureau", "region_code", "fund_doc_no",
                "transfer_id", "amount_yuan", "to_level", "to_region_code"])
    w.writerow(["FundTransferred", f"{run}-1", "2026-03-07 09:30", "440705-CZJ", "440705", f"F-{run}", f"T-{run}-1",
                "1000.50", "town", "440705101"])
    w.writerow(["FundTransferred", f"{run}-2", "2026-03-08 09:30", "440705-CZJ", "440705", f"F-{run}", f"T-{run}-2",
                "12.345", "town", "440705101"])
    path = tmp_path / "transfers.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    page = open_as("demo-bureau-440705", "import")
    page.locator('[data-testid="import-file"]').set_input_files(str(path))
    page.locator('[data-testid="dry-run"]').click()
    rows = page.locator('[data-testid="row-errors"] .el-table__row')
    expect(rows).to_have_count(1, timeout=60_000)
    cells = rows.first.locator("td")
    expect(cells.nth(0)).to_have_text("3")
    expect(cells.nth(1)).to_contain_text("amount")
    expect(page.locator('[data-testid="accepted"]')).to_have_text("1")
    expect(page.locator('[data-testid="publish"]')).to_be_disabled()
    shot(page, "import")


def test_overview_exports_and_monthly_report(open_as: Any, demo_stack: Stack) -> None:
    page = open_as("demo-auditor", "overview")
    page.wait_for_selector('[data-testid="overview-table"] .el-table__row')
    expect(page.locator('[data-testid="county-grid"] [data-county]')).to_have_count(7, timeout=SEEN)
    page.wait_for_timeout(500)  # let the charts finish their entry animation before the picture
    shot(page, "overview")

    page.goto(f"{demo_stack.console_url}exports")
    with page.expect_download() as download:
        page.locator('[data-testid="export-csv"]').click()
    body = Path(download.value.path()).read_text(encoding="utf-8-sig")
    in_db = _rows(demo_stack, "select count(*) from violation")[0][0]
    assert len(list(csv.reader(io.StringIO(body)))) == in_db + 1
    shot(page, "exports")

    county, month = _rows(demo_stack, "select substr(region_code, 1, 6), to_char(occurred_at at time zone "
                          "'Asia/Shanghai', 'YYYY-MM') from violation group by 1, 2 order by count(*) desc limit 1")[0]
    page.goto(f"{demo_stack.console_url}report/{county}/{month}")
    expect(page.locator('[data-testid="report-title"]')).to_contain_text(month, timeout=SEEN)
    shot(page, "report")


def _axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.x A and AA rules)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => {
        const r = await window.axe.run(document, { runOnly: { type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }, resultTypes: ['violations'] })
        return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 4).map((n) => n.target.join(' ') + ' :: ' + n.failureSummary) }))
    }""")
    return [v for v in found if v["impact"] in ("serious", "critical")]


def test_the_main_pages_have_no_serious_accessibility_violations(open_as: Any, demo_stack: Stack) -> None:
    """axe-core (console/node_modules, pinned in console/package.json) over each main page once it has loaded."""
    assert AXE.is_file(), f"{AXE} is missing: `make install` runs npm ci in console/"
    vid = _rows(demo_stack, "select violation_id::text from violation order by raised_at limit 1")[0][0]
    fund = _demo_fund(demo_stack)
    pages = [
        ("demo-auditor", "inbox", '[data-testid="inbox-table"] tbody tr[data-row]'),
        ("demo-compliance-440705", "inbox", '[data-testid="inbox-table"] tbody tr[data-row]'),
        ("demo-auditor", f"violations/{vid}", '[data-testid="explanation-zh"]'),
        ("demo-auditor", f"funds/{quote(fund, safe='')}", '[data-testid="trail"] [data-leaf]'),
        ("demo-auditor", "overview", '[data-testid="overview-table"] .el-table__row'),
        ("demo-bureau-440705", "import", '[data-testid="import-file"]'),
    ]
    report: dict[str, list[dict[str, Any]]] = {}
    for subject, path, ready in pages:
        page = open_as(subject, path)
        page.wait_for_selector(ready, timeout=60_000)
        if path.startswith("funds/"):
            _settled(page)
        report[f"{subject} {path}"] = _axe(page)
    assert not any(report.values()), json.dumps(report, ensure_ascii=False, indent=1)


def test_english_switch_and_keyboard_sign_in(browser: Any, demo_stack: Stack) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = ctx.new_page()
        page.goto(f"{demo_stack.console_url}signin")
        page.wait_for_selector('button[data-subject="demo-auditor"]')
        shot(page, "signin")
        page.get_by_role("button", name="English").click()
        expect(page.locator("h1")).to_have_text("Sign in")
        page.locator('button[data-subject="demo-auditor"]').focus()
        page.keyboard.press("Enter")
        page.wait_for_selector('[data-testid="inbox-table"] tbody tr[data-row]')
        expect(page.locator("h1")).to_have_text("Violation inbox", timeout=SEEN)
        shot(page, "inbox-en")
    finally:
        ctx.close()
