"""Create the registry's topics idempotently (services at start-up, `fundtrail topics`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from .topics import TOPICS, TopicSpec

log = logging.getLogger(__name__)


def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec] = TOPICS) -> list[str]:
    """Create missing topics; return the names created."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fundtrail-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        created = []
        for spec in wanted:
            try:
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, 1, topic_configs=spec.topic_config())]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                # Another service created it between list and create.
                log.debug("topic %s already exists", spec.name)
        return created
    finally:
        admin.close()
