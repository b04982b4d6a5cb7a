"""Settings of fund-tracker (env prefix FUNDTRAIL_TRACKER_; DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS shared).

The publisher's settings live in fundtrail_publish (a bureau installs it without this service).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic_settings import SettingsConfigDict

from fundtrail_runtime.kafka_batch import COMMIT_INTERVAL_SECONDS
from fundtrail_runtime.settings import CommonSettings

ENV_PREFIX = "FUNDTRAIL_TRACKER_"


def _seconds(value: object) -> object:
    # "90" or "1.5" in the environment means seconds; ISO-8601 durations ("PT10M") also work.
    if isinstance(value, str):
        try:
            return timedelta(seconds=float(value))
        except ValueError:
            return value
    return value


Duration = Annotated[timedelta, BeforeValidator(_seconds)]


class TrackerSettings(CommonSettings):
    """The worker: consumer group, batching, trail signing, parking, observability."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    app_id: str = Field("fundtrail-tracker", description="faust app id and consumer group; raw events: <app id>-raw")
    topic_prefix: str = Field("", description="Namespace prepended to every topic name (tests, staging); usually empty")
    batch_size: int = Field(1000, ge=1, le=50_000, description="Most events per batch (one DB transaction)")
    batch_timeout: float = Field(
        0.2, gt=0, description="Seconds a faust agent (trail inputs, case actions) waits to fill a batch"
    )
    session_timeout: float = Field(
        30.0, ge=6, description="Seconds before the group drops a silent (crashed) worker and rebalances"
    )
    heartbeat_interval: float = Field(3.0, gt=0, description="Seconds between consumer-group heartbeats")
    commit_interval: float = Field(
        COMMIT_INTERVAL_SECONDS, gt=0, le=60,
        description="Most seconds between offset commits of the hot topic (what a crash redelivers)",
    )
    shutdown_timeout: float = Field(
        15.0, gt=0, description="Seconds an orderly stop (SIGTERM) may take before the worker exits anyway"
    )
    checkpoint_interval: float = Field(30.0, gt=0, description="Seconds between signed trail checkpoints")
    signing_key_path: Path = Field(description="Ed25519 private key (PKCS#8 PEM) that signs checkpoints")
    dev_mode: bool = Field(False, description="Generate a signing key if the file is missing (never in production)")
    trail_log_id: str = Field(
        "fundtrail.example/jiangmen/trail",
        pattern=r"^[^\x00-\x20\x7f+]+$",
        description="Checkpoint origin (C2SP tlog-checkpoint first line) and the log key's name; no spaces or '+'",
    )
    max_future_skew: Duration = Field(
        timedelta(minutes=10), description="Reject events dated further ahead of the tracker's clock (seconds)"
    )
    park_timeout: Duration = Field(
        timedelta(hours=24),
        description="Seconds an event for an unknown fund waits for its FundAllocated (0: reject at once)",
    )
    park_sweep_interval: float = Field(30.0, gt=0, description="Seconds between sweeps of expired parked events")
    metrics_port: int | None = Field(None, description="Prometheus /metrics port; unset: no endpoint")
    metrics_host: str = Field(
        "127.0.0.1", description="Address /metrics listens on: loopback by default, 0.0.0.0 for a Prometheus scrape"
    )
    web_enabled: bool = Field(False, description="Run faust's web server")
    web_port: int = Field(6066, description="faust web port (127.0.0.1) when enabled")
    data_dir: Path = Field(Path(".fundtrail/tracker"), description="faust's data directory")
    log_level: str = Field("info", description="faust worker log level")
