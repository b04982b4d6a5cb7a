"""Helper functions rule expressions may call, and the small time utilities the core shares."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fundtrail_schemas.labels import label

# Effective dates and day counts are Chinese calendar days.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# Asia/Shanghai has been UTC+8 without daylight saving since 1991-09-15: adding the offset is
# five times cheaper than a zone conversion (twice per event); earlier times go through the zone.
_FIXED_SINCE = datetime(1992, 1, 1, tzinfo=UTC)
_FIXED_OFFSET = timedelta(hours=8)


def parse_time(text: str) -> datetime:
    """An ISO-8601 timestamp (with offset) as aware UTC."""
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is UTC:  # "...Z", the usual form
        return ts
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone")
    return ts.astimezone(UTC)


def local_date(value: str | date | datetime) -> date:
    """The Asia/Shanghai calendar date of a timestamp, or the date itself."""
    if isinstance(value, datetime):
        if value.tzinfo is UTC and value >= _FIXED_SINCE:
            return (value + _FIXED_OFFSET).date()
        return value.astimezone(LOCAL_TZ).date()
    if isinstance(value, date):
        return value
    if len(value) == 10:
        return date.fromisoformat(value)
    return local_date(parse_time(value))


def days_between(start: Any, end: Any) -> int:
    """Whole calendar days from `start` to `end` (ISO dates or timestamps); negative when end is earlier."""
    return (local_date(end) - local_date(start)).days


# Bidder fields whose sharing points to collusion (catalogue no. 20), in the order they are named.
COLLUSION_FIELDS = ("legal_rep_id", "phone", "bank_account", "address")


def shared_pairs(bidders: Any, lang: str) -> list[str]:
    """Each pair of bidders sharing identifying fields, naming the fields, in `lang` ('zh' or 'en')."""
    rows = [b for b in bidders or () if isinstance(b, dict)]
    out: list[str] = []
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            first, second = sorted((str(a.get("vendor_id")), str(b.get("vendor_id"))))
            same = [label(f, lang) for f in COLLUSION_FIELDS if a.get(f) is not None and a.get(f) == b.get(f)]
            if not same or first == second:
                continue
            if lang == "zh":
                out.append(f"{first} 与 {second} 共用{'、'.join(same)}")
            else:
                out.append(f"{first} and {second} share the {', '.join(same)}")
    return sorted(out)


@functools.lru_cache(maxsize=4096)  # the same few dates (a contract's, a project's) are asked again and again
def _instant(text: str) -> datetime:
    return parse_time(text)


def on_or_before(value: Any, at: Any) -> bool:
    """True when timestamp `value` is set and not later than `at`: the fact it dates existed by then."""
    if value is None or at is None:
        return False
    a = _instant(value) if isinstance(value, str) else value
    b = _instant(at) if isinstance(at, str) else at
    return bool(a <= b)


def earlier(value: Any, at: Any) -> bool:
    """True when timestamp `value` is set and earlier than `at`."""
    if value is None or at is None:
        return False
    a = _instant(value) if isinstance(value, str) else value
    b = _instant(at) if isinstance(at, str) else at
    return bool(a < b)


HELPERS: dict[str, Callable[..., Any]] = {
    "days_between": days_between, "on_or_before": on_or_before, "earlier": earlier, "shared_pairs": shared_pairs,
}
HELPER_NAMES = frozenset(HELPERS)
