"""Writing a dataset: JSONL (the wire form) or CSV (the publisher's column mapping, `fundtrail_schemas.tabular`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from fundtrail_schemas.events import Envelope
from fundtrail_schemas.eventspec import bureau_specs


def csv_columns() -> list[str]:
    """Every source-event field once, envelope fields first: the header `tabular.map_file` reads."""
    columns: list[str] = []
    for spec in bureau_specs():
        for name in spec.model.model_fields:
            if name not in columns:
                columns.append(name)
    return columns


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def csv_rows(events: Iterable[Envelope]) -> Iterator[list[str]]:
    """The header, then one row per event (fields an event type lacks stay empty)."""
    columns = csv_columns()
    yield columns
    for event in events:
        data = event.model_dump(mode="json")
        yield [_cell(data.get(c)) for c in columns]


def write_jsonl(events: Iterable[Envelope], out: TextIO) -> int:
    """One event per line in its wire form; returns the number written."""
    n = 0
    for event in events:
        out.write(event.model_dump_json())
        out.write("\n")
        n += 1
    return n


def write_csv(events: Iterable[Envelope], out: TextIO) -> int:
    """CSV with the contract field names as headers; returns the number of data rows."""
    writer = csv.writer(out, lineterminator="\n")
    n = -1
    for row in csv_rows(events):
        writer.writerow(row)
        n += 1
    return n
