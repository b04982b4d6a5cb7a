"""The provenance check: an event on a region's raw topic must lie in that region."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fundtrail_schemas.decode import ReasonCode, Rejection
from fundtrail_schemas.examples import load_examples
from fundtrail_schemas.topics import RAW_EVENTS, raw_topic, raw_topic_region
from fundtrail_tracker.core.provenance import check_provenance
from fundtrail_tracker.core.validation import Valid, decode_message


def _valid(**changes: object) -> Valid:
    event = {**load_examples()["ProjectApproved"], **changes}
    result, _ = decode_message(json.dumps(event).encode(), now=datetime.now(UTC), max_future_skew=timedelta(days=1))
    assert isinstance(result, Valid), result
    return result


def test_an_event_of_the_topics_region_or_inside_it_passes() -> None:
    valid = _valid()
    region = valid.event.region_code
    assert check_provenance(valid, region) is valid
    assert check_provenance(valid, region[:6]) is valid  # a county's topic takes its towns' events


def test_an_event_of_another_region_is_rejected_for_provenance() -> None:
    valid = _valid()
    other = "440781" if not valid.event.region_code.startswith("440781") else "440705"
    rejection = check_provenance(valid, other)
    assert isinstance(rejection, Rejection)
    assert rejection.reason is ReasonCode.PROVENANCE
    assert other in rejection.message and valid.event.region_code in rejection.message


def test_the_unscoped_raw_topic_has_no_region_to_check() -> None:
    valid = _valid()
    assert raw_topic_region(RAW_EVENTS) is None
    assert check_provenance(valid, raw_topic_region(RAW_EVENTS)) is valid
    assert raw_topic_region("t1." + raw_topic("440705"), prefix="t1.") == "440705"
    assert raw_topic_region(raw_topic("440705") + "x") is None
