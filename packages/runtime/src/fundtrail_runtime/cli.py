"""`fundtrail topics` and `fundtrail db`: what an operator runs against Kafka and PostgreSQL."""

from __future__ import annotations

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
