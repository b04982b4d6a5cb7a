"""The console's benchmark: first load (Navigation Timing in Debian's Chromium) and inbox paging over
10,000 violations, against a gateway process on a fresh database.

Violations are written straight into the `violation` table (the gateway only reads it): what is measured
is the console and the gateway's list query, not the rules.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import text

from .stack import REPO_ROOT, Stack
from .testing import remove_tree, world_traversable_tmpdir

CHROMIUM = os.environ.get("FUNDTRAIL_TEST_CHROMIUM", "/usr/bin/chromium")
COUNTIES = ("440703", "440704", "440705", "440781", "440783", "440784", "440785")
DEPARTMENTS = ("inspection", "finance", "agriculture", "audit", "development", "housing", "natural_resources",
               "trading", "discipline")
SEVERITIES = ("low", "medium", "high", "critical")
FIRST_LOAD_TARGET_MS = 2000
PAGE_TARGET_MS = 300

_INSERT = text("""
insert into violation (violation_id, rule_id, rule_version, department, severity, status, triggering_event_id,
  fund_doc_no, project_id, region_code, occurred_at, raised_at, status_changed_at, explanation_zh, explanation_en,
  legal_basis, evidence, payload, trace_id)
select gen_random_uuid(), (cast(:d as text[]))[1 + i % 9] || '.bench_rule', 1, (cast(:d as text[]))[1 + i % 9],
  (cast(:s as text[]))[1 + i % 4], 'raised', gen_random_uuid(), 'BENCH-' || (i % 200), null,
  (cast(:c as text[]))[1 + i % 7] || lpad((100 + i % 12)::text, 3, '0'),
  now() - make_interval(mins => i), now() - make_interval(mins => i), now() - make_interval(mins => i),
  '基准测试违规 ' || i || '：支付金额超过合同金额。', 'Benchmark violation ' || i || ': paid more than the contract.',
  '《财政部关于加强乡村振兴资金管理的通知》', jsonb_build_object('event_ids', '[]'::jsonb,
  'values', jsonb_build_object('amount', 100000 + i)), '{}'::jsonb, null
from generate_series(1, :n) as i
""")


def seed_violations(database_url: str, n: int) -> None:
    """`n` raised violations over the seven counties, nine departments and four severities."""
    from fundtrail_runtime.db import sync_engine

    engine = sync_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(_INSERT, {"d": list(DEPARTMENTS), "s": list(SEVERITIES), "c": list(COUNTIES), "n": n})
    finally:
        engine.dispose()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _api_pages(stack: Stack, token: str, pages: int) -> list[float]:
    times: list[float] = []
    cursor: str | None = None
    for _ in range(pages):
        url = f"{stack.gateway_url}/v1/violations?limit=50" + (f"&cursor={cursor}" if cursor else "")
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = json.loads(resp.read())
        times.append((time.perf_counter() - t0) * 1000)
        cursor = body["next_cursor"]
    return times


def measure(stack: Stack, pages: int = 20, loads: int = 5) -> dict[str, Any]:
    """First load of the console (cold cache, each in a fresh browser context) and inbox page times."""
    from playwright.sync_api import sync_playwright

    first_loads: list[dict[str, float]] = []
    user_timing: list[float] = []
    baseline_ms: list[float] = []
    page_ms: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for _ in range(loads):
                # Baseline: the same browser loading the gateway's smallest answer (one JSON object).
                ctx = browser.new_context()
                page = ctx.new_page()
                page.goto(f"{stack.gateway_url}/health")
                baseline_ms.append(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
                ctx.close()
                ctx = browser.new_context(viewport={"width": 1280, "height": 800})
                page = ctx.new_page()
                page.goto(f"{stack.console_url}signin")
                page.wait_for_selector('button[data-subject="demo-auditor"]')
                rendered = page.evaluate("performance.now()")
                nav = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
                timing = json.loads(nav)
                first_loads.append({
                    "dom_content_loaded_ms": timing["domContentLoadedEventEnd"],
                    "load_ms": timing["loadEventEnd"],
                    "rendered_ms": rendered,
                    "transfer_kb": sum(r["transferSize"] for r in page.evaluate(
                        "performance.getEntriesByType('resource').map(r => ({transferSize: r.transferSize}))"))
                    / 1024 + timing["transferSize"] / 1024,
                })
                ctx.close()
            ctx = browser.new_context(viewport={"width": 1280, "height": 800})
            page = ctx.new_page()
            page.goto(f"{stack.console_url}signin")
            page.locator('button[data-subject="demo-auditor"]').click()
            page.wait_for_selector('[data-testid="inbox-table"] tbody tr[data-row]')
            for n in range(2, pages + 2):
                t0 = time.perf_counter()
                page.locator('[data-testid="next"]').click()
                page.wait_for_function(f"() => document.querySelector('[data-testid=page-no]').innerText === '{n}'")
                page_ms.append((time.perf_counter() - t0) * 1000)
            user_timing = page.evaluate("performance.getEntriesByName('inbox:page').map(m => m.duration)")
            ctx.close()
        finally:
            browser.close()
    api_ms = _api_pages(stack, stack.token("auditor", "bench-auditor"), pages)
    rendered = [f["rendered_ms"] for f in first_loads]
    load = [f["load_ms"] for f in first_loads]
    return {
        "load average (1 min) at the end, cores": f"{os.getloadavg()[0]:.1f} on {os.cpu_count()}",
        "baseline: /health in a fresh context, loadEventEnd, median (ms)": statistics.median(baseline_ms),
        "first load, Navigation Timing loadEventEnd, median (ms)": statistics.median(load),
        "first load, sign-in page rendered, median (ms)": statistics.median(rendered),
        "first load, sign-in page rendered, worst of runs (ms)": max(rendered),
        "first load bytes transferred (KiB)": round(statistics.median(f["transfer_kb"] for f in first_loads), 1),
        "first load target (ms)": FIRST_LOAD_TARGET_MS,
        "first load target met": max(rendered) <= FIRST_LOAD_TARGET_MS,
        "inbox page, User Timing in the page (click → rows in the DOM), p50 (ms)": statistics.median(user_timing),
        "inbox page, User Timing, p95 (ms)": _pct(user_timing, 0.95),
        "inbox page as the test driver sees it (Playwright click → page number shown), p50 (ms)":
            statistics.median(page_ms),
        "inbox page, API alone (GET /v1/violations, 50 rows), p50 (ms)": statistics.median(api_ms),
        "inbox page target (ms)": PAGE_TARGET_MS,
        "inbox page target met (User Timing p95)": _pct(user_timing, 0.95) <= PAGE_TARGET_MS,
        "violations in the database": 10_000,
        "pages measured": len(page_ms),
        "cold loads measured": len(first_loads),
    }


def run(bootstrap: str, database_url: str, n_violations: int = 10_000) -> dict[str, Any]:
    """Seed the violations, start the gateway alone, measure."""
    if not (REPO_ROOT / "console" / "dist" / "index.html").is_file():
        raise RuntimeError("console/dist is missing: make install builds the console")
    seed_violations(database_url, n_violations)
    home = world_traversable_tmpdir("fundtrail-bench-console-")
    stack = Stack(home=Path(home), bootstrap=bootstrap, database_url=database_url, group_suffix="-bench-console")
    try:
        stack.prepare()
        stack.start(("gateway",))
        stack.wait_ready(timeout=180)
        return measure(stack)
    finally:
        stack.stop()
        remove_tree(home)
