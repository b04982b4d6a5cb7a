"""`fundtrail topics`, `fundtrail acls` and `fundtrail db`: what an operator runs against Kafka and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()


def topics(
    bootstrap: str = typer.Option(..., envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers"),
) -> None:
    """Create every topic of the registry (the regions' raw topics too) that does not exist yet."""
    from fundtrail_schemas.topics import configured_topics, registry_topics

    from .kafka_admin import ensure_topics

    created = ensure_topics(bootstrap, configured_topics(base=registry_topics()))
    console.print(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else ""))


def acls(
    bootstrap: str = typer.Option(..., envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers"),
    credentials_dir: Path | None = typer.Option(
        None, envvar="FUNDTRAIL_KAFKA_CREDENTIALS_DIR",
        help="folder of <user>.password files: those users' SCRAM-SHA-512 credentials are set too"),
) -> None:
    """Create every principal's ACLs (fundtrail_schemas.kafka_acl); run it as the operator (KAFKA_SASL_*)."""
    from fundtrail_schemas.kafka_acl import principals
    from fundtrail_schemas.kafka_security import KafkaSecurity

    from .kafka_acls import apply_principals, passwords_from_dir

    users = principals()
    passwords = passwords_from_dir(credentials_dir, [u.name for u in users]) if credentials_dir else {}
    applied = apply_principals(bootstrap, KafkaSecurity(), passwords, users)
    console.print(f"applied the ACLs of {len(applied)} Kafka users; set {len(passwords)} SCRAM credentials")


db_app = typer.Typer(help="Database migrations")


@db_app.command("upgrade")
def db_upgrade(
    database_url: str = typer.Option(..., envvar="DATABASE_URL", help="SQLAlchemy URL of the database"),
    revision: str = "heads",
) -> None:
    """Apply migrations."""
    from .db import upgrade

    upgrade(database_url, revision)
    console.print("database is at the latest revision")
