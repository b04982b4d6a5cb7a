"""Command line: `python -m fundtrail_compliance worker`, and `fundtrail replay` (entry point)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="compliance: rule packs, violations, replay")


@app.command("worker")
def worker() -> None:
    """Run the worker: ensure topics, migrate the database, then consume until stopped."""
    from .main import run_worker

    run_worker()


@app.command("check")
def check(packs: Annotated[Path, typer.Argument(help="Directory of rule packs to validate")]) -> None:
    """Validate a pack directory (every expression compiles, parameters typed, ids unique)."""
    from fundtrail_schemas.rulepack import RulePackError

    from .packs import load_dir

    try:
        _, compiled = load_dir(packs)
    except RulePackError as exc:
        typer.echo(f"invalid: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"ok: {len(compiled.packs)} packs, {len(compiled.rules)} rule versions, {len(compiled.rule_ids())} rules"
    )


def replay(
    packs: Annotated[Path, typer.Option("--packs", help="Directory of candidate rule packs")],
    bootstrap: Annotated[str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers")],
    database_url: Annotated[str, typer.Option(envvar="DATABASE_URL", help="Database with the recorded verdicts")],
    start: Annotated[str | None, typer.Option("--from", help="Range start (ISO date or timestamp)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Range end, exclusive (ISO date or timestamp)")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the JSON report")] = Path("replay-report.json"),
    examples: Annotated[int, typer.Option(help="Examples per rule and kind of difference")] = 3,
    grace_days: Annotated[int, typer.Option(help="Grace period for late evidence, in days")] = 15,
    parallel: Annotated[
        bool | None,
        typer.Option(
            "--parallel/--serial",
            help="Evaluate in processes, one per group of partitions and one for the window rules (the"
            " verdicts are the serial replay's) [default: when this process may run on more than one core]",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Partition processes of a parallel replay [default: the cores usable]", min=0)
    ] = 0,
) -> None:
    """Re-evaluate history from the enriched log under candidate packs; diff against the recorded verdicts."""
    from datetime import timedelta

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from fundtrail_runtime.worker import tune_gc
    from fundtrail_schemas.rulepack import RulePackError

    from . import replay as rp
    from .logreader import read_log, read_log_partitions, read_log_prejudged
    from .packs import load_dir
    from .partitioned import NotPartitionedByFund, evaluate_partitioned, window_types

    console = Console()
    try:
        _, candidate = load_dir(packs)
    except RulePackError as exc:
        console.print(f"[red]candidate packs are invalid:[/] {exc}")
        raise typer.Exit(1) from exc
    tune_gc()  # a replay evaluates like the worker: same collector settings
    lo, hi = rp.parse_bound(start), rp.parse_bound(end)
    if parallel is None:
        parallel = len(os.sched_getaffinity(0)) > 1
    values: Iterator[bytes] | Iterator[tuple[bytes, bytes]]
    # Partitioned (a process per group of partitions and one for the window rules) when the window
    # rules allow it; else the reader process evaluates the plain conditions ahead.
    partitioned = parallel and window_types(candidate) is not None
    if partitioned:
        records, total = read_log_partitions(bootstrap)
    elif parallel:
        values, total = read_log_prejudged(bootstrap, packs, candidate.fingerprint())
    else:
        values, total = read_log(bootstrap)
    with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task("replay", total=total)
        if partitioned:
            try:
                result = evaluate_partitioned(
                    records, candidate, packs, start=lo, end=hi, grace=timedelta(days=grace_days),
                    workers=workers or len(os.sched_getaffinity(0)), progress=lambda k: bar.advance(task, k),
                )
            except NotPartitionedByFund as exc:
                # Some fund's events sit on several partitions: read the log again for the one-stream replay.
                console.print(f"[yellow]{exc}; replaying as one stream[/]")
                partitioned = False
                values, total = read_log_prejudged(bootstrap, packs, candidate.fingerprint())
                bar.reset(task, total=total)
        if not partitioned:
            result = rp.evaluate(values, candidate, start=lo, end=hi, grace=timedelta(days=grace_days),
                                 progress=lambda k: bar.advance(task, k))
    report = rp.diff(result.violations, rp.recorded_verdicts(database_url, lo, hi), examples)
    report["run"] = {
        "packs": str(packs), "from": start, "to": end, "events": result.events, "duplicates": result.duplicates,
        "undecodable": result.undecodable, "evaluation_errors": dict(result.errors_by_rule),
    }
    table = Table(title=f"replay {start or '…'} → {end or '…'}: {result.events} events")
    for col in ("rule", "new", "vanished", "changed", "unchanged"):
        table.add_column(col, justify="left" if col == "rule" else "right")
    for rule, c in report["per_rule"].items():
        table.add_row(rule, *(str(c[k]) for k in ("new", "vanished", "changed", "unchanged")))
    t = report["totals"]
    table.add_row("[b]total", *(f"[b]{t[k]}" for k in ("new", "vanished", "changed", "unchanged")))
    console.print(table)
    for kind, items in report["examples"].items():
        for it in items:
            console.print(f"  {kind}: {it}")
    rp.write_report(out, report)
    console.print(f"report written to {out}")


app.command("replay")(replay)


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app()
