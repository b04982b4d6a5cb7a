"""Pure parts behind the console's endpoints: the county overview fold and the demo identities."""

from __future__ import annotations

from fundtrail_gateway.core.auth import REGIONAL_ROLES
from fundtrail_gateway.core.identities import DEMO_IDENTITIES, demo_identity
from fundtrail_gateway.core.overview import aggregate


def test_overview_folds_rows_per_county_and_month() -> None:
    rows = [
        ("440705", "2025-03", "finance", "high", "raised", 2, 500_00, 1),
        ("440705", "2025-03", "audit", "low", "rectified", 3, None, 0),
        ("440705", "2025-03", "finance", "high", "dismissed", 1, 100, 0),
        ("440781", "2025-03", "trading", "medium", "acknowledged", 4, 7, 2),
        ("440705", "2025-04", "finance", "critical", "raised", 1, 0, 0),
    ]
    cells = aggregate(rows)
    assert [(c.county, c.month) for c in cells] == [("440705", "2025-03"), ("440705", "2025-04"), ("440781", "2025-03")]
    xinhui = cells[0]
    assert (xinhui.total, xinhui.amount_fen, xinhui.overdue) == (6, 500_00 + 100, 1)
    assert xinhui.by_department == {"finance": 3, "audit": 3}
    assert xinhui.by_status == {"raised": 2, "rectified": 3, "dismissed": 1}
    assert (xinhui.closed, xinhui.rectified, xinhui.rectification_rate) == (4, 3, 0.75)
    body = xinhui.as_dict("江门市新会区")
    assert body["open"] == 2 and body["county_name"] == "江门市新会区"
    # Nothing closed yet: no rate rather than a rate of zero.
    assert cells[2].rectification_rate is None and cells[2].as_dict("台山市")["rectification_rate"] is None


def test_demo_identities_are_distinct_and_regional_roles_have_regions() -> None:
    subjects = [i.subject for i in DEMO_IDENTITIES]
    assert len(subjects) == len(set(subjects))
    assert all(i.region is not None for i in DEMO_IDENTITIES if i.role in REGIONAL_ROLES)
    assert demo_identity("demo-auditor") is not None and demo_identity("nobody") is None
    assert {i.role.value for i in DEMO_IDENTITIES} >= {"compliance", "auditor", "bureau"}
