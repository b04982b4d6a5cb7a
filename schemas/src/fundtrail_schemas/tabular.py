"""Bureau files → contract events, with row-level errors. Pure: bytes in, events and errors out.

Used by the publisher CLI (`fundtrail publish FILE`) and by the gateway's `POST /v1/imports`, so
both give the same row-level report for the same file.

Formats
- ``jsonl``: one event per line in its wire form (the JSON Schema files); row = line number.
- ``csv``: UTF-8 (with or without BOM) or GB18030; first row is the header; row = spreadsheet
  row (header is row 1).
- ``xlsx``: the first sheet (or the one named); first non-empty row is the header; row = sheet row.
  Needs ``openpyxl`` (imported only when an XLSX file is read).

Columns (CSV/XLSX): every contract field name (``payment_id``, ``amount_fen``, ...) and the
Chinese headers in `COLUMN_ALIASES`. Headers are matched case-insensitively, full-width brackets
count as ASCII ones. Besides the event fields:
- ``<name>_yuan`` (e.g. ``amount_yuan``, 金额（元）) is converted exactly to ``<name>_fen``; at most
  two decimals, never through a float;
- ``source_record_key`` (来源记录号) names the source record; without it the natural key of the
  event type is used (`natural_key`, from `eventspec`);
- empty cells are absent fields; ``level`` defaults to the level the region code denotes;
  ``source_bureau``, ``region_code`` and ``event_type`` may come from `RowDefaults`;
- times without an offset are China Standard Time (UTC+08:00); a bare date means its midnight;
- booleans: true/false, 1/0, yes/no, 是/否; ``bidders`` is a JSON array.
``event_id`` defaults to ``derive_event_id(source_bureau, source_record_key)`` so importing the
same file twice yields the same ids; ``published_at`` defaults to the time given by the caller.
`content_hash` fingerprints an event without ``published_at`` (so a re-import compares equal).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel

from .decode import MAX_INT_DIGITS, JsonLimitError, ReasonCode, Rejection, load_json_bounded, parse_object
from .events import Envelope, derive_event_id
from .eventspec import bureau_specs, natural_key
from .types import level_of_region

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

FORMATS = ("jsonl", "csv", "xlsx")
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")
RECORD_KEY = "source_record_key"

# Chinese (and a few English) headers → field names. Matched after `_normalize_header`.
COLUMN_ALIASES: dict[str, str] = {
    "事件类型": "event_type",
    "事件编号": "event_id",
    "来源记录号": RECORD_KEY,
    "记录号": RECORD_KEY,
    "发生时间": "occurred_at",
    "业务日期": "occurred_at",
    "发布时间": "published_at",
    "发布单位": "source_bureau",
    "单位代码": "source_bureau",
    "层级": "level",
    "区划代码": "region_code",
    "指标文号": "fund_doc_no",
    "项目编号": "project_id",
    "项目名称": "project_name",
    "金额(分)": "amount_fen",
    "金额(元)": "amount_yuan",
    "资金用途": "purpose_category",
    "接收层级": "recipient_level",
    "接收区划": "recipient_region_code",
    "截止日期": "deadline",
    "标题": "title",
    "调拨编号": "transfer_id",
    "下拨层级": "to_level",
    "下拨区划": "to_region_code",
    "退回层级": "to_level",
    "退回区划": "to_region_code",
    "建设单位": "owner_unit",
    "项目类别": "category",
    "预算(分)": "budget_fen",
    "预算(元)": "budget_yuan",
    "计划采购方式": "planned_procurement_method",
    "采购类别": "procurement_category",
    "立项文号": "approval_doc_no",
    "审批文号": "approval_doc_no",
    "审批领导": "approving_official_id",
    "用地批准文号": "land_use_approval_ref",
    "中标编号": "award_id",
    "采购方式": "method",
    "中标单位编号": "winner_vendor_id",
    "投标人": "bidders",
    "交易平台编号": "platform_ref",
    "招标公告日期": "tender_published_on",
    "开标日期": "bids_opened_on",
    "合同编号": "contract_id",
    "供应商编号": "vendor_id",
    "预付比例(基点)": "prepayment_share_bps",
    "质保金比例(基点)": "retention_share_bps",
    "付款条款": "payment_terms",
    "变更编号": "amendment_id",
    "变更金额(分)": "delta_fen",
    "变更金额(元)": "delta_yuan",
    "是否批准": "approved",
    "变更原因": "reason",
    "原因": "reason",
    "支付编号": "payment_id",
    "付款编号": "payment_id",
    "收款单位编号": "payee_vendor_id",
    "收款人": "payee_name",
    "收款账号": "payee_account",
    "账户类型": "account_kind",
    "发票号": "invoice_no",
    "发票号码": "invoice_no",
    "付款类型": "payment_kind",
    "经办人": "handler_id",
    "审批人": "approver_id",
    "用途": "purpose",
    "验收编号": "acceptance_id",
    "是否通过": "passed",
    "验收进度(基点)": "progress_bps",
    "结算金额(分)": "settlement_amount_fen",
    "结算金额(元)": "settlement_amount_yuan",
    "是否关闭": "closed",
    "退回编号": "return_id",
    "调剂编号": "adjustment_id",
    "调整后预算(分)": "new_budget_fen",
    "调整后预算(元)": "new_budget_yuan",
}

# What a row may be: the types bureaus publish (their natural keys: `eventspec.natural_key`).
_SOURCE_MODELS: dict[str, type[BaseModel]] = {s.name: s.model for s in bureau_specs()}
_TRUE = {"true", "1", "yes", "y", "是", "t"}
_FALSE = {"false", "0", "no", "n", "否", "f"}
_INT_RE = re.compile(r"^[+-]?\d+$")
# Amounts are at most 10**15 fen: a cell longer than this is not an amount, and Decimal arithmetic
# on exponents like 1e999990 overflows or costs seconds of CPU (int() of it: ~26 s).
MAX_AMOUNT_CHARS = 40
TOO_MANY_ROWS = "too_many_rows"
MAX_AMOUNT_EXPONENT = 16


class TabularError(ValueError):
    """The file as a whole cannot be read (not the format it claims, no header, ...)."""


@dataclass(frozen=True)
class RowError:
    """One problem with one row: the row number users see, the field, what is wrong."""

    row: int
    field: str
    message: str
    reason: str = ReasonCode.INVALID_FIELD.value
    """A `ReasonCode` value, or ``duplicate_row`` / ``unreadable_file`` (row 0: the whole file)."""

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message, "reason": self.reason}


@dataclass(frozen=True)
class MappedRow:
    """A row that is a valid event."""

    row: int
    event: Envelope
    record_key: str
    content_hash: str


@dataclass(frozen=True)
class RowDefaults:
    """Values for envelope fields a file may leave out (all rows share them)."""

    source_bureau: str | None = None
    region_code: str | None = None
    event_type: str | None = None


@dataclass
class TabularReport:
    """The row-level outcome of mapping a file."""

    format: str
    total_rows: int = 0
    rows: list[MappedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected_rows(self) -> list[int]:
        """Row numbers with at least one error, ascending."""
        return sorted({e.row for e in self.errors})

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (what `POST /v1/imports` returns)."""
        return {
            "format": self.format,
            "total_rows": self.total_rows,
            "valid_rows": len(self.rows),
            "rejected_rows": self.rejected_rows,
            "errors": [e.as_dict() for e in self.errors],
        }


def detect_format(filename: str) -> str:
    """The format a file name implies; ValueError for anything else."""
    lower = filename.lower()
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".csv", "csv"), (".xlsx", "xlsx")):
        if lower.endswith(suffix):
            return fmt
    raise ValueError(f"cannot tell the format of {filename!r}: use .jsonl, .csv or .xlsx")


# --------------------------------------------------------------------------- reading


def _normalize_header(name: Any) -> str:
    text = str(name).strip().replace("（", "(").replace("）", ")").replace(" ", "")
    alias = COLUMN_ALIASES.get(text)
    if alias:
        return alias
    return text.lower()


def read_records(data: bytes, fmt: str, *, sheet: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (row number, {column: value}) for every non-empty data row; TabularError if unreadable."""
    if fmt == "jsonl":
        yield from _read_jsonl(data)
    elif fmt == "csv":
        yield from _read_table(_csv_rows(data))
    elif fmt == "xlsx":
        yield from _read_table(_xlsx_rows(data, sheet))
    else:
        raise TabularError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _read_jsonl(data: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TabularError(f"a JSON Lines file must be UTF-8: {exc}") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = load_json_bounded(line)
        except json.JSONDecodeError as exc:
            yield number, {"__error__": f"not valid JSON: {exc.msg} (column {exc.colno})"}
            continue
        except ValueError as exc:  # JsonLimitError: nested too deep, integers too long
            yield number, {"__error__": str(exc)}
            continue
        yield number, obj if isinstance(obj, dict) else {"__error__": "a line must be a JSON object"}


def _csv_rows(data: bytes) -> Iterator[tuple[int, list[Any]]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise TabularError("the CSV file is neither UTF-8 nor GB18030")
    try:
        yield from enumerate(csv.reader(io.StringIO(text, newline="")), start=1)
    except csv.Error as exc:
        raise TabularError(f"not a readable CSV file: {exc}") from exc


def _xlsx_rows(data: bytes, sheet: str | None) -> Iterator[tuple[int, list[Any]]]:
    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise TabularError("reading XLSX needs openpyxl") from exc
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        # openpyxl raises zipfile, KeyError and XML errors alike for a file that is not XLSX.
        raise TabularError(f"not a readable XLSX file: {exc}") from exc
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise TabularError(f"no sheet named {sheet!r}; sheets: {', '.join(wb.sheetnames)}")
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        for number, row in enumerate(ws.iter_rows(values_only=True), start=1):
            yield number, list(row)
    finally:
        wb.close()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _read_table(rows: Iterator[tuple[int, list[Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
    header: list[str] | None = None
    for number, cells in rows:
        if all(_blank(c) for c in cells):
            continue
        if header is None:
            header = [_normalize_header(c) if not _blank(c) else "" for c in cells]
            seen: dict[str, int] = {}
            for i, name in enumerate(header):
                if name and name in seen:
                    raise TabularError(
                        f"column {name!r} appears twice in the header (columns {seen[name] + 1} and {i + 1})"
                    )
                seen[name] = i
            continue
        record: dict[str, Any] = {}
        for i, value in enumerate(cells):
            if _blank(value):
                continue
            name = header[i] if i < len(header) else ""
            if not name:
                record.setdefault("__error__", f"a value in column {i + 1}, which has no header")
                continue
            record[name] = value.strip() if isinstance(value, str) else value
        yield number, record
    if header is None:
        raise TabularError("the file has no header row")


# --------------------------------------------------------------------------- mapping


def _field_kind(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not NoneType]
        return _field_kind(args[0]) if len(args) == 1 else "str"
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation in (datetime, AwareDatetime):
        return "datetime"
    if annotation is date:
        return "date"
    if origin in (list, dict) or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return "json"
    return "str"


_KINDS: dict[str, dict[str, str]] = {
    name: {f: _field_kind(info.annotation) for f, info in model.model_fields.items()}
    for name, model in _SOURCE_MODELS.items()
}


class _CellError(ValueError):
    pass


def _to_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=CHINA_STANDARD_TIME)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=CHINA_STANDARD_TIME)
    text = str(value).strip().replace("/", "-")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return value  # the contract explains what a date-time must look like
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=CHINA_STANDARD_TIME)


def _to_date(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip().replace("/", "-")
    try:
        return date.fromisoformat(text)
    except ValueError:
        return value


def _to_int(value: Any) -> Any:
    if isinstance(value, str) and _INT_RE.match(value.replace(",", "").strip()):
        if len(value) > MAX_INT_DIGITS:
            raise _CellError(f"is a number of more than {MAX_INT_DIGITS} digits")
        return int(value.replace(",", ""))
    return value  # floats and text: the contract's strict integer check words the error


def _to_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _CellError("must be true or false (also 1/0, yes/no, 是/否)")


def _to_str(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # spreadsheets store long numeric ids as numbers
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _yuan_to_fen(value: Any) -> int:
    text = str(value).replace(",", "").strip()
    if len(text) > MAX_AMOUNT_CHARS:
        raise _CellError(f"must be an amount in yuan of at most {MAX_AMOUNT_CHARS} characters, e.g. 1234.56")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise _CellError("must be an amount in yuan, e.g. 1234.56") from exc
    if not amount.is_finite():
        raise _CellError("must be an amount in yuan, e.g. 1234.56")
    # Checked before any arithmetic: 1e1000000 * 100 raises decimal.Overflow, int(1e999990) takes seconds.
    if amount and not -MAX_AMOUNT_EXPONENT <= amount.adjusted() <= MAX_AMOUNT_EXPONENT:
        raise _CellError("is not an amount in yuan (too large or too small)")
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise _CellError("has more than two decimals; 1 fen (0.01 yuan) is the smallest unit")
    return int(fen)


def _coerce(event_type: str, name: str, value: Any) -> Any:
    kind = _KINDS[event_type].get(name, "str")
    if kind == "int":
        return _to_int(value)
    if kind == "bool":
        return _to_bool(value)
    if kind == "datetime":
        return _to_datetime(value)
    if kind == "date":
        return _to_date(value)
    if kind == "json":
        if isinstance(value, str):
            try:
                return load_json_bounded(value)
            except json.JSONDecodeError as exc:
                raise _CellError(f"must be JSON: {exc.msg}") from exc
            except JsonLimitError as exc:
                raise _CellError(str(exc)) from exc
        return value
    if name == "event_id" and isinstance(value, uuid.UUID):
        return str(value)
    return _to_str(value) if not isinstance(value, str) else value


def content_hash(event: BaseModel) -> str:
    """SHA-256 hex of an event's canonical JSON without `published_at`."""
    data = event.model_dump(mode="json")
    data.pop("published_at", None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def map_record(
    record: Mapping[str, Any], row: int, *, defaults: RowDefaults, published_at: datetime, tabular: bool
) -> MappedRow | list[RowError]:
    """Turn one record into a valid event, or into the errors of its row."""
    if "__error__" in record:
        return [RowError(row, "(row)", str(record["__error__"]), ReasonCode.MALFORMED_JSON.value)]
    values: dict[str, Any] = dict(record)
    event_type = values.get("event_type") or defaults.event_type
    if not isinstance(event_type, str) or event_type not in _SOURCE_MODELS:
        known = ", ".join(sorted(_SOURCE_MODELS))
        return [RowError(row, "event_type", f"unknown event type {event_type!r}; known: {known}",
                         ReasonCode.UNKNOWN_TYPE.value)]
    values["event_type"] = event_type
    errors: list[RowError] = []
    renamed: dict[str, str] = {}
    if tabular:
        converted: dict[str, Any] = {}
        for name, value in values.items():
            try:
                if name.endswith("_yuan"):
                    target = name[: -len("_yuan")] + "_fen"
                    if target in values:
                        raise _CellError(f"both {name} and {target} are given")
                    converted[target] = _yuan_to_fen(value)
                    renamed[target] = name
                elif name == RECORD_KEY:
                    converted[name] = _to_str(value)
                else:
                    converted[name] = _coerce(event_type, name, value)
            except _CellError as exc:
                errors.append(RowError(row, name, str(exc)))
        values = converted
    if errors:
        return errors
    for name, default in (("source_bureau", defaults.source_bureau), ("region_code", defaults.region_code)):
        if values.get(name) in (None, "") and default:
            values[name] = default
    region = values.get("region_code")
    if "level" not in values and isinstance(region, str) and re.fullmatch(r"\d{6}|\d{9}|\d{12}", region):
        values["level"] = level_of_region(region).value
    values.setdefault("published_at", published_at)
    record_key = values.pop(RECORD_KEY, None) or (str(values["event_id"]) if values.get("event_id") else None)
    record_key = record_key or natural_key(event_type, values)
    bureau = values.get("source_bureau")
    derived = False
    if "event_id" not in values and record_key and isinstance(bureau, str) and bureau.strip():
        values["event_id"] = str(derive_event_id(bureau.strip(), record_key))
        derived = True
    result = parse_object(values)
    if isinstance(result, Rejection):
        # Errors name the column the user wrote (amount_yuan), not the field it became.
        errs = [RowError(row, renamed.get(e.field, e.field), e.message, result.reason.value) for e in result.errors]
        if not derived and record_key is None:
            # The missing identifying fields are already reported; a missing id follows from them.
            errs = [e for e in errs if e.field != "event_id"] or errs
        return errs or [RowError(row, "(row)", result.message, result.reason.value)]
    return MappedRow(row, result, record_key or str(result.event_id), content_hash(result))


def map_file(
    data: bytes,
    fmt: str,
    *,
    defaults: RowDefaults | None = None,
    published_at: datetime,
    sheet: str | None = None,
    max_rows: int | None = None,
) -> TabularReport:
    """Map every row of a file; never raises for bad rows (a bad file is one error on row 0).

    A file with more than `max_rows` data rows is refused whole (reason `too_many_rows`)."""
    defaults = defaults or RowDefaults()
    report = TabularReport(format=fmt)
    first_row_of: dict[uuid.UUID, int] = {}
    try:
        for row, record in read_records(data, fmt, sheet=sheet):
            report.total_rows += 1
            if max_rows is not None and report.total_rows > max_rows:
                report.rows.clear()
                report.errors[:] = [RowError(0, "(file)", f"the file has more than {max_rows} rows; split it",
                                             TOO_MANY_ROWS)]
                break
            result = map_record(record, row, defaults=defaults, published_at=published_at, tabular=fmt != "jsonl")
            if isinstance(result, list):
                report.errors.extend(result)
                continue
            first = first_row_of.setdefault(result.event.event_id, row)
            if first != row:
                report.errors.append(
                    RowError(row, "event_id", f"the same record as row {first} (event id {result.event.event_id})",
                             "duplicate_row")
                )
                continue
            report.rows.append(result)
    except TabularError as exc:
        report.errors.append(RowError(0, "(file)", str(exc), "unreadable_file"))
    return report

