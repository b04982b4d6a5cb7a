"""`fundtrail publish FILE`: validate a bureau's file locally, then publish its events."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from fundtrail_schemas.tabular import RowError

MAX_ERRORS_SHOWN = 50


def publish(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="Events as JSON Lines (.jsonl), CSV (.csv) or Excel (.xlsx)")],
    bureau: Annotated[str | None, typer.Option("--bureau", help="source_bureau for rows without one")] = None,
    region: Annotated[str | None, typer.Option("--region", help="region_code for rows without one")] = None,
    event_type: Annotated[str | None, typer.Option("--event-type", help="event_type for rows without one")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl, csv or xlsx (default: from the name)")] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="XLSX sheet (default: the first)")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Publish nothing when any row is invalid")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only validate and report row errors")] = False,
    bootstrap: Annotated[str | None, typer.Option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS",
                                                  help="Kafka bootstrap servers")] = None,
    state_dir: Annotated[Path | None, typer.Option(
        "--state-dir", envvar=["FUNDTRAIL_PUBLISH_STATE_DIR", "FUNDTRAIL_TRACKER_STATE_DIR"],
        help="Where the publish journal lives")] = None,
) -> None:
    """Validate FILE locally (row-level errors with row numbers), then publish its new events."""
    from fundtrail_schemas.events import now_utc
    from fundtrail_schemas.tabular import RowDefaults, detect_format, map_file
    from fundtrail_schemas.telemetry import setup_tracing

    console = Console(stderr=True)
    defaults = RowDefaults(source_bureau=bureau, region_code=region, event_type=event_type)
    try:
        kind = fmt or detect_format(file.name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    report = map_file(file.read_bytes(), kind, defaults=defaults, published_at=now_utc(), sheet=sheet)
    _print_errors(console, report.errors)
    console.print(f"{file.name}: {report.total_rows} rows, {len(report.rows)} valid, "
                  f"{len(report.rejected_rows)} with errors")
    if any(e.row == 0 for e in report.errors):
        raise typer.Exit(2)
    if dry_run:
        raise typer.Exit(1 if report.errors else 0)
    if strict and report.errors:
        console.print("[red]--strict: nothing published[/]")
        raise typer.Exit(2)

    from .sdk import Publisher
    from .settings import PublisherSettings

    overrides: dict[str, object] = {}
    if bootstrap:
        overrides["kafka_bootstrap_servers"] = bootstrap
    if state_dir:
        overrides["state_dir"] = state_dir
    try:
        settings = PublisherSettings(**overrides)  # type: ignore[arg-type]
    except Exception as exc:
        console.print(f"[red]configuration: {exc}[/]")
        raise typer.Exit(2) from exc
    setup_tracing("fundtrail-publisher")
    progress = Progress(TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=console, transient=False)
    topic = settings.topic()  # a bureau's Kafka user may write only its region's topics
    with progress, Publisher(settings.kafka_bootstrap_servers, settings.state_dir, client_id=settings.client_id,
                             topic=topic) as pub:
        task = progress.add_task("publish", total=len(report.rows))
        summary = pub.publish_rows(report.rows, on_progress=lambda n: progress.advance(task, n))
    _print_errors(console, summary.errors)
    rejected = len(report.rejected_rows) + summary.rejected
    console.print(
        f"published [bold]{summary.published}[/], rejected [bold]{rejected}[/], "
        f"already published [bold]{summary.already_published}[/]"
        + (f", failed [bold red]{summary.failed}[/]" if summary.failed else "")
    )
    if rejected or summary.failed:
        raise typer.Exit(1)


def _print_errors(console: Console, errors: Sequence[RowError]) -> None:
    if not errors:
        return
    table = Table("row", "field", "problem", "reason", title="rejected rows", title_justify="left")
    for e in errors[:MAX_ERRORS_SHOWN]:
        table.add_row(str(e.row), e.field, e.message, e.reason)
    console.print(table)
    if len(errors) > MAX_ERRORS_SHOWN:
        console.print(f"... and {len(errors) - MAX_ERRORS_SHOWN} more errors")
