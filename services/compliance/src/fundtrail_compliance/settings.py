"""Settings of the compliance worker (env prefix FUNDTRAIL_COMPLIANCE_; DATABASE_URL and
KAFKA_BOOTSTRAP_SERVERS are the shared unprefixed names)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fundtrail_runtime.kafka_batch import COMMIT_INTERVAL_SECONDS
from fundtrail_runtime.settings import CommonSettings

ENV_PREFIX = "FUNDTRAIL_COMPLIANCE_"
# Repository layout default: services/compliance/rulepacks.
DEFAULT_RULEPACK_DIR = Path(__file__).resolve().parents[2] / "rulepacks"


class ComplianceSettings(CommonSettings):
    """The compliance worker: rule packs, batching, grace period, observability."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    app_id: str = Field("fundtrail-compliance", description="faust app id and group; enriched: <app id>-enriched")
    rulepack_dir: Path = Field(DEFAULT_RULEPACK_DIR, description="Directory of the department rule packs (*.yaml)")
    watch_rulepacks: bool = Field(True, description="Reload the pack directory when a file changes")
    grace_period: timedelta = Field(
        timedelta(days=15), description="How long late evidence (e.g. the contract) may still refute a violation"
    )
    batch_size: int = Field(500, ge=1, le=20_000, description="Most enriched events per batch (one DB transaction)")
    commit_interval: float = Field(
        COMMIT_INTERVAL_SECONDS, gt=0, le=60,
        description="Most seconds between offset commits of the hot topic (what a crash redelivers)",
    )
    batch_timeout: float = Field(
        0.2, gt=0, description="Seconds a faust agent (trail inputs, case actions) waits to fill a batch"
    )
    shutdown_timeout: float = Field(
        15.0, gt=0, description="Seconds an orderly stop (SIGTERM) may take before the worker exits anyway"
    )
    tick_seconds: float = Field(1.0, gt=0, description="How often caught-up partitions are looked for")
    idle_after: float = Field(
        10.0, ge=0, description="Seconds a caught-up partition must stay without new records before it is idle"
    )
    metrics_port: int | None = Field(None, description="Prometheus /metrics port; unset: no endpoint")
    metrics_host: str = Field(
        "127.0.0.1", description="Address /metrics listens on: loopback by default, 0.0.0.0 for a Prometheus scrape"
    )
    web_enabled: bool = Field(False, description="Run faust's web server")
    web_port: int = Field(6067, description="faust web port (127.0.0.1) when enabled")
    data_dir: Path = Field(Path(".fundtrail/compliance"), description="faust's data directory")
    log_level: str = Field("info", description="faust worker log level")
