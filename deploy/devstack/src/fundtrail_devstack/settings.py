"""Devstack settings (env prefix ``FUNDTRAIL_DEVSTACK_``), e.g. ``FUNDTRAIL_DEVSTACK_KAFKA_PORT=19092``."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from ._util import DEFAULT_HOME

__all__ = ["DevstackSettings"]


class DevstackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FUNDTRAIL_DEVSTACK_", extra="ignore")

    home: Path = DEFAULT_HOME
    """Root of the local state; Kafka uses ``home/kafka``, PostgreSQL ``home/postgres``."""
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    pg_port: int = 55432
    pg_database: str = "fundtrail"
    pg_os_user: str = "fundtrail"
    """Unprivileged system account PostgreSQL runs as when the devstack runs as root."""

    @property
    def kafka_home(self) -> Path:
        return self.home / "kafka"

    @property
    def pg_home(self) -> Path:
        return self.home / "postgres"
