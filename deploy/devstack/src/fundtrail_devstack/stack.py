"""The three services as local processes: used by `make run`, the end-to-end tests and `make bench`.

Services are started as separate OS processes (`python -m <package> ...`) exactly as in
production, configured only through their settings environment variables.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._util import DevstackError, free_port
from .kafka_auth import BrokerSecurity

# The Kafka user each service runs as (fundtrail_schemas.kafka_acl) when the broker has ACLs.
SERVICE_PRINCIPALS = {"fund-tracker": "fund-tracker", "compliance": "compliance", "gateway": "gateway"}

REPO_ROOT = Path(__file__).resolve().parents[4]
RULEPACK_DIR = REPO_ROOT / "services" / "compliance" / "rulepacks"


@dataclass
class ServiceProcess:
    """One service process, stopped by its pid only."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True
        )
        log.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """Crash the process (reliability tests)."""
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; return the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def tail(self, lines: int = 40) -> str:
        """The end of the log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


# The devstack's checkpoint origin (C2SP tlog-checkpoint first line), also the log key's name.
TRAIL_ORIGIN = "fundtrail.example/jiangmen/trail"


@dataclass
class Stack:
    """Kafka + PostgreSQL locations plus the three services' processes and keys."""

    home: Path
    bootstrap: str
    database_url: str
    gateway_port: int = field(default_factory=free_port)
    tracker_metrics_port: int = field(default_factory=free_port)
    compliance_metrics_port: int = field(default_factory=free_port)
    otlp_endpoint: str | None = None
    group_suffix: str = ""
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    kafka_security: BrokerSecurity | None = None
    """Set when the broker has SASL + ACLs: each service then authenticates as its own user."""
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    # --- keys ---------------------------------------------------------------------------
    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def checkpoint_key(self) -> Path:
        return self.keys_dir / "checkpoint.pem"

    @property
    def checkpoint_public_key(self) -> Path:
        return self.keys_dir / "checkpoint.pub.pem"

    @property
    def trail_vkey(self) -> str:
        """The trail's note verifier key: the checkpoint public key under the origin (ensure_keys first)."""
        from fundtrail_verify.checkpoint import load_public_key
        from fundtrail_verify.note import NoteVerifier

        return NoteVerifier.ed25519(TRAIL_ORIGIN, load_public_key(self.checkpoint_public_key)).vkey

    @property
    def jwt_key(self) -> Path:
        return self.keys_dir / "jwt.pem"

    @property
    def jwt_public_key(self) -> Path:
        return self.keys_dir / "jwt.pub.pem"

    def ensure_keys(self) -> None:
        """Generate the checkpoint-signing and JWT key pairs once (development only)."""
        from fundtrail_verify.checkpoint import generate_keypair, save_private_key, save_public_key

        self.keys_dir.mkdir(parents=True, exist_ok=True)
        for priv, pub in ((self.checkpoint_key, self.checkpoint_public_key), (self.jwt_key, self.jwt_public_key)):
            if not priv.exists():
                private_key, public_key = generate_keypair()
                save_private_key(priv, private_key)
                save_public_key(pub, public_key)

    # --- environment --------------------------------------------------------------------
    def base_env(self, service: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNDTRAIL_", "OTEL_"))}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            DATABASE_URL=self.database_url,
            OTEL_SERVICE_NAME=service,
            PYTHONUNBUFFERED="1",
        )
        if self.otlp_endpoint:
            env.update(OTEL_EXPORTER_OTLP_ENDPOINT=self.otlp_endpoint, OTEL_BSP_SCHEDULE_DELAY="200")
        if service in SERVICE_PRINCIPALS:
            env.update(self.kafka_env(SERVICE_PRINCIPALS[service]))
        return env

    def kafka_env(self, user: str) -> dict[str, str]:
        """The Kafka client settings of `user` (nothing on a plaintext broker)."""
        return self.kafka_security.env(user) if self.kafka_security else {}

    def auth_env(self) -> dict[str, str]:
        """What the gateway and `fundtrail token` need to verify / issue tokens."""
        return {
            "FUNDTRAIL_GATEWAY_ENVIRONMENT": "development",
            "FUNDTRAIL_GATEWAY_JWT_ALGORITHM": "EdDSA",
            "FUNDTRAIL_GATEWAY_JWT_PUBLIC_KEY_FILE": str(self.jwt_public_key),
            "FUNDTRAIL_GATEWAY_JWT_PRIVATE_KEY_FILE": str(self.jwt_key),
        }

    def service_env(self, name: str) -> dict[str, str]:
        env = self.base_env(name)
        if name == "fund-tracker":
            env.update(
                FUNDTRAIL_TRACKER_APP_ID=f"fundtrail-tracker{self.group_suffix}",
                FUNDTRAIL_TRACKER_SIGNING_KEY_PATH=str(self.checkpoint_key),
                FUNDTRAIL_TRACKER_METRICS_PORT=str(self.tracker_metrics_port),
                FUNDTRAIL_TRACKER_DATA_DIR=str(self.home / "tracker"),
                FUNDTRAIL_TRACKER_CHECKPOINT_INTERVAL="2",
                FUNDTRAIL_TRACKER_TRAIL_LOG_ID=TRAIL_ORIGIN,
            )
        elif name == "compliance":
            env.update(
                FUNDTRAIL_COMPLIANCE_APP_ID=f"fundtrail-compliance{self.group_suffix}",
                FUNDTRAIL_COMPLIANCE_RULEPACK_DIR=str(RULEPACK_DIR),
                FUNDTRAIL_COMPLIANCE_METRICS_PORT=str(self.compliance_metrics_port),
                FUNDTRAIL_COMPLIANCE_DATA_DIR=str(self.home / "compliance"),
            )
        elif name == "gateway":
            env.update(self.auth_env())
            env.update(
                FUNDTRAIL_GATEWAY_PORT=str(self.gateway_port),
                FUNDTRAIL_GATEWAY_RULEPACK_DIR=str(RULEPACK_DIR),
                FUNDTRAIL_GATEWAY_RATE_LIMIT_PER_SECOND="5000",
                FUNDTRAIL_GATEWAY_RATE_LIMIT_BURST="10000",
                FUNDTRAIL_GATEWAY_TRAIL_VKEY=self.trail_vkey,
                # The console's role picker over the demo identities (its browser checks with TRAIL_VKEY).
                FUNDTRAIL_GATEWAY_DEV_SIGN_IN="true",
            )
        env.update(self.extra_env.get(name, {}))
        return env

    # --- lifecycle ----------------------------------------------------------------------
    def prepare(self) -> None:
        """Keys, migrations, Kafka users and ACLs, and topics (as the operator), before any service starts."""
        from fundtrail_runtime.db import upgrade
        from fundtrail_runtime.kafka_admin import ensure_topics
        from fundtrail_schemas.topics import configured_topics, registry_topics

        from .kafka_auth import apply_principals

        self.ensure_keys()
        upgrade(self.database_url)
        if self.kafka_security is not None:
            apply_principals(self.bootstrap, self.kafka_security)
        ensure_topics(self.bootstrap, configured_topics(base=registry_topics()),
                      security=self.kafka_security.client() if self.kafka_security else None)

    def process(self, name: str) -> ServiceProcess:
        argv = {
            "fund-tracker": [sys.executable, "-m", "fundtrail_tracker", "worker"],
            "compliance": [sys.executable, "-m", "fundtrail_compliance", "worker"],
            "gateway": [sys.executable, "-m", "fundtrail_gateway"],
        }[name]
        return ServiceProcess(name, argv, self.service_env(name), self.home / "logs" / f"{name}.log")

    def start(self, names: tuple[str, ...] = ("fund-tracker", "compliance", "gateway")) -> None:
        for name in names:
            svc = self.process(name)
            svc.start()
            self.services[name] = svc

    def restart(self, name: str) -> ServiceProcess:
        """Start a fresh process for `name` (after a kill)."""
        svc = self.process(name)
        svc.start()
        self.services[name] = svc
        return svc

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until the gateway answers /ready and the workers' metrics endpoints answer."""
        deadline = time.monotonic() + timeout
        checks = {
            "gateway": f"{self.gateway_url}/ready",
            "fund-tracker": f"http://127.0.0.1:{self.tracker_metrics_port}/metrics",
            "compliance": f"http://127.0.0.1:{self.compliance_metrics_port}/metrics",
        }
        pending = {n: u for n, u in checks.items() if n in self.services}
        while pending:
            for name, url in list(pending.items()):
                svc = self.services[name]
                if not svc.alive():
                    raise DevstackError(f"{name} exited with {svc.proc and svc.proc.returncode}:\n{svc.tail()}")
                try:
                    with urllib.request.urlopen(url, timeout=2) as resp:
                        if resp.status == 200:
                            del pending[name]
                except (urllib.error.URLError, OSError):
                    pass
            if pending and time.monotonic() > deadline:
                tails = "\n".join(f"--- {n}:\n{self.services[n].tail()}" for n in pending)
                raise DevstackError(f"not ready after {timeout:.0f}s: {', '.join(pending)}\n{tails}")
            if pending:
                time.sleep(0.2)

    def stop(self) -> dict[str, int | None]:
        """Stop every service we started (gateway first, then the workers)."""
        codes: dict[str, int | None] = {}
        for name in ("gateway", "compliance", "fund-tracker"):
            if name in self.services:
                codes[name] = self.services[name].stop()
        return codes

    # --- helpers for clients ------------------------------------------------------------
    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def console_url(self) -> str:
        return f"{self.gateway_url}/console/"

    def token(self, role: str, subject: str, region: str | None = None, ttl: int = 12 * 3600) -> str:
        """Issue a bearer token with the gateway's CLI (the same path a developer uses)."""
        argv = [sys.executable, "-m", "fundtrail_schemas.cli", "token", "--role", role, "--subject", subject,
                "--ttl", str(ttl)]
        if region:
            argv += ["--region", region]
        env = {**self.base_env("cli"), **self.auth_env()}
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=REPO_ROOT)
        if out.returncode != 0:
            raise DevstackError(f"fundtrail token failed: {out.stderr.strip()}")
        return out.stdout.strip().splitlines()[-1]

    def get_json(self, path: str, token: str, timeout: float = 10.0) -> object:
        """GET a gateway path with a bearer token."""
        req = urllib.request.Request(f"{self.gateway_url}{path}", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())


def publish_file(path: Path, bootstrap: str, state_dir: Path, extra_env: Mapping[str, str] | None = None,
                 otlp_endpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    """Publish a file the way a bureau does: `fundtrail publish FILE`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNDTRAIL_", "OTEL_"))}
    env.update(KAFKA_BOOTSTRAP_SERVERS=bootstrap, FUNDTRAIL_TRACKER_STATE_DIR=str(state_dir),
               OTEL_SERVICE_NAME="publisher")
    if otlp_endpoint:
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_endpoint, OTEL_BSP_SCHEDULE_DELAY="200")
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "fundtrail_schemas.cli", "publish", str(path)],
        env=env, capture_output=True, text=True, check=False, cwd=REPO_ROOT,
    )
