"""The three services on a SASL + ACL broker, each as its own Kafka user (as `make run` starts them),
checked with independent clients: kcat (librdkafka) and Apache Kafka's Java client with the
configuration files `make run` writes.

kcat from Debian 12 (librdkafka 2.0.2) cannot authenticate with SCRAM to a Kafka 4 broker at all
(librdkafka before 2.6.1 repeats the client nonce in its final message; Kafka 4 checks it strictly,
confluentinc/librdkafka#4895), so kcat is used here only for what needs no login.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaProducer

from fundtrail_devstack.kafka import KafkaNode
from fundtrail_devstack.kafka_auth import write_client_configs
from fundtrail_devstack.stack import Stack
from fundtrail_schemas.examples import load_examples
from fundtrail_schemas.kafka_security import KafkaSecurity, client_security
from fundtrail_schemas.topics import VIOLATIONS, department_topic, raw_topic

pytestmark = pytest.mark.integration

KCAT = shutil.which("kcat")
LIB = Path(__file__).resolve().parents[2] / "kafka" / "lib"
PROBE = Path(__file__).resolve().parents[2] / "kafka" / "tools" / "AclProbe.java"
USERS = ("bureau-440700", "bureau-440705", "auditor-agriculture")


@pytest.fixture(scope="module")
def stack(secure_kafka_node: KafkaNode, pg_node: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = Path(tmp_path_factory.mktemp("secure-stack"))
    stack = Stack(home=home, bootstrap=secure_kafka_node.bootstrap,
                  database_url=pg_node.create_database(f"secure_{uuid.uuid4().hex[:12]}"),
                  group_suffix=f"-secure-{uuid.uuid4().hex[:6]}", kafka_security=secure_kafka_node.security)
    stack.prepare()
    stack.start()
    try:
        stack.wait_ready(timeout=240)
        yield stack
    finally:
        codes = stack.stop()
        assert all(c in (0, -15, None) for c in codes.values()), codes


@pytest.fixture(scope="module")
def client_configs(stack: Stack, secure_kafka_node: KafkaNode) -> dict[str, tuple[Path, Path]]:
    assert secure_kafka_node.security is not None
    for user in USERS:  # the password files a bureau's own process would be given
        (stack.home / f"{user}.password").write_text(secure_kafka_node.security.password(user))
    return write_client_configs(stack.home / "kafka-clients", stack.bootstrap, secure_kafka_node.security, USERS)


def _kcat(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    assert KCAT
    return subprocess.run([KCAT, *args], input=stdin, capture_output=True, timeout=60, check=False)


def test_kcat_without_credentials_is_refused(stack: Stack) -> None:
    assert KCAT, "kcat is required (make install adds it: apt-get install kcat)"
    out = _kcat("-b", stack.bootstrap, "-L", "-m", "5")
    assert out.returncode != 0
    assert b"topic " not in out.stdout


def _probe(config: Path, op: str, topic: str) -> subprocess.CompletedProcess[str]:
    """Apache Kafka's Java client (deploy/kafka/tools/AclProbe.java) with a generated properties file."""
    return subprocess.run(["java", "-cp", f"{LIB}/*", str(PROBE), str(config), op, topic],
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_bureau_publishes_with_its_java_config_and_the_services_record_it(
    stack: Stack, client_configs: dict[str, tuple[Path, Path]]
) -> None:
    event = {**load_examples()["FundAllocated"], "event_id": str(uuid.uuid4()),
             "fund_doc_no": f"江财农〔2026〕{uuid.uuid4().int % 10**6}号"}
    with KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all",
                       **client_security("kafka-python", KafkaSecurity(
                           security_protocol="SASL_PLAINTEXT", sasl_username="bureau-440700",
                           sasl_password_file=stack.home / "bureau-440700.password"))) as producer:
        producer.send(raw_topic("440700"), key=event["fund_doc_no"].encode(), value=json.dumps(event).encode()).get(30)
    deadline = time.monotonic() + 120
    dsn = stack.database_url.replace("postgresql+psycopg://", "postgresql://")
    while True:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("select 1 from processed_event where event_id = %s", (event["event_id"],)).fetchone()
        if row:
            break
        assert time.monotonic() < deadline, "fund-tracker did not record the bureau's event"
        time.sleep(0.5)
    assert all(svc.alive() for svc in stack.services.values())


def test_the_java_client_as_a_bureau_publishes_on_its_region_only(client_configs: dict[str, tuple[Path, Path]]) -> None:
    java, _ = client_configs["bureau-440705"]
    assert _probe(java, "produce", raw_topic("440705101")).returncode == 0  # a town inside 新会区
    refused = _probe(java, "produce", raw_topic("440781"))
    assert refused.returncode == 3, refused.stdout + refused.stderr


def test_the_java_client_as_the_agriculture_auditor_reads_its_topic_and_nothing_else(
    client_configs: dict[str, tuple[Path, Path]], secure_kafka_node: KafkaNode
) -> None:
    java, _ = client_configs["auditor-agriculture"]
    with KafkaProducer(bootstrap_servers=secure_kafka_node.bootstrap, **secure_kafka_node.client_options()) as p:
        p.send(department_topic("agriculture"), b"{}").get(30)  # something to read
    own = _probe(java, "consume", department_topic("agriculture"))
    assert own.returncode == 0, own.stdout + own.stderr
    for topic in (department_topic("finance"), VIOLATIONS):
        refused = _probe(java, "consume", topic)
        assert refused.returncode == 3, refused.stdout + refused.stderr
    assert _probe(java, "produce", department_topic("agriculture")).returncode == 3
