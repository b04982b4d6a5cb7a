"""A real Apache Kafka 4.x node (KRaft, combined broker + controller) without Docker.

The jars come from Maven Central through ``deploy/kafka/pom.xml`` (``mvn`` copies the runtime class
path into ``deploy/kafka/lib/``, once; a stamp keyed by the pom's hash makes later starts reuse
them). The node's configuration, data and logs live in ``home`` (default ``.devstack/kafka/``).

    node = KafkaNode(Path(".devstack/kafka"), port=9092, controller_port=9093)
    node.start()          # returns once a real metadata request succeeds
    node.bootstrap        # "127.0.0.1:9092"
    node.stop()           # SIGTERM to the pid we started, SIGKILL after a timeout
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import string
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._util import (
    KAFKA_PROJECT_DIR,
    DevstackError,
    pid_alive,
    pid_cmdline,
    port_accepts,
    tail,
    wait_for_exit,
)
from .kafka_auth import BrokerSecurity

__all__ = ["JVM_OPTIONS", "MIN_JAVA", "KafkaNode", "KafkaStatus", "java_version"]

log = logging.getLogger(__name__)

MIN_JAVA = 17
STAMP_NAME = ".fundtrail-jars.json"
_HEAP_RE = re.compile(r"^\d+[kKmMgG]?$")
# A single-node development broker shares a small machine with the services it serves. The C2
# compiler alone kept 0.2-0.3 of a core busy for minutes after start (latency suite at 300 events/s:
# broker 0.51-0.59 of a core with C2, 0.31 with C1 only, and p99 340 -> 141 ms), while C1 code
# handles a development load easily (aiokafka pass-through: 16,893 vs 20,317 events/s). The serial
# collector suits a 512 MB heap and adds no GC threads. Production brokers keep their image's
# defaults (deploy/compose.yaml, deploy/k8s).
JVM_OPTIONS: tuple[str, ...] = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")


@dataclass(frozen=True)
class KafkaStatus:
    """What :meth:`KafkaNode.status` found."""

    running: bool
    """A process we started (pid file, command line matching this node) is alive."""
    reachable: bool
    """The PLAINTEXT port accepts TCP connections."""
    pid: int | None
    bootstrap: str
    home: Path
    formatted: bool
    jars_ready: bool


def _find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java")
    if not found:
        raise DevstackError(
            f"Java {MIN_JAVA}+ is required to run Kafka but no `java` was found on PATH or in JAVA_HOME "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless)."
        )
    return found


def java_version(java: str) -> int:
    """The feature version of a ``java`` executable (8 for 1.8, 17 for 17.0.15, ...)."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        raise DevstackError(f"cannot run {java} -version: {exc}") from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise DevstackError(f"cannot read the Java version from `{java} -version`:\n{out.stderr}")
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major


def _new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID, URL-safe base64 without padding, never starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a chatty client logger while probing a server that is still starting."""
    logger = logging.getLogger(logger_name)
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(old)


class KafkaNode:
    """One local Kafka 4.x node: KRaft combined broker+controller, node.id 1, bound to 127.0.0.1."""

    def __init__(
        self,
        home: Path,
        port: int,
        controller_port: int,
        heap: str = "512m",
        *,
        kafka_dir: Path = KAFKA_PROJECT_DIR,
        message_max_bytes: int = 2 * 1024 * 1024,
        startup_timeout: float = 120.0,
        jvm_options: Sequence[str] = JVM_OPTIONS,
        security: BrokerSecurity | None = None,
    ) -> None:
        if port == controller_port:
            raise ValueError("port and controller_port must differ")
        if not _HEAP_RE.match(heap):
            raise ValueError(f"heap must look like 512m / 1g, got {heap!r}")
        for option in jvm_options:
            if not option.startswith("-") or option.startswith(("-cp", "-classpath", "--class-path", "-Xm")):
                raise ValueError(f"JVM options must be flags other than the class path and heap, got {option!r}")
        self.jvm_options = tuple(jvm_options)
        self.home = Path(home).absolute()
        self.port = int(port)
        self.controller_port = int(controller_port)
        self.heap = heap
        self.kafka_dir = Path(kafka_dir).absolute()
        self.message_max_bytes = message_max_bytes
        self.startup_timeout = startup_timeout
        self.security = security
        """SASL/SCRAM + ACLs when set (its super users are bootstrapped at format time); plaintext when None."""
        self._proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ paths
    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pom(self) -> Path:
        return self.kafka_dir / "pom.xml"

    @property
    def lib_dir(self) -> Path:
        return self.kafka_dir / "lib"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def config_path(self) -> Path:
        return self.home / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def stdout_log(self) -> Path:
        return self.logs_dir / "kafka.out"

    @staticmethod
    def configured_ports(home: Path) -> tuple[int, int] | None:
        """(port, controller_port) from the server.properties last written in ``home``, if any."""
        try:
            text = (Path(home) / "server.properties").read_text()
        except OSError:
            return None
        match = re.search(r"^listeners=\w+://127\.0\.0\.1:(\d+),CONTROLLER://127\.0\.0\.1:(\d+)", text, re.M)
        return (int(match.group(1)), int(match.group(2))) if match else None

    def kafka_version(self) -> str | None:
        """The Kafka version of the jars in ``lib/`` (None before the first download)."""
        for jar in self.lib_dir.glob("kafka_2.13-*.jar"):
            return jar.name.removeprefix("kafka_2.13-").removesuffix(".jar")
        return None

    # ------------------------------------------------------------------ jars
    def _pom_hash(self) -> str:
        return hashlib.sha256(self.pom.read_bytes()).hexdigest()

    def jars_ready(self) -> bool:
        """True if ``lib/`` holds the complete class path for the current pom (per the stamp)."""
        stamp = self.lib_dir / STAMP_NAME
        try:
            data = json.loads(stamp.read_text())
            if data.get("pom_sha256") != self._pom_hash():
                return False
            jars = data["jars"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return bool(jars) and all((self.lib_dir / jar).is_file() for jar in jars)

    def ensure_jars(self) -> bool:
        """Download Kafka's runtime jars with Maven unless ``lib/`` is already complete.

        Returns True if Maven ran, False if the cached jars were reused. Safe to call from
        several processes at once (a file lock serialises the download).
        """
        if not self.pom.is_file():
            raise DevstackError(f"missing {self.pom}: the Kafka runtime project is not in this checkout")
        if self.jars_ready():
            return False
        self.lib_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lib_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.jars_ready():  # another process finished while we waited
                return False
            mvn = shutil.which("mvn")
            if not mvn:
                raise DevstackError(
                    "Apache Maven (`mvn`) is required once, to download the Kafka jars from Maven Central "
                    f"into {self.lib_dir} (Debian/Ubuntu: apt-get install maven)."
                )
            _find_java()  # Maven itself needs a JDK; fail with the clearer message first
            for old in self.lib_dir.glob("*.jar"):  # never mix versions on the class path
                old.unlink()
            cmd = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(self.pom), "package"]
            log.info("downloading Kafka jars: %s", " ".join(cmd))
            started = time.monotonic()
            result = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=self.kafka_dir)
            if result.returncode != 0:
                raise DevstackError(
                    f"`{' '.join(cmd)}` failed with exit code {result.returncode}:\n"
                    f"{(result.stdout + result.stderr)[-4000:]}"
                )
            jars = sorted(p.name for p in self.lib_dir.glob("*.jar"))
            if not any(j.startswith("kafka_2.13-") for j in jars):
                raise DevstackError(f"Maven finished but no kafka_2.13 jar is in {self.lib_dir}")
            stamp = {
                "pom_sha256": self._pom_hash(),
                "jars": jars,
                "seconds": round(time.monotonic() - started, 2),
            }
            tmp = self.lib_dir / (STAMP_NAME + ".tmp")
            tmp.write_text(json.dumps(stamp, indent=2))
            tmp.replace(self.lib_dir / STAMP_NAME)
            return True

    # ------------------------------------------------------------------ config / storage
    def java(self) -> str:
        """Path to a ``java`` of version 17 or newer (clear error otherwise)."""
        java = _find_java()
        major = java_version(java)
        if major < MIN_JAVA:
            raise DevstackError(f"Kafka 4 needs Java {MIN_JAVA}+, but {java} is Java {major}")
        return java

    def render_config(self) -> str:
        template = string.Template((self.kafka_dir / "server.properties.template").read_text())
        return template.substitute(
            port=self.port,
            controller_port=self.controller_port,
            log_dirs=str(self.data_dir),
            message_max_bytes=self.message_max_bytes,
            listener="SASL_PLAINTEXT" if self.security else "PLAINTEXT",
            protocol_map=(
                "CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT" if self.security
                else "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
            ),
            security=self.security.server_properties() if self.security else "",
        )

    def write_config(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.render_config())
        return self.config_path

    def formatted(self) -> bool:
        return (self.data_dir / "meta.properties").is_file()

    @property
    def _scram_marker(self) -> Path:
        return self.home / "scram-bootstrapped"

    def client_options(self, user: str | None = None) -> dict[str, object]:
        """kafka-python keyword arguments to reach this node (as `user`, default the operator, when secured)."""
        if self.security is None:
            return {}
        from fundtrail_schemas.kafka_security import client_security

        return client_security("kafka-python", self.security.client(user))

    def _jvm_base(self, java: str, heap: str) -> list[str]:
        return [
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.kafka_dir / 'log4j2.yaml'}",
            f"-Dkafka.logs.dir={self.logs_dir}",
            "-cp",
            f"{self.lib_dir}/*",
        ]

    def format_storage(self, java: str | None = None) -> bool:
        """Format the KRaft storage once (``kafka-storage format``). True if it formatted now."""
        if self.formatted():
            return False
        java = java or self.java()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        cluster_id_file = self.home / "cluster.id"
        if cluster_id_file.is_file():
            cluster_id = cluster_id_file.read_text().strip()
        else:
            cluster_id = _new_cluster_id()
            cluster_id_file.write_text(cluster_id + "\n")
        cmd = [
            *self._jvm_base(java, "256m"),
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            cluster_id,
            "--config",
            str(self.config_path),
            "--ignore-formatted",
            *(self.security.scram_bootstrap_args() if self.security else ()),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=self.home, timeout=180)
        if result.returncode != 0 or not self.formatted():
            raise DevstackError(
                f"formatting Kafka storage in {self.data_dir} failed (exit {result.returncode}):\n"
                f"{(result.stdout + result.stderr)[-4000:]}"
            )
        if self.security:
            self._scram_marker.write_text("SCRAM super users bootstrapped at format time\n")
        return True

    def _check_security(self) -> None:
        if self.security and self.formatted() and not self._scram_marker.is_file():
            raise DevstackError(
                f"the Kafka storage in {self.data_dir} was formatted without SASL users; remove {self.home} "
                "(its topics are lost) or run without SASL (FUNDTRAIL_DEVSTACK_KAFKA_SASL=false)"
            )

    # ------------------------------------------------------------------ process
    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _is_ours(self, pid: int) -> bool:
        """The pid is alive and is the broker of *this* node (guards against pid reuse)."""
        if not pid_alive(pid):
            return False
        cmdline = pid_cmdline(pid)
        if not cmdline:
            return True  # no procfs to check against; the pid file is all we have
        return "kafka.Kafka" in cmdline and str(self.config_path) in cmdline

    def running_pid(self) -> int | None:
        pid = self._read_pid()
        return pid if pid is not None and self._is_ours(pid) else None

    def is_running(self) -> bool:
        return self.running_pid() is not None

    def start(self, *, detach: bool = True) -> None:
        """Start the node (no-op if it already runs) and wait until it answers a metadata request.

        ``detach=True`` puts the JVM in its own session so it outlives the calling process (CLI);
        tests use ``detach=False`` so Ctrl-C reaches the broker too.
        """
        pid = self.running_pid()
        if pid is not None:
            self.wait_ready()
            return
        for p, what in ((self.port, "port"), (self.controller_port, "controller port")):
            if port_accepts(p):
                raise DevstackError(f"cannot start Kafka: {what} 127.0.0.1:{p} is already in use")
        java = self.java()
        self.ensure_jars()
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._check_security()
        self.write_config()
        self.format_storage(java)
        cmd = self.command(java)
        with open(self.stdout_log, "ab") as out:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=detach,
                close_fds=True,
            )
        self.pid_file.write_text(f"{self._proc.pid}\n")
        try:
            self.wait_ready()
        except BaseException:
            self.stop(timeout=10)
            raise

    def command(self, java: str) -> list[str]:
        """The broker's command line."""
        return [*self._jvm_base(java, self.heap), *self.jvm_options, "kafka.Kafka", str(self.config_path)]

    def wait_ready(self, timeout: float | None = None) -> None:
        """Poll until a real metadata request (describe cluster + list topics) succeeds."""
        from kafka import KafkaAdminClient  # imported lazily: only callers that wait pay for it

        timeout = self.startup_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        last: object = "port not open yet"
        while True:
            pid = self._read_pid()
            if pid is None or not pid_alive(pid):
                raise DevstackError(
                    f"Kafka exited during start-up. Last output ({self.stdout_log}):\n{tail(self.stdout_log)}\n"
                    f"server.log:\n{tail(self.logs_dir / 'server.log')}"
                )
            if port_accepts(self.port):
                try:
                    with _quiet("kafka"):
                        admin = KafkaAdminClient(
                            bootstrap_servers=self.bootstrap,
                            client_id="fundtrail-devstack-probe",
                            request_timeout_ms=5000,
                            bootstrap_timeout_ms=3000,
                            **self.client_options(),
                        )
                        try:
                            cluster = admin.describe_cluster()
                            admin.list_topics()
                        finally:
                            admin.close()
                    if cluster.get("brokers"):
                        return
                    last = f"no broker registered yet: {cluster}"
                except Exception as exc:  # the broker is still coming up
                    last = exc
            if time.monotonic() >= deadline:
                raise DevstackError(
                    f"Kafka at {self.bootstrap} not ready after {timeout:.0f}s (last: {last}).\n"
                    f"server.log:\n{tail(self.logs_dir / 'server.log')}"
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the broker we started (pid file), SIGKILL after ``timeout``. True if one was running."""
        pid = self._read_pid()
        if pid is None:
            return False
        if not self._is_ours(pid):
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not wait_for_exit(pid, timeout):
            log.warning("Kafka pid %s did not stop within %.0fs; sending SIGKILL", pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_for_exit(pid, 10)
        if self._proc is not None and self._proc.pid == pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            self._proc = None
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> KafkaStatus:
        pid = self.running_pid()
        return KafkaStatus(
            running=pid is not None,
            reachable=port_accepts(self.port),
            pid=pid,
            bootstrap=self.bootstrap,
            home=self.home,
            formatted=self.formatted(),
            jars_ready=self.jars_ready(),
        )

    def __enter__(self) -> KafkaNode:
        self.start(detach=False)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KafkaNode(home={str(self.home)!r}, port={self.port}, controller_port={self.controller_port})"
