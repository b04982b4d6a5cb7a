"""Row parsing and mapping for the publisher: a re-export of `fundtrail_schemas.tabular`.

The mapping lives in the contract package so the gateway's `POST /v1/imports` reports exactly the
same row-level errors for the same file as `fundtrail publish` does.
"""

from fundtrail_schemas.tabular import (
    COLUMN_ALIASES,
    FORMATS,
    MappedRow,
    RowDefaults,
    RowError,
    TabularError,
    TabularReport,
    content_hash,
    detect_format,
    map_file,
    map_record,
    natural_key,
    read_records,
)

__all__ = [
    "COLUMN_ALIASES",
    "FORMATS",
    "MappedRow",
    "RowDefaults",
    "RowError",
    "TabularError",
    "TabularReport",
    "content_hash",
    "detect_format",
    "map_file",
    "map_record",
    "natural_key",
    "read_records",
]
