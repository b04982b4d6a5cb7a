"""The `fundtrail` command: contract tools here, service sub-commands discovered by entry point.

Services register typer apps under the entry-point group `fundtrail.cli`, so this package never
imports a service and services never import each other.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import typer
from rich.console import Console

from .demo.cli import demo_app

app = typer.Typer(no_args_is_help=True, help="fundtrail: compliance network for rural-revitalization funds")
console = Console()


@app.command("schemas")
def schemas_cmd(check: bool = typer.Option(False, help="Only check that files match the models")) -> None:
    """Export JSON Schema files and golden examples (or check them)."""
    from .examples import write_examples
    from .jsonschema import JSONSCHEMA_DIR, drifted, write_schemas

    if check:
        bad = drifted()
        if bad:
            console.print(f"[red]schemas drifted from the models:[/] {', '.join(bad)}; run `make schemas`")
            raise typer.Exit(1)
        console.print("schemas are up to date")
        return
    paths = write_schemas()
    examples = write_examples()
    console.print(f"wrote {len(paths)} schema files to {JSONSCHEMA_DIR} and {len(examples)} golden examples")


@app.command("topics")
def topics_cmd(
    bootstrap: str = typer.Option(..., envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers"),
) -> None:
    """Create every topic of the registry (the regions' raw topics too) that does not exist yet."""
    from .kafka_admin import ensure_topics
    from .topics import configured_topics, registry_topics

    created = ensure_topics(bootstrap, configured_topics(base=registry_topics()))
    console.print(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else ""))


db_app = typer.Typer(help="Database migrations")
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")


@db_app.command("upgrade")
def db_upgrade(
    database_url: str = typer.Option(..., envvar="DATABASE_URL", help="SQLAlchemy URL of the database"),
    revision: str = "heads",
) -> None:
    """Apply migrations."""
    from .db import upgrade

    upgrade(database_url, revision)
    console.print("database is at the latest revision")


def _register_plugins() -> None:
    for ep in entry_points(group="fundtrail.cli"):
        obj = ep.load()
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=ep.name)
        else:
            app.command(ep.name)(obj)


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _register_plugins()
    app()


if __name__ == "__main__":
    main()
