"""Create the registry's topics idempotently (services at start-up, `fundtrail topics`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import ClusterAuthorizationFailedError, TopicAlreadyExistsError, TopicAuthorizationFailedError

from fundtrail_schemas.kafka_security import KafkaSecurity, client_security
from fundtrail_schemas.topics import TopicSpec, configured_topics

log = logging.getLogger(__name__)


def ensure_topics(
    bootstrap: str, specs: Iterable[TopicSpec] | None = None, *, visible_within_s: float = 30.0,
    security: KafkaSecurity | None = None,
) -> list[str]:
    """Create missing topics (by default the registry's, with FUNDTRAIL_TOPICS_ retention overrides);
    return the names created. Existing topics keep their configuration.

    On a broker with ACLs a service sees only the topics it may use and may create none: the others
    are the operator's to create (`fundtrail topics` with the operator's credentials), so a topic
    it is not authorized for is skipped, not an error.

    Returns only once every topic in `specs` appears in the broker's metadata: a KRaft broker
    publishes a new topic to its metadata cache a moment after CreateTopics answers, and a
    consumer or producer started in that gap sees UNKNOWN_TOPIC_OR_PARTITION.
    """
    specs = configured_topics() if specs is None else specs
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fundtrail-admin",
                             **client_security("kafka-python", security))
    try:
        existing = set(admin.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        created: list[str] = []
        visible: set[str] = set()
        for spec in wanted:
            try:
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, 1, topic_configs=spec.topic_config())]
                )
                created.append(spec.name)
                visible.add(spec.name)
            except TopicAlreadyExistsError:
                # Another service created it between list and create.
                log.debug("topic %s already exists", spec.name)
                visible.add(spec.name)
            except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError):
                log.debug("not authorized to create topic %s; the operator creates it", spec.name)
        if visible:
            _wait_visible(admin, visible, visible_within_s)
        return created
    finally:
        admin.close()


def _wait_visible(admin: KafkaAdminClient, names: set[str], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while missing := names - set(admin.list_topics()):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"topics not in the broker's metadata after {within_s:g} s: {sorted(missing)}")
        time.sleep(0.1)
