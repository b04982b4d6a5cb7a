"""How every Kafka client of the project authenticates: one settings object, one helper.

The settings are shared, unprefixed environment names (like ``KAFKA_BOOTSTRAP_SERVERS``), so a
service, the publisher, an operator's tool and a benchmark all read the same ones:

    KAFKA_SECURITY_PROTOCOL     PLAINTEXT (default) | SASL_PLAINTEXT | SASL_SSL | SSL
    KAFKA_SASL_MECHANISM        SCRAM-SHA-512 (default)
    KAFKA_SASL_USERNAME         the principal (User:<name>)
    KAFKA_SASL_PASSWORD         its password, or
    KAFKA_SASL_PASSWORD_FILE    a file holding it (preferred: not in the process environment)
    KAFKA_SSL_CAFILE            PEM bundle that signed the brokers' certificates (SSL protocols)

``client_security(library)`` turns them into the keyword arguments of one client library;
every ``KafkaProducer`` / ``KafkaConsumer`` / ``KafkaAdminClient`` / ``AIOKafka*`` / ``faust.App``
the project builds passes them (grep ``client_security``).
"""

from __future__ import annotations

import ssl
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Library = Literal["kafka-python", "aiokafka", "faust"]
Protocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"]

SCRAM_SHA_512 = "SCRAM-SHA-512"


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class KafkaSecurity(BaseSettings):
    """A Kafka client's identity and transport security (shared env names, no prefix)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True, populate_by_name=True)

    security_protocol: Protocol = Field(
        "PLAINTEXT", validation_alias=_env("KAFKA_SECURITY_PROTOCOL"),
        description="PLAINTEXT, SASL_PLAINTEXT (loopback only), SASL_SSL or SSL",
    )
    sasl_mechanism: str = Field(SCRAM_SHA_512, validation_alias=_env("KAFKA_SASL_MECHANISM"))
    sasl_username: str | None = Field(None, validation_alias=_env("KAFKA_SASL_USERNAME"))
    sasl_password: SecretStr | None = Field(None, validation_alias=_env("KAFKA_SASL_PASSWORD"))
    sasl_password_file: Path | None = Field(None, validation_alias=_env("KAFKA_SASL_PASSWORD_FILE"))
    ssl_cafile: Path | None = Field(None, validation_alias=_env("KAFKA_SSL_CAFILE"))

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecurity:
        if self.sasl and not self.sasl_username:
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs KAFKA_SASL_USERNAME")
        if self.sasl and self.sasl_password is None and self.sasl_password_file is None:
            raise ValueError("SASL needs KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE")
        return self

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def password(self) -> str:
        """The SASL password (read from the file each time: a rotated file needs no restart)."""
        if self.sasl_password is not None:
            return self.sasl_password.get_secret_value()
        if self.sasl_password_file is None:
            raise ValueError("no SASL password configured")
        return self.sasl_password_file.read_text().strip()

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context (the CA file, else the system's roots) for the SSL protocols."""
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)

    def options(self, library: Library) -> dict[str, Any]:
        """Keyword arguments for one client library's constructor (faust: ``faust.App`` settings)."""
        if library == "faust":
            return self._faust()
        out: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.sasl:
            out.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                       sasl_plain_password=self.password())
        if self.tls:
            if library == "aiokafka":
                out["ssl_context"] = self.ssl_context()
            elif self.ssl_cafile is not None:
                out["ssl_cafile"] = str(self.ssl_cafile)
        return out

    def _faust(self) -> dict[str, Any]:
        if self.security_protocol == "PLAINTEXT":
            return {}
        import faust

        if self.sasl:
            creds: Any = faust.SASLCredentials(
                username=self.sasl_username, password=self.password(),
                mechanism=faust.types.auth.SASLMechanism(self.sasl_mechanism), ssl_context=self.ssl_context(),
            )
        else:
            creds = faust.SSLCredentials(self.ssl_context())
        return {"broker_credentials": creds}

    def describe(self) -> str:
        """For logs: the protocol and principal, never the password."""
        who = f" as User:{self.sasl_username}" if self.sasl else ""
        return f"{self.security_protocol}{who}"


@cache
def _from_env() -> KafkaSecurity:
    return KafkaSecurity()


def client_security(library: Library, security: KafkaSecurity | None = None) -> dict[str, Any]:
    """The security keyword arguments for a client of `library`: `security`, else the environment's."""
    return (security or _from_env()).options(library)
