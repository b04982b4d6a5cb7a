"""Command line: `fundtrail-tracker worker` (also `python -m fundtrail_tracker worker`)."""

from __future__ import annotations

import logging

import typer

app = typer.Typer(no_args_is_help=True, help="fund-tracker: validated fund ledger and tamper-evident trail")


@app.command("worker")
def worker() -> None:
    """Run the worker: ensure topics, migrate the database, then consume until stopped."""
    from .main import run_worker

    run_worker()


@app.command("keygen")
def keygen(path: str = typer.Argument(..., help="Where to write the Ed25519 private key (PEM)")) -> None:
    """Create a checkpoint signing key (and PATH.pub with its public half)."""
    from pathlib import Path

    from .keys import load_signing_key, public_key_path

    target = Path(path)
    if target.exists():
        raise typer.BadParameter(f"{target} exists; refusing to replace a signing key")
    load_signing_key(target, dev_mode=True)
    typer.echo(f"wrote {target} and {public_key_path(target)}")


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app()
