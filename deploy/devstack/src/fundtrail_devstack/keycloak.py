"""A real Keycloak (OpenID Connect provider) for development and tests, without Docker.

The server distribution comes from Maven Central through ``deploy/keycloak/pom.xml`` (``mvn``
unpacks ``org.keycloak:keycloak-quarkus-dist`` into ``deploy/keycloak/dist/``, once; a stamp keyed
by the pom's hash makes later starts reuse it). The node runs ``kc.sh start-dev`` on 127.0.0.1 with
an in-memory H2 database, so nothing of a run outlives it; :meth:`KeycloakNode.import_realm` loads
``deploy/keycloak/fundtrail-realm.json`` (roles, groups carrying region/department, demo users, the
console's public PKCE client) through the admin REST API.

    node = KeycloakNode(Path(".devstack/keycloak"), port=8180)
    node.start()                 # returns once the master realm's discovery document answers
    node.import_realm()          # the fundtrail realm
    node.issuer                  # "http://127.0.0.1:8180/realms/fundtrail"
    node.stop()                  # SIGTERM to the process group we started, SIGKILL after a timeout
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from ._util import REPO_ROOT, DevstackError, pid_alive, pid_cmdline, port_accepts, tail, wait_for_exit
from .kafka import MIN_JAVA, _find_java, java_version

__all__ = ["KEYCLOAK_PROJECT_DIR", "REALM", "REALM_FILE", "KeycloakNode", "ensure_keycloak_dist"]

log = logging.getLogger(__name__)

KEYCLOAK_PROJECT_DIR = REPO_ROOT / "deploy" / "keycloak"
REALM_FILE = KEYCLOAK_PROJECT_DIR / "fundtrail-realm.json"
REALM = "fundtrail"
DEMO_PASSWORD = "fundtrail-demo-password"  # the realm file's users; development and tests only
STAMP_NAME = ".fundtrail-dist.json"
# A modest heap: the machine is shared with Kafka, PostgreSQL and the services.
DEFAULT_HEAP = "-Xms128m -Xmx512m"
# C1 only, as for the devstack broker: on the loaded 2-core machine start-up took 59-80 s with it and
# 134-172 s without (docs/operations.md section 10); a development IdP never needs C2's peak speed.
JVM_APPEND = "-XX:TieredStopAtLevel=1"


def _pom_hash(project_dir: Path) -> str:
    return hashlib.sha256((project_dir / "pom.xml").read_bytes()).hexdigest()


def _dist_home(project_dir: Path) -> Path | None:
    """The unpacked distribution for the current pom, if complete (per the stamp)."""
    dist = project_dir / "dist"
    try:
        stamp = json.loads((dist / STAMP_NAME).read_text())
        if stamp.get("pom_sha256") != _pom_hash(project_dir):
            return None
        home = dist / stamp["home"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return home if (home / "bin" / "kc.sh").is_file() else None


def ensure_keycloak_dist(project_dir: Path = KEYCLOAK_PROJECT_DIR) -> tuple[Path, bool]:
    """The Keycloak home, unpacked by Maven unless already there; (home, whether Maven ran).

    Safe to call from several processes at once (a file lock serialises the download)."""
    if not (project_dir / "pom.xml").is_file():
        raise DevstackError(f"missing {project_dir / 'pom.xml'}: the Keycloak project is not in this checkout")
    home = _dist_home(project_dir)
    if home is not None:
        return home, False
    dist = project_dir / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    with open(dist / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        home = _dist_home(project_dir)
        if home is not None:
            return home, False
        mvn = shutil.which("mvn")
        if not mvn:
            raise DevstackError(
                "Apache Maven (`mvn`) is required once, to download Keycloak from Maven Central "
                f"into {dist} (Debian/Ubuntu: apt-get install maven)."
            )
        for old in dist.glob("keycloak-*"):  # never start a stale version
            shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(dist / ".markers", ignore_errors=True)
        cmd = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(project_dir / "pom.xml"), "package"]
        log.info("downloading Keycloak: %s", " ".join(cmd))
        started = time.monotonic()
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=project_dir)
        if result.returncode != 0:
            raise DevstackError(
                f"`{' '.join(cmd)}` failed with exit code {result.returncode}:\n"
                f"{(result.stdout + result.stderr)[-4000:]}"
            )
        homes = sorted(p for p in dist.glob("keycloak-*") if (p / "bin" / "kc.sh").is_file())
        if len(homes) != 1:
            raise DevstackError(f"Maven finished but {dist} holds {len(homes)} Keycloak distributions")
        stamp = {"pom_sha256": _pom_hash(project_dir), "home": homes[0].name,
                 "seconds": round(time.monotonic() - started, 2)}
        (dist / STAMP_NAME).write_text(json.dumps(stamp, indent=2))
        return homes[0], True


class KeycloakNode:
    """One Keycloak in development mode on 127.0.0.1:``port``; logs and pid file in ``home``."""

    def __init__(
        self,
        home: Path,
        port: int,
        *,
        heap: str = DEFAULT_HEAP,
        admin_password: str | None = None,
        startup_timeout: float = 300.0,
        project_dir: Path = KEYCLOAK_PROJECT_DIR,
    ) -> None:
        self.home = home
        self.port = port
        self.heap = heap
        self.admin_user = "admin"
        # Per node unless given: the bootstrap admin exists only in this node's in-memory database.
        self.admin_password = admin_password or secrets.token_urlsafe(16)
        self.startup_timeout = startup_timeout
        self.project_dir = project_dir
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        """Issuer of the fundtrail realm (what tokens carry as ``iss``)."""
        return f"{self.base_url}/realms/{REALM}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def pid_file(self) -> Path:
        return self.home / "keycloak.pid"

    @property
    def stdout_log(self) -> Path:
        return self.home / "keycloak.out"

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self) -> None:
        """Start Keycloak and wait until it answers discovery (a slow start on a busy machine is normal)."""
        if port_accepts(self.port):
            raise DevstackError(f"cannot start Keycloak: port 127.0.0.1:{self.port} is already in use")
        java = _find_java()
        if java_version(java) < MIN_JAVA:
            raise DevstackError(f"Keycloak needs Java {MIN_JAVA}+; {java} is older")
        kc_home, _ = ensure_keycloak_dist(self.project_dir)
        self.home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "JAVA_HOME": str(Path(java).resolve().parents[1]),
            "JAVA_OPTS_KC_HEAP": self.heap,
            "JAVA_OPTS_APPEND": JVM_APPEND,
            "KC_BOOTSTRAP_ADMIN_USERNAME": self.admin_user,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": self.admin_password,
        }
        cmd = [
            str(kc_home / "bin" / "kc.sh"), "start-dev",
            f"--http-port={self.port}", "--http-host=127.0.0.1",
            "--db=dev-mem",  # in memory: no state in the shared distribution folder, none left after stop
            "--health-enabled=false", "--metrics-enabled=false",  # no management port to collide on
            "--log-level=INFO,org.hibernate:WARN,org.infinispan:WARN",
        ]
        started = time.monotonic()
        # Start-dev re-augments the shared distribution when its build options change: one start at a time.
        with open(self.project_dir / "dist" / ".start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with open(self.stdout_log, "ab") as out:
                self._proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=self.home, env=env,
                    start_new_session=True,  # kc.sh and its JVM in a group of their own, stopped together
                    close_fds=True,
                )
            self.pid_file.write_text(f"{self._proc.pid}\n")
            try:
                self.wait_ready()
            except BaseException:
                self.stop(timeout=10)
                raise
        self.startup_seconds = round(time.monotonic() - started, 1)
        log.info("Keycloak on %s ready after %.1fs", self.base_url, self.startup_seconds)

    def wait_ready(self) -> None:
        """Poll the master realm's discovery document until it answers 200."""
        deadline = time.monotonic() + self.startup_timeout
        url = f"{self.base_url}/realms/master/.well-known/openid-configuration"
        last: object = "port not open yet"
        while True:
            pid = self._read_pid()
            if pid is None or not pid_alive(pid) or (self._proc is not None and self._proc.poll() is not None):
                raise DevstackError(f"Keycloak exited during start-up. Last output:\n{tail(self.stdout_log)}")
            if port_accepts(self.port):
                try:
                    if httpx.get(url, timeout=5).status_code == 200:
                        return
                    last = "discovery not answering 200 yet"
                except httpx.HTTPError as exc:
                    last = exc
            if time.monotonic() >= deadline:
                raise DevstackError(
                    f"Keycloak on {self.base_url} not ready after {self.startup_timeout:.0f}s (last: {last}).\n"
                    f"{tail(self.stdout_log)}"
                )
            time.sleep(0.5)

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the process group we started, SIGKILL after ``timeout``. True if one was running."""
        pid = self._read_pid()
        if pid is None:
            return False
        started_here = self._proc is not None and self._proc.pid == pid
        if not started_here and not any(arg.endswith("/kc.sh") for arg in pid_cmdline(pid)):
            # A stale pid file (the number may belong to another process by now): signal nothing.
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        if not wait_for_exit(pid, timeout):
            log.warning("Keycloak pid %s did not stop within %.0fs; sending SIGKILL", pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            wait_for_exit(pid, 10)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            self._proc = None
        self.pid_file.unlink(missing_ok=True)
        return True

    # ------------------------------------------------------------------ admin REST API
    def admin(self) -> httpx.Client:
        """An httpx client signed in to the admin REST API (``/admin/realms/...``) as the bootstrap admin."""
        r = httpx.post(
            f"{self.base_url}/realms/master/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "admin-cli", "username": self.admin_user,
                  "password": self.admin_password},
            timeout=30,
        )
        r.raise_for_status()
        return httpx.Client(
            base_url=f"{self.base_url}/admin/realms",
            headers={"Authorization": f"Bearer {r.json()['access_token']}"},
            timeout=30,
        )

    def import_realm(self, realm_file: Path = REALM_FILE) -> None:
        """Create the fundtrail realm from its JSON (roles, groups, demo users, clients, mappers)."""
        with self.admin() as admin:
            r = admin.post("", json=json.loads(realm_file.read_text(encoding="utf-8")))
            if r.status_code != 201:
                raise DevstackError(f"importing {realm_file.name} failed: {r.status_code} {r.text[:500]}")

    def password_token(
        self, username: str, password: str = DEMO_PASSWORD, client_id: str = "fundtrail-dev-cli",
        host: str | None = None,
    ) -> str:
        """An access token for a realm user (resource-owner password grant: development and tests only).

        `host` sends another Host header: dev-mode Keycloak then issues the token under that host's issuer."""
        r = httpx.post(
            self.token_endpoint,
            headers={"Host": host} if host else None,
            data={"grant_type": "password", "client_id": client_id, "username": username, "password": password,
                  "scope": "openid"},
            timeout=30,
        )
        if r.status_code != 200:
            raise DevstackError(f"sign-in of {username} failed: {r.status_code} {r.text[:300]}")
        token: str = r.json()["access_token"]
        return token

    def key_providers(self) -> list[dict[str, Any]]:
        """The realm's key provider components (rsa-generated, hmac-generated, ...)."""
        with self.admin() as admin:
            r = admin.get(f"/{REALM}/components", params={"type": "org.keycloak.keys.KeyProvider"})
            r.raise_for_status()
            providers: list[dict[str, Any]] = r.json()
            return providers

    def add_rsa_key(self, name: str, priority: int) -> None:
        """A new generated RS256 key provider; the highest priority signs new tokens."""
        with self.admin() as admin:
            realm_id = admin.get(f"/{REALM}").json()["id"]
            r = admin.post(f"/{REALM}/components", json={
                "name": name, "providerId": "rsa-generated", "providerType": "org.keycloak.keys.KeyProvider",
                "parentId": realm_id,
                "config": {"priority": [str(priority)], "enabled": ["true"], "active": ["true"],
                           "keySize": ["2048"], "algorithm": ["RS256"]},
            })
            if r.status_code != 201:
                raise DevstackError(f"adding key provider {name} failed: {r.status_code} {r.text[:300]}")

    def remove_component(self, component_id: str) -> None:
        """Delete a component (a key provider: its keys leave the JWKS at once)."""
        with self.admin() as admin:
            admin.delete(f"/{REALM}/components/{component_id}").raise_for_status()

    def __enter__(self) -> KeycloakNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KeycloakNode({self.base_url}, home={self.home})"
