"""Settings of `fundtrail publish` and the publisher SDK (env prefix FUNDTRAIL_PUBLISH_).

The publisher runs on a finance bureau's machine, which has Kafka access but no database and no
signing key, so it must not require them. The FUNDTRAIL_TRACKER_* names of these settings (from when
the publisher shipped inside fund-tracker) are still read.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fundtrail_schemas.topics import RAW_EVENTS, raw_topic


def _env(name: str) -> AliasChoices:
    return AliasChoices(f"FUNDTRAIL_PUBLISH_{name.upper()}", f"FUNDTRAIL_TRACKER_{name.upper()}", name)


class PublisherSettings(BaseSettings):
    """Where to publish and where the publish journal lives."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
        description="host:port[,host:port] of the Kafka brokers",
    )
    state_dir: Path = Field(
        Path.home() / ".local" / "state" / "fundtrail", validation_alias=_env("state_dir"),
        description="Where the publish journal (published event ids and content hashes) lives",
    )
    client_id: str = Field("fundtrail-publisher", validation_alias=_env("client_id"),
                           description="Kafka client id of the publisher")
    topic_prefix: str = Field("", validation_alias=_env("topic_prefix"),
                              description="Namespace prepended to the raw topic's name; usually empty")
    publish_region: str | None = Field(
        None, pattern=r"^[0-9]{6}([0-9]{3})?$", validation_alias=_env("publish_region"),
        description="Publish on this region's raw topic (fundtrail.events.raw.<code>), the one a bureau's Kafka "
                    "user may write; unset: the unscoped raw topic (gateway, operators)",
    )

    def topic(self) -> str:
        """The raw topic this publisher writes."""
        name = raw_topic(self.publish_region) if self.publish_region else RAW_EVENTS
        return self.topic_prefix + name
