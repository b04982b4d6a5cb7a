"""Gateway settings: one pydantic-settings hierarchy, env prefix FUNDTRAIL_GATEWAY_."""

from __future__ import annotations

import warnings
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fundtrail_runtime.settings import CommonSettings

from .core.checkpoints import LogKeys
from .core.tokens import ASYMMETRIC_ALGORITHMS

ENV_PREFIX = "FUNDTRAIL_GATEWAY_"
# Repository layout default: services/compliance/rulepacks next to this service.
DEFAULT_RULEPACK_DIR = Path(__file__).resolve().parents[3] / "compliance" / "rulepacks"
# The web console's production build (console/dist at the repository root), served at /console/.
DEFAULT_CONSOLE_DIR = Path(__file__).resolve().parents[4] / "console" / "dist"

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
    jwt_key_id: str | None = Field(
        None, description="kid of the local key; default its RFC 7638 thumbprint (CLI and server derive the same)"
    )
    token_max_lifetime_seconds: int = Field(
        12 * 3600, ge=60, le=7 * 24 * 3600, description="Longest accepted exp - iat of any token (both modes)"
    )
    token_max_bytes: int = Field(
        8192, ge=1024, le=65536, description="Largest accepted bearer token; checked before any parsing"
    )
    # OpenID Connect: setting the issuer switches the gateway to tokens of that identity provider.
    oidc_issuer: str | None = Field(
        None, description="Issuer URL of the OpenID Connect provider; set, it enables OIDC mode (discovery + JWKS)"
    )
    oidc_audience: str = Field("fundtrail-gateway", description="aud every provider token must name")
    oidc_role_claim: str = Field(
        "scope", description="Dotted path of the roles claim, e.g. realm_access.roles (Keycloak) or fundtrail_role"
    )
    oidc_region_claim: str = Field("region", description="Dotted path of the region code claim")
    oidc_department_claim: str | None = Field("department", description="Dotted path of the department claim")
    oidc_console_client_id: str | None = Field(
        None, description="Public client id of the browser console (Authorization Code + PKCE)"
    )
    oidc_algorithms: list[str] = Field(
        ["RS256", "PS256", "ES256", "EdDSA"],
        description="Allow-list; the accepted algorithms are these that the provider also advertises",
    )
    oidc_jwks_refresh_seconds: float = Field(300.0, gt=0, description="Background JWKS refresh interval (TTL)")
    oidc_jwks_min_refresh_interval_seconds: float = Field(
        30.0, ge=0, description="An unknown kid refetches the JWKS at most this often"
    )
    oidc_http_timeout_seconds: float = Field(5.0, gt=0, le=60, description="Timeout of each discovery/JWKS request")
    oidc_startup_timeout_seconds: float = Field(
        30.0, ge=0, description="How long start-up retries an unreachable provider before giving up"
    )
    oidc_accept_dev_tokens: bool = Field(
        False, description="Development only: accept locally signed tokens (the JWT_* key) besides the provider's"
    )

    @property
    def oidc_enabled(self) -> bool:
        """True when tokens come from an identity provider."""
        return bool(self.oidc_issuer)

    @property
    def local_key_accepted(self) -> bool:
        """True when locally signed tokens (`fundtrail token`) are accepted by the server."""
        return not self.oidc_enabled or self.oidc_accept_dev_tokens

    @model_validator(mode="after")
    def _oidc_fits_environment(self) -> AuthSettings:
        if not self.oidc_enabled:
            return self
        assert self.oidc_issuer is not None
        if self.oidc_accept_dev_tokens and self.environment is not Environment.DEVELOPMENT:
            raise ValueError(f"{ENV_PREFIX}OIDC_ACCEPT_DEV_TOKENS is allowed only in the development environment")
        if not self.oidc_issuer.startswith("https://") and self.environment is Environment.PRODUCTION:
            raise ValueError(f"{ENV_PREFIX}OIDC_ISSUER must be an https URL in production")
        bad = [a for a in self.oidc_algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if bad or not self.oidc_algorithms:
            raise ValueError(
                f"{ENV_PREFIX}OIDC_ALGORITHMS may name only {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}; got {bad}"
            )
        return self

    @model_validator(mode="after")
    def _keys_fit_algorithm(self) -> AuthSettings:
        if not self.local_key_accepted and self.jwt_private_key_file is None:
            return self  # OIDC only: no local key needed by the server
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
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest request body (413 beyond)")
    max_events_body_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, description="Largest POST /v1/events body (a full batch is ~1 MiB)"
    )
    max_import_rows: int = Field(50_000, ge=1, description="Data rows an import may hold (413 beyond)")
    import_workers: int = Field(1, ge=1, le=32, description="Processes mapping uploaded files")
    import_budget_seconds: float = Field(
        20.0, gt=0, description="Longest a file may take to map; its worker is then stopped (413)"
    )
    import_memory_bytes: int = Field(
        2 * 1024**3, ge=0, description="Address space of an import worker (0: unlimited); a file needing more is 413"
    )
    rate_limit_per_second: float = Field(50.0, gt=0, description="Requests per second per authenticated subject")
    rate_limit_anonymous_per_second: float = Field(
        10.0, gt=0, description="Requests per second per client address without a valid token"
    )
    rate_limit_window_seconds: float = Field(
        10.0, gt=0, le=3600, description="Fixed window: a caller gets rate x window requests per window"
    )
    rate_limit_backend: Literal["postgresql", "memory"] = Field(
        "postgresql", description="postgresql: one counter per caller and window shared by every replica"
    )
    rate_limit_burst: int = Field(200, ge=1, description="Token-bucket capacity of the in-process fallback")
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
    trail_vkey: str | None = Field(
        None,
        description="The trail log's note verifier key (<origin>+<hash>+<key>), served at /v1/log/key; "
        "fund-tracker signs with the matching private key",
    )
    witness_vkeys: list[str] = Field(
        default_factory=list,
        description="JSON list of witness cosigner vkeys (type 0x04) whose cosignatures are accepted and served",
    )

    @model_validator(mode="after")
    def _log_keys_parse(self) -> GatewaySettings:
        LogKeys.parse(self.trail_vkey, self.witness_vkeys)
        return self

    console_dir: Path = Field(DEFAULT_CONSOLE_DIR, description="Built web console served at /console/ (if present)")
    dev_sign_in: bool = Field(
        False, description="Role picker with demo identities (/v1/dev/*); refused unless ENVIRONMENT=development"
    )

    @model_validator(mode="after")
    def _dev_sign_in_only_in_development(self) -> GatewaySettings:
        if self.dev_sign_in and self.environment is not Environment.DEVELOPMENT:
            raise ValueError(f"{ENV_PREFIX}DEV_SIGN_IN mints tokens for anyone: only with ENVIRONMENT=development")
        return self
