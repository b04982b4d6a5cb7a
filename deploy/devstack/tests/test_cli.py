"""``fundtrail-devstack`` CLI and settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fundtrail_devstack import DevstackSettings, KafkaNode, PostgresNode, free_port, free_ports
from fundtrail_devstack.cli import app
from fundtrail_devstack.testing import remove_tree, world_traversable_tmpdir

runner = CliRunner()


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    defaults = DevstackSettings()
    assert (defaults.kafka_port, defaults.kafka_controller_port, defaults.pg_port) == (9092, 9093, 55432)
    monkeypatch.setenv("FUNDTRAIL_DEVSTACK_KAFKA_PORT", "19092")
    monkeypatch.setenv("FUNDTRAIL_DEVSTACK_PG_PORT", "15432")
    monkeypatch.setenv("FUNDTRAIL_DEVSTACK_HOME", str(tmp_path))
    s = DevstackSettings()
    assert s.kafka_port == 19092 and s.pg_port == 15432
    assert s.kafka_home == tmp_path / "kafka" and s.pg_home == tmp_path / "postgres"


def test_free_port_is_bindable() -> None:
    import socket

    a, b = free_ports(2)
    assert a != b
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))


def test_status_of_stopped_servers_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["kafka", "status", "--home", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "running" in result.output
    result = runner.invoke(app, ["db", "status", "--home", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert runner.invoke(app, ["kafka", "down", "--home", str(tmp_path)]).exit_code == 0


@pytest.mark.integration
def test_db_up_status_down() -> None:
    home = world_traversable_tmpdir("fundtrail-cli-")
    port = free_port()
    try:
        result = runner.invoke(app, ["db", "up", "--home", str(home), "--port", str(port)])
        assert result.exit_code == 0, result.output
        assert f"DATABASE_URL=postgresql+psycopg://fundtrail@127.0.0.1:{port}/fundtrail" in result.output
        result = runner.invoke(app, ["db", "status", "--home", str(home), "--port", str(port)])
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["db", "down", "--home", str(home)])
        assert result.exit_code == 0 and "stopped" in result.output
    finally:
        PostgresNode(home / "postgres", port).stop()
        remove_tree(home)


@pytest.mark.integration
def test_kafka_up_status_down(tmp_path: Path) -> None:
    port, controller_port = free_ports(2)
    args = ["--home", str(tmp_path)]
    try:
        result = runner.invoke(
            app, ["kafka", "up", *args, "--port", str(port), "--controller-port", str(controller_port)]
        )
        assert result.exit_code == 0, result.output
        assert f"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port}" in result.output
        # status/down without --port find the ports the node was started with
        result = runner.invoke(app, ["kafka", "status", *args])
        assert result.exit_code == 0, result.output
        assert f"127.0.0.1:{port}" in result.output
        result = runner.invoke(app, ["kafka", "down", *args])
        assert result.exit_code == 0 and "stopped" in result.output
        assert runner.invoke(app, ["kafka", "status", *args]).exit_code == 1
    finally:
        KafkaNode(tmp_path / "kafka", port, controller_port).stop()
