"""Provenance: an event must come from a topic its region may be published on.

A bureau's Kafka principal may write only its own region's raw topics
(`fundtrail.events.raw.<region code>`, a prefixed ACL: a county's covers its towns). The broker
checks who writes where; this checks that what was written there is for that region, so the
principal's authority reaches the trail. The unscoped raw topic (`fundtrail.events.raw`) carries
no region: only the gateway, which checks a bureau's region itself, and operators write there.
"""

from __future__ import annotations

from fundtrail_schemas.decode import FieldError, ReasonCode, Rejection
from fundtrail_schemas.types import region_within

from .validation import Valid


def check_provenance(valid: Valid, topic_region: str | None) -> Valid | Rejection:
    """`valid` if its region lies in the topic's region (or the topic has none), else a rejection."""
    if topic_region is None:
        return valid
    region = valid.event.region_code
    if region_within(region, topic_region):  # as the gateway judges a bureau publishing over HTTP
        return valid
    return Rejection(
        ReasonCode.PROVENANCE,
        f"an event of region {region} was published on the raw topic of region {topic_region}",
        (FieldError("region_code", f"not inside {topic_region}, the region of the topic it came from"),),
    )
