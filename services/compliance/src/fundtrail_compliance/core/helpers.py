"""Helper functions rule expressions may call, and the small time utilities the core shares."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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


HELPERS: dict[str, Callable[..., Any]] = {"days_between": days_between}
HELPER_NAMES = frozenset(HELPERS)
