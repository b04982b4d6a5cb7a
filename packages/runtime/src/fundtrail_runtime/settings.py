"""Settings building blocks shared by the services (each service has its own settings class)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_DATABASE_URL = "postgresql+psycopg://fundtrail@127.0.0.1:55432/fundtrail"


class CommonSettings(BaseSettings):
    """Kafka and PostgreSQL locations; read from unprefixed shared names or the service prefix."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
        description="host:port[,host:port] of the Kafka brokers",
    )
    database_url: str = Field(
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host:5432/fundtrail",
    )
