"""The `fundtrail` command: contract tools here, every other sub-command discovered by entry point.

Packages (runtime, demo, publish, verify) and services register typer apps under the entry-point
group `fundtrail.cli`, so the contract imports none of them and whoever installs one package gets
its commands and nothing else.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import typer
from rich.console import Console

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
