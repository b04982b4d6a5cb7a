"""The topics fund-tracker uses: the registry's names, optionally under a namespace prefix.

The prefix (FUNDTRAIL_TRACKER_TOPIC_PREFIX, empty by default) lets tests, benchmarks and staging
share one broker without reading each other's records; the names themselves come only from
`fundtrail_schemas.topics`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fundtrail_schemas.topics import (
    CASES,
    DEAD_LETTERS,
    ENRICHED_EVENTS,
    RAW_EVENTS,
    TOPICS_BY_NAME,
    TRAIL_COSIGNATURES,
    VIOLATIONS,
    TopicSpec,
)


@dataclass(frozen=True)
class TrackerTopics:
    raw: str = RAW_EVENTS
    dead_letters: str = DEAD_LETTERS
    enriched: str = ENRICHED_EVENTS
    violations: str = VIOLATIONS
    cases: str = CASES
    cosignatures: str = TRAIL_COSIGNATURES
    prefix: str = ""

    @classmethod
    def with_prefix(cls, prefix: str = "") -> TrackerTopics:
        """The registry names under `prefix`."""
        return cls(
            raw=prefix + RAW_EVENTS,
            dead_letters=prefix + DEAD_LETTERS,
            enriched=prefix + ENRICHED_EVENTS,
            violations=prefix + VIOLATIONS,
            cases=prefix + CASES,
            cosignatures=prefix + TRAIL_COSIGNATURES,
            prefix=prefix,
        )

    def specs(self) -> list[TopicSpec]:
        """Registry specs of these topics, renamed (for `ensure_topics`)."""
        return [
            replace(TOPICS_BY_NAME[name], name=self.prefix + name)
            for name in (RAW_EVENTS, DEAD_LETTERS, ENRICHED_EVENTS, VIOLATIONS, CASES, TRAIL_COSIGNATURES)
        ]
