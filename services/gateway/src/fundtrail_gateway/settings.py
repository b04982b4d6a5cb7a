"""Gateway settings: one pydantic-settings hierarchy, env prefix FUNDTRAIL_GATEWAY_."""

from __future__ import annotations

import warnings
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fundtrail_schemas.settings import CommonSettings

ENV_PREFIX = "FUNDTRAIL_GATEWAY_"
# Repository layout default: services/compliance/rulepacks next to this service.
DEFAULT_RULEPACK_DIR = Path(__file__).resolve().parents[3] / "compliance" / "rulepacks"

# Secrets that appear in docs and examples; never acceptable outside development.
PLACEHOLDER_SECRETS = frozenset({"changethis", "changeme", "secret", "dev", "development", "fundtrail-dev-secret"})
MIN_HS256_SECRET_BYTES = 32

JwtAlgorithm = Literal["EdDSA", "RS256", "HS256"]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class AuthSettings(BaseSettings):
    """Token keys and claims; enough for the `fundtrail token` CLI without a database or broker."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    environment: Environment = Field(
        Environment.PRODUCTION, description="development relaxes the secret checks; the default is the strict one"
    )
    jwt_algorithm: JwtAlgorithm = Field("EdDSA", description="The only algorithm accepted (pinned)")
    jwt_secret: SecretStr | None = Field(None, description="HS256 shared secret (at least 32 bytes)")
    jwt_public_key_file: Path | None = Field(None, description="PEM public key (EdDSA / RS256) to verify tokens")
    jwt_private_key_file: Path | None = Field(None, description="PEM private key to issue tokens (CLI only)")
    jwt_audience: str = "fundtrail-gateway"
    jwt_issuer: str = "fundtrail"
    jwt_leeway_seconds: int = Field(30, ge=0, le=300, description="Clock skew tolerated on exp/nbf/iat")
    token_ttl_seconds: int = Field(3600, gt=0, description="Default lifetime of tokens the CLI issues")

    @model_validator(mode="after")
    def _keys_fit_algorithm(self) -> AuthSettings:
        if self.jwt_algorithm == "HS256":
            if self.jwt_secret is None:
                raise ValueError(f"{ENV_PREFIX}JWT_SECRET is required for HS256")
            self._check_secret(self.jwt_secret.get_secret_value())
        elif self.jwt_public_key_file is None and self.jwt_private_key_file is None:
            raise ValueError(
                f"{self.jwt_algorithm} needs {ENV_PREFIX}JWT_PUBLIC_KEY_FILE (server) "
                f"or {ENV_PREFIX}JWT_PRIVATE_KEY_FILE (token CLI)"
            )
        return self

    def _check_secret(self, secret: str) -> None:
        weak = secret.lower() in PLACEHOLDER_SECRETS or len(secret.encode()) < MIN_HS256_SECRET_BYTES
        if not weak:
            return
        message = (
            f"{ENV_PREFIX}JWT_SECRET is a placeholder or shorter than {MIN_HS256_SECRET_BYTES} bytes; "
            'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
        )
        if self.environment is Environment.DEVELOPMENT:
            warnings.warn(message, stacklevel=2)
            return
        raise ValueError(message)


class GatewaySettings(AuthSettings, CommonSettings):
    """Everything the HTTP server needs."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    host: str = Field("127.0.0.1", description="Listen address")
    port: int = Field(8080, ge=1, le=65535)
    public_base_url: str = Field("", description="Prefix for absolute links; empty means relative links")
    rulepack_dir: Path = DEFAULT_RULEPACK_DIR
    db_pool_size: int = Field(10, ge=1, le=200)
    db_max_overflow: int = Field(10, ge=0, le=200)
    db_pool_timeout_seconds: float = Field(10.0, gt=0, description="Longest wait for a pooled connection (then 503)")
    db_prepared_statements: bool = Field(
        True, description="Prepare the trail query on each connection; false behind PgBouncer older than 1.21"
    )
    trail_cache_bytes: int = Field(
        64 * 1024 * 1024, ge=0, description="Memory for rendered trail pages that can no longer change (0: off)"
    )
    trail_cache_probe_seconds: float = Field(
        1.0, ge=0, description="How often a cache hit first checks that no trail row was updated or deleted"
    )
    ready_timeout_seconds: float = Field(2.0, gt=0, le=30, description="Budget of each /ready dependency check")
    default_page_size: int = Field(50, ge=1)
    max_page_size: int = Field(200, ge=1, le=1000)
    max_batch_events: int = Field(500, ge=1, le=5000)
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    rate_limit_per_second: float = Field(50.0, gt=0, description="Token-bucket refill per subject")
    rate_limit_burst: int = Field(200, ge=1, description="Token-bucket capacity per subject")
    recent_ids_ttl_seconds: float = Field(600.0, gt=0, description="How long published ids are remembered")
    recent_ids_max: int = Field(100_000, ge=1)
    case_pending_ttl_seconds: float = Field(
        120.0, gt=0, description="How long a published case action overrides the stored status"
    )
    kafka_send_timeout_seconds: float = Field(15.0, gt=0)
    sse_max_connections: int = Field(100, ge=1)
    ensure_topics: bool = Field(True, description="Create missing topics of the registry at start-up")
    enable_tracing: bool = True
    log_level: str = "INFO"
