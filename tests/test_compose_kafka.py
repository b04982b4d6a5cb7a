"""deploy/compose.yaml's Kafka, run without Docker: its configuration on a real Kafka 4 broker.

The `kafka` service's KAFKA_* environment is rendered into server.properties by the rule of the
apache/kafka image, the `kafka-format` script formats the storage (with a stand-in for the image's
kafka-storage.sh), the broker runs from the project's jars (deploy/kafka/lib, the devstack's KafkaNode),
and the `topics` and `kafka-acls` one-shots run their compose commands with their compose environments.
Only host names, ports and paths are substituted: `kafka` and the published port become 127.0.0.1 and
free ports, /run/secrets/<target> a folder of links to what deploy/secrets/generate.py wrote.

What this does not show: that Docker runs the file (image entrypoints, secret mounts, depends_on).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from cryptography import x509
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import AuthorizationError, KafkaError

from fundtrail_devstack._util import free_ports
from fundtrail_devstack.kafka import KafkaNode
from fundtrail_schemas.kafka_acl import SUPER_USERS
from fundtrail_schemas.kafka_security import KafkaSecurity, client_security
from fundtrail_schemas.topics import ENRICHED_EVENTS, VIOLATIONS, department_topic, raw_topic

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
LIB = DEPLOY / "kafka" / "lib"
PROBE = DEPLOY / "kafka" / "tools" / "AclProbe.java"
KCAT = shutil.which("kcat")
BIN = Path(sys.executable).parent  # the `fundtrail` console script of this environment
# Not server properties in the image either (KafkaDockerWrapper's ExcludeServerPropsEnv).
IMAGE_EXCLUDED = {"KAFKA_VERSION", "KAFKA_HEAP_OPT", "KAFKA_LOG4J_OPTS", "KAFKA_OPTS", "KAFKA_JMX_OPTS",
                  "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS", "KAFKA_LOG4J_ROOT_LOGLEVEL",
                  "KAFKA_LOG4J_LOGGERS", "KAFKA_TOOLS_LOG4J_LOGLEVEL", "KAFKA_JMX_HOSTNAME"}


def image_properties(env: dict[str, str]) -> dict[str, str]:
    """server.properties as the apache/kafka 4.x image writes it from the environment.

    The image's rule (documented in apache/kafka docker/examples/README.md, "Using Environment
    Variables": `.` -> `_`, `_` -> `__`, `-` -> `___`, prefix KAFKA_) is implemented by
    core/src/main/scala/kafka/docker/KafkaDockerWrapper.scala, getServerConfigsFromEnv:
    key.replace("KAFKA_", "").toLowerCase().replace("_", ".").replace("...", "-").replace("..", "_").
    """
    return {
        key.replace("KAFKA_", "").lower().replace("_", ".").replace("...", "-").replace("..", "_"): value
        for key, value in env.items()
        if key.startswith("KAFKA_") and key not in IMAGE_EXCLUDED
    }


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def _unescape(value: object) -> str:
    """A compose value as the container sees it: `$$` is a literal `$` (no other interpolation is used)."""
    text = str(value)
    assert not re.search(r"(?<!\$)\$(?!\$)", text.replace("$$", "")), f"compose would interpolate {text!r}"
    return text.replace("$$", "$")


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compose_secrets_generate", DEPLOY / "secrets" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class ComposeKafka:
    """The running broker and what the compose services would see."""

    node: KafkaNode
    compose: dict[str, Any]
    secrets: Path  # what generate.py wrote (deploy/secrets)
    home: Path
    internal: str  # kafka:9092 (the services' bootstrap)
    host: str  # 127.0.0.1:19092 (the published port)
    ports: dict[int, int]

    def run_dir(self, service: str) -> Path:
        """/run/secrets of a compose service: links named by target to the generated files."""
        svc = self.compose["services"][service]
        files = {name: Path(spec["file"]).name for name, spec in self.compose["secrets"].items()}
        run = self.home / f"run-{service}"
        run.mkdir(exist_ok=True)
        for item in svc.get("secrets") or []:
            if isinstance(item, str):
                item = {"source": item}
            source, target = item["source"], item.get("target") or item["source"]
            link = run / target
            if not link.exists():
                link.symlink_to(self.secrets / files[source])
        return run

    def localize(self, service: str, text: str) -> str:
        """Compose's host names, ports and paths -> this machine's."""
        text = text.replace("/run/secrets/", f"{self.run_dir(service)}/")
        text = text.replace("/var/lib/kafka/data", str(self.home / "data"))
        hosts = {"//": "//127.0.0.1", "kafka": "127.0.0.1"}  # `//:9092` binds every interface in compose

        def local(m: re.Match[str]) -> str:
            port = self.ports.get(int(m.group(2)))  # Kafka's ports only (not the gateway's 8080, ...)
            return f"{hosts.get(m.group(1), m.group(1))}:{port}" if port else m.group(0)

        return re.sub(r"(//|\bkafka|\blocalhost|\b127\.0\.0\.1):(\d+)\b", local, text)

    def env(self, service: str) -> dict[str, str]:
        """A compose service's environment, localized (secrets by file, volumes mapped)."""
        svc = self.compose["services"][service]
        env = {k: self.localize(service, _unescape(v)) for k, v in (svc.get("environment") or {}).items()}
        for volume in svc.get("volumes") or []:
            source, target, *_ = volume.split(":")
            if source.startswith("./"):
                env = {k: v.replace(target, str(self.secrets.parent / source[2:])) for k, v in env.items()}
        return env

    def run_oneshot(self, service: str) -> subprocess.CompletedProcess[str]:
        """A fundtrail one-shot's compose command with its compose environment."""
        command = self.compose["services"][service]["command"]
        assert command[0] == "fundtrail"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "FUNDTRAIL_"))}
        env.update(self.env(service))
        return subprocess.run([str(BIN / "fundtrail"), *command[1:]], env=env, cwd=self.home, capture_output=True,
                              text=True, timeout=300, check=False)

    def security(self, service: str, **update: Any) -> KafkaSecurity:
        """The KafkaSecurity a compose service builds from its environment (fundtrail_schemas.kafka_security)."""
        env = self.env(service)
        fields = {
            "security_protocol": env["KAFKA_SECURITY_PROTOCOL"], "sasl_mechanism": env["KAFKA_SASL_MECHANISM"],
            "sasl_username": env["KAFKA_SASL_USERNAME"], "sasl_password_file": Path(env["KAFKA_SASL_PASSWORD_FILE"]),
            "ssl_cafile": Path(env["KAFKA_SSL_CAFILE"]),
        }
        return KafkaSecurity(**{**fields, **update})

    def as_user(self, user: str) -> KafkaSecurity:
        """A bureau's or auditor's client: the password `kafka-acls` set from deploy/secrets/kafka-users."""
        return self.security("gateway", sasl_username=user,
                             sasl_password_file=self.secrets / "kafka-users" / f"{user}.password")


class _ComposeNode(KafkaNode):
    """KafkaNode's process handling (start, readiness, stop by pid) with compose's configuration."""

    def __init__(self, home: Path, port: int, controller_port: int, properties: str, probe: KafkaSecurity) -> None:
        super().__init__(home, port, controller_port)
        self._properties = properties
        self._probe = probe

    def render_config(self) -> str:
        return self._properties

    def format_storage(self, java: str | None = None) -> bool:
        return False  # done by compose's kafka-format script (below), as in compose

    def client_options(self, user: str | None = None) -> dict[str, object]:
        return client_security("kafka-python", self._probe)


def _format_storage(kafka: ComposeKafka) -> None:
    """Run the `kafka-format` service's script, with kafka-storage.sh standing for the image's."""
    fmt = kafka.compose["services"]["kafka-format"]
    java = kafka.node.java()
    kafka.node.ensure_jars()
    shim = kafka.home / "kafka-storage.sh"
    log4j = DEPLOY / "kafka" / "log4j2.yaml"
    # Its logs go under the test's home, not the working directory (the checkout).
    shim.write_text(f"#!/bin/sh\nexec {java} -cp '{LIB}/*' -Dlog4j2.configurationFile={log4j} "
                    f"-Dkafka.logs.dir={kafka.home / 'logs'} kafka.tools.StorageTool \"$@\"\n")
    shim.chmod(0o755)
    script = kafka.localize("kafka-format", _unescape(fmt["command"][-1]))
    script = script.replace("/opt/kafka/bin/kafka-storage.sh", str(shim))
    script = script.replace("/tmp/format.properties", str(kafka.home / "format.properties"))
    env = {**os.environ, **{k: _unescape(v) for k, v in fmt["environment"].items()}}
    (kafka.home / "data").mkdir(parents=True, exist_ok=True)
    out = subprocess.run([*fmt["command"][:-1], script], env=env, capture_output=True, text=True, timeout=180,
                         check=False, cwd=kafka.home)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (kafka.home / "data" / "meta.properties").is_file()


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeKafka]:
    home = tmp_path_factory.mktemp("compose-kafka")
    compose = _compose()
    secrets = home / "deploy" / "secrets"
    _load_generator().generate(secrets)
    internal, controller, host = free_ports(3)
    ports = {9092: internal, 9093: controller, 19092: host}
    env = compose["services"]["kafka"]["environment"]
    kafka = ComposeKafka(node=None, compose=compose, secrets=secrets, home=home,
                         internal=f"127.0.0.1:{internal}", host=f"127.0.0.1:{host}", ports=ports)
    properties = {k: kafka.localize("kafka", _unescape(v)) for k, v in image_properties(env).items()}
    text = "".join(f"{k}={v}\n" for k, v in sorted(properties.items()))
    operator = kafka.security("topics")  # the operator's client, as `topics` and `kafka-acls` run it
    kafka.node = _ComposeNode(home / "kafka", host, controller, text, operator)
    kafka.node.home.mkdir(parents=True)
    _format_storage(kafka)
    kafka.node.start(detach=False)
    try:
        for oneshot in ("topics", "kafka-acls"):
            out = kafka.run_oneshot(oneshot)
            assert out.returncode == 0, f"{oneshot}: {out.stdout}{out.stderr}"
        # One record on the topics read below, so an allowed read has something to return.
        with KafkaProducer(bootstrap_servers=kafka.host, **client_security("kafka-python", operator)) as producer:
            for topic in (department_topic("agriculture"), department_topic("finance"), raw_topic("440705")):
                producer.send(topic, key=b"seed", value=b"seed", partition=0).get(timeout=30)
        yield kafka
    finally:
        kafka.node.stop()


# ------------------------------------------------------------------ the configuration itself


def test_the_image_rule_renders_the_broker_security_of_the_issue() -> None:
    props = image_properties({k: _unescape(v) for k, v in _compose()["services"]["kafka"]["environment"].items()})
    protocols = dict(p.split(":") for p in props["listener.security.protocol.map"].split(","))
    assert protocols == {"INTERNAL": "SASL_SSL", "HOST": "SASL_SSL", "CONTROLLER": "SASL_PLAINTEXT"}
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == ";".join(f"User:{u}" for u in SUPER_USERS)
    assert props["ssl.keystore.type"] == props["ssl.truststore.type"] == "PEM"
    assert "listener.name.internal.scram-sha-512.sasl.jaas.config" in props
    assert "listener.name.controller.plain.sasl.jaas.config" in props
    # The image's configure script asks for its JKS variables when an advertised listener reads "SSL://",
    # and for a JAAS file when one matches "SASL_.*://": compose's listener names avoid both.
    advertised = props["advertised.listeners"]
    assert "SSL://" not in advertised and not re.search(r"SASL_.*://", advertised)


def test_the_generated_broker_certificate_names_every_way_to_reach_it(tmp_path: Path) -> None:
    gen = _load_generator()
    written: list[str] = []
    gen.kafka_tls(tmp_path, written)
    cert = x509.load_pem_x509_certificate((tmp_path / gen.KAFKA_KEYSTORE).read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = {*sans.get_values_for_type(x509.DNSName), *map(str, sans.get_values_for_type(x509.IPAddress))}
    assert names == {"kafka", "localhost", "127.0.0.1"}
    before = (tmp_path / gen.KAFKA_KEYSTORE).read_bytes()
    gen.kafka_tls(tmp_path, written := [])
    assert written == [] and (tmp_path / gen.KAFKA_KEYSTORE).read_bytes() == before  # kept on a re-run


# ------------------------------------------------------------------ TLS and authentication


def _producer(kafka: ComposeKafka, security: KafkaSecurity, bootstrap: str | None = None) -> KafkaProducer:
    # Not idempotent: a principal without Write anywhere would be refused InitProducerId (a cluster
    # authorization) before the topic's own refusal, which is the one checked here.
    return KafkaProducer(bootstrap_servers=bootstrap or kafka.internal, acks="all", enable_idempotence=False,
                         max_block_ms=10_000, request_timeout_ms=10_000, **client_security("kafka-python", security))


def test_a_service_connects_over_tls_with_the_ca_on_both_listeners(kafka: ComposeKafka) -> None:
    for bootstrap in (kafka.internal, kafka.host):
        with _producer(kafka, kafka.security("gateway"), bootstrap) as producer:
            producer.send(raw_topic("440705"), value=b"{}").get(timeout=30)


def test_the_workers_async_client_verifies_the_broker_with_the_ca(kafka: ComposeKafka) -> None:
    """aiokafka (the workers' hot path; faust gets the same SSL context) with the service's settings."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.internal, request_timeout_ms=30_000,
                                    **client_security("aiokafka", kafka.security("fund-tracker")))
        await producer.start()
        try:
            await producer.send_and_wait(ENRICHED_EVENTS, b"{}")
        finally:
            await producer.stop()

    asyncio.run(asyncio.wait_for(send(), timeout=120))


def _refused(kafka: ComposeKafka, security: KafkaSecurity) -> None:
    """The gateway's settings with one thing changed cannot even bootstrap (with all of them it can: above)."""
    with pytest.raises(KafkaError):
        KafkaProducer(bootstrap_servers=kafka.internal, max_block_ms=10_000, bootstrap_timeout_ms=10_000,
                      **client_security("kafka-python", security))


def test_a_client_without_tls_is_refused(kafka: ComposeKafka) -> None:
    _refused(kafka, kafka.security("gateway", security_protocol="SASL_PLAINTEXT"))


def test_a_client_trusting_another_ca_is_refused(kafka: ComposeKafka, tmp_path: Path) -> None:
    _load_generator().kafka_tls(tmp_path, [])
    _refused(kafka, kafka.security("gateway", ssl_cafile=tmp_path / "kafka_ca.pem"))


def test_an_unknown_user_or_a_wrong_password_is_refused(kafka: ComposeKafka, tmp_path: Path) -> None:
    wrong = tmp_path / "password"
    wrong.write_text("not-the-password")
    _refused(kafka, kafka.security("gateway", sasl_username="stranger"))
    _refused(kafka, kafka.security("gateway", sasl_password_file=wrong))


def _kcat(kafka: ComposeKafka, ca: Path) -> subprocess.CompletedProcess[str]:
    assert KCAT, "kcat is required (make install adds it: apt-get install kcat)"
    password = (kafka.secrets / "kafka_operator_password").read_text().strip()
    return subprocess.run(
        [KCAT, "-b", kafka.host, "-L", "-m", "10", "-X", "security.protocol=SASL_SSL", "-X", f"ssl.ca.location={ca}",
         "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=operator", "-X", f"sasl.password={password}"],
        capture_output=True, text=True, timeout=60, check=False)


def test_kcat_completes_the_tls_handshake_with_the_ca_only(kafka: ComposeKafka, tmp_path: Path) -> None:
    """librdkafka's own TLS (OpenSSL, host name checked) against the broker certificate.

    The kcat of Debian 12 (librdkafka 2.0.2) cannot finish SCRAM with Kafka 4 (confluentinc/librdkafka#4895,
    see deploy/devstack/tests/test_secure_stack.py), so with the right CA it gets past TLS and fails at
    SASL; with another CA it fails verifying the certificate. A newer kcat lists the topics.
    """
    good = _kcat(kafka, kafka.secrets / "kafka_ca.pem")
    text = good.stdout + good.stderr
    assert "certificate verify failed" not in text
    assert good.returncode == 0 or re.search(r"SASL|[Aa]uthenticat", text), text
    _load_generator().kafka_tls(tmp_path, [])
    bad = _kcat(kafka, tmp_path / "kafka_ca.pem")
    assert bad.returncode != 0
    assert "certificate verify failed" in bad.stdout + bad.stderr


def test_the_healthcheck_client_properties_work_with_the_java_client(kafka: ComposeKafka) -> None:
    """The properties the `kafka` healthcheck writes (SASL_SSL, PEM trust store) with Apache Kafka's client."""
    probe = kafka.compose["services"]["kafka"]["healthcheck"]["test"][1]
    write = _unescape(probe).split(" && ")[0]
    config = kafka.home / "health.properties"
    write = kafka.localize("kafka", write).replace("/tmp/health.properties", str(config))
    subprocess.run(["bash", "-ceu", write], check=True, timeout=30)
    assert re.search(r"--bootstrap-server localhost:9092\b", probe)
    with config.open("a") as fh:
        fh.write(f"bootstrap.servers=localhost:{kafka.ports[9092]}\n")
    out = subprocess.run(["java", "-cp", f"{LIB}/*", str(PROBE), str(config), "produce", department_topic("finance")],
                         capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0 and "ok" in out.stdout, out.stdout + out.stderr


# ------------------------------------------------------------------ ACLs, per principal family


def _may_produce(kafka: ComposeKafka, security: KafkaSecurity, topic: str) -> bool:
    with _producer(kafka, security) as producer:
        try:
            producer.send(topic, value=b"{}").get(timeout=20)
            return True
        except AuthorizationError:
            return False


def _may_read(kafka: ComposeKafka, security: KafkaSecurity, topic: str, group: str | None = None) -> bool:
    consumer = KafkaConsumer(bootstrap_servers=kafka.internal, group_id=group, enable_auto_commit=False,
                             auto_offset_reset="earliest", **client_security("kafka-python", security))
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        for _ in range(60):
            if consumer.poll(timeout_ms=1000).get(tp):
                return True
            if topic in consumer._client.cluster.unauthorized_topics:
                return False
        raise AssertionError(f"neither records nor a refusal from {topic} within 60 polls")
    except AuthorizationError:
        return False
    finally:
        consumer.close()


def test_services_get_only_what_they_need(kafka: ComposeKafka) -> None:
    assert not _may_produce(kafka, kafka.security("gateway"), department_topic("finance"))
    assert not _may_produce(kafka, kafka.security("fund-tracker"), VIOLATIONS)
    assert _may_produce(kafka, kafka.security("compliance"), VIOLATIONS)
    assert not _may_read(kafka, kafka.security("compliance"), raw_topic("440705"))
    assert _may_read(kafka, kafka.security("fund-tracker"), raw_topic("440705"))


def test_a_bureau_writes_its_own_region_only(kafka: ComposeKafka) -> None:
    bureau = kafka.as_user("bureau-440705")
    assert _may_produce(kafka, bureau, raw_topic("440705"))
    assert not _may_produce(kafka, bureau, raw_topic("440781"))
    assert not _may_read(kafka, bureau, raw_topic("440705"))


def test_an_auditor_reads_its_department_only(kafka: ComposeKafka) -> None:
    auditor = kafka.as_user("auditor-agriculture")
    group = f"auditor-agriculture-{uuid.uuid4().hex[:6]}"  # its own group prefix
    assert _may_read(kafka, auditor, department_topic("agriculture"), group=group)
    assert not _may_read(kafka, auditor, department_topic("finance"))
    assert not _may_produce(kafka, auditor, department_topic("agriculture"))


def test_the_acl_step_is_idempotent(kafka: ComposeKafka) -> None:
    out = kafka.run_oneshot("kafka-acls")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "applied the ACLs of" in out.stdout
