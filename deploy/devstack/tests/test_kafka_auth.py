"""The secured broker's configuration and the client files `make run` writes (no broker needed)."""

from __future__ import annotations

import stat
from pathlib import Path

from fundtrail_devstack.kafka import KafkaNode
from fundtrail_devstack.kafka_auth import BrokerSecurity, write_client_configs


def test_passwords_are_random_private_and_stable(tmp_path: Path) -> None:
    security = BrokerSecurity(tmp_path / "users")
    first = security.password("gateway")
    assert first == security.password("gateway") != security.password("compliance")
    assert stat.S_IMODE(security.password_file("gateway").stat().st_mode) == 0o600
    assert security.env("gateway")["KAFKA_SASL_PASSWORD_FILE"] == str(security.password_file("gateway"))


def test_the_secured_broker_authorizes_by_acl_only(tmp_path: Path) -> None:
    node = KafkaNode(tmp_path / "kafka", 19092, 19093, security=BrokerSecurity(tmp_path / "users"))
    config = dict(line.split("=", 1) for line in node.render_config().splitlines() if "=" in line and
                  not line.startswith("#"))
    assert config["listeners"] == "SASL_PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert config["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert config["allow.everyone.if.no.acl.found"] == "false"
    assert config["super.users"] == "User:broker;User:controller;User:operator"
    assert config["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert KafkaNode.configured_ports(tmp_path / "kafka") is None
    node.write_config()
    assert KafkaNode.configured_ports(tmp_path / "kafka") == (19092, 19093)


def test_the_plaintext_broker_is_unchanged(tmp_path: Path) -> None:
    text = KafkaNode(tmp_path / "kafka", 19092, 19093).render_config()
    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in text
    assert "authorizer" not in text and "sasl" not in text


def test_client_files_per_user(tmp_path: Path) -> None:
    security = BrokerSecurity(tmp_path / "users")
    files = write_client_configs(tmp_path / "clients", "127.0.0.1:9092", security,
                                 ["bureau-440705", "auditor-agriculture", "operator"])
    java, kcat = files["auditor-agriculture"]
    java_text, kcat_text = java.read_text(), kcat.read_text()
    assert "security.protocol=SASL_PLAINTEXT" in java_text and "sasl.mechanism=SCRAM-SHA-512" in java_text
    assert f'password="{security.password("auditor-agriculture")}"' in java_text
    assert f"sasl.password={security.password('auditor-agriculture')}" in kcat_text
    # Auditors may only use their own consumer groups: their tools get one.
    assert "group.id=auditor-agriculture-console" in java_text and "group.id=" not in files["operator"][0].read_text()
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for pair in files.values() for p in pair)
