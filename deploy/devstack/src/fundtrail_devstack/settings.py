"""Devstack settings (env prefix ``FUNDTRAIL_DEVSTACK_``), e.g. ``FUNDTRAIL_DEVSTACK_KAFKA_PORT=19092``."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from ._util import DEFAULT_HOME
from .kafka import JVM_OPTIONS
from .kafka_auth import BrokerSecurity

__all__ = ["DevstackSettings"]


class DevstackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FUNDTRAIL_DEVSTACK_", extra="ignore")

    home: Path = DEFAULT_HOME
    """Root of the local state; Kafka uses ``home/kafka``, PostgreSQL ``home/postgres``."""
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    kafka_jvm_options: str | None = None
    """The broker's JVM flags (besides class path and heap), space-separated, in place of the
    devstack's; unset: ``fundtrail_devstack.kafka.JVM_OPTIONS``, an empty string: the JVM's defaults."""
    kafka_sasl: bool = True
    """SASL/SCRAM-SHA-512 with ACLs (every service, bureau and auditor its own user); false: plaintext,
    no authorization (a broker formatted one way must be removed to start the other)."""
    pg_port: int = 55432
    pg_database: str = "fundtrail"
    pg_os_user: str = "fundtrail"
    """Unprivileged system account PostgreSQL runs as when the devstack runs as root."""
    idp: Literal["none", "keycloak"] = "none"
    """``keycloak``: ``make run`` also starts Keycloak with the demo realm and the gateway trusts it
    (besides the locally signed demo tokens: development only)."""
    keycloak_port: int = 8180

    @property
    def kafka_jvm_flags(self) -> tuple[str, ...]:
        if self.kafka_jvm_options is None:
            return JVM_OPTIONS
        return tuple(shlex.split(self.kafka_jvm_options))

    @property
    def kafka_home(self) -> Path:
        return self.home / "kafka"

    @property
    def keycloak_home(self) -> Path:
        return self.home / "keycloak"

    @property
    def kafka_security(self) -> BrokerSecurity | None:
        """The broker's security (users' passwords in ``home/kafka/users``), None when SASL is off."""
        return BrokerSecurity(self.kafka_home / "users") if self.kafka_sasl else None

    @property
    def kafka_clients_dir(self) -> Path:
        """Where `make run` writes a client configuration per Kafka user (Java properties, kcat)."""
        return self.home / "kafka-clients"

    @property
    def pg_home(self) -> Path:
        return self.home / "postgres"
