"""`fundtrail demo generate`: write a generated year of Jiangmen and its expected-violations manifest."""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

demo_app = typer.Typer(no_args_is_help=True, help="Generated demo data with seeded violations")
_err = Console(stderr=True)


class OutputFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


@demo_app.command("generate")
def generate_cmd(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed and size give byte-identical output")] = 7,
    size: Annotated[float, typer.Option(help="Scale: 1.0 ≈ 50 funds, several thousand events; 0.1 for tests")] = 1.0,
    out: Annotated[Path | None, typer.Option(help="Events file (default: standard output)")] = None,
    expected: Annotated[Path | None, typer.Option(help="Write the expected-violations manifest (JSON) here")] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="jsonl (wire form) or csv (the publisher's columns)")
    ] = OutputFormat.JSONL,
) -> None:
    """Generate a year of special funds with deliberate violations of every catalogue rule."""
    from . import generate
    from .output import write_csv, write_jsonl

    if size <= 0:
        raise typer.BadParameter("size must be positive", param_hint="--size")
    dataset = generate(seed, size)
    writer = write_csv if fmt is OutputFormat.CSV else write_jsonl
    started = time.perf_counter()
    if out is None:
        count = writer(dataset.events, sys.stdout)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8", newline="") as fh:
            count = writer(dataset.events, fh)
    elapsed = time.perf_counter() - started
    if expected is not None:
        expected.parent.mkdir(parents=True, exist_ok=True)
        expected.write_text(json.dumps(dataset.manifest(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    summary = dataset.summary()
    _err.print(
        f"{count} events ({summary['funds']} funds, {summary['projects']} projects, "
        f"{summary['expected_violations']} seeded violations, {summary['clean_scenarios']} near-misses) "
        f"in {elapsed:.1f}s" + (f" → {out}" if out else "") + (f"; manifest → {expected}" if expected else "")
    )
