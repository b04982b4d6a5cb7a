"""The rule-pack format: one YAML document per department, rules versioned as id@version.

A pack file holds every version of every rule its department owns; versions are never edited
once published, a change adds a version with new effective dates.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .events import EVENT_TYPES
from .types import Department, Severity

RULE_ID_RE = r"^[a-z][a-z_]*\.[a-z0-9_]+$"


class ParamType(StrEnum):
    FEN = "fen"  # integer fen
    BPS = "bps"  # basis points
    DAYS = "days"
    INT = "int"
    BOOL = "bool"
    STRING = "string"
    STRING_LIST = "string_list"


_PY_TYPES: dict[ParamType, type | tuple[type, ...]] = {
    ParamType.FEN: int,
    ParamType.BPS: int,
    ParamType.DAYS: int,
    ParamType.INT: int,
    ParamType.BOOL: bool,
    ParamType.STRING: str,
    ParamType.STRING_LIST: list,
}


class Parameter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ParamType
    default: Any
    description: str = ""
    minimum: int | None = None
    maximum: int | None = None

    @model_validator(mode="after")
    def _typed_default(self) -> Parameter:
        check_param_value(self, self.default, "default")
        return self


def check_param_value(param: Parameter, value: Any, what: str = "value") -> None:
    """Raise ValueError when a parameter value does not fit its declared type."""
    expected = _PY_TYPES[param.type]
    if isinstance(value, bool) and param.type is not ParamType.BOOL:
        raise ValueError(f"{what} {value!r} is a boolean, expected {param.type.value}")
    if not isinstance(value, expected):
        raise ValueError(f"{what} {value!r} does not have type {param.type.value}")
    if param.type is ParamType.STRING_LIST and not all(isinstance(v, str) for v in cast(list[Any], value)):
        raise ValueError(f"{what} must be a list of strings")
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0 and param.type in (ParamType.FEN, ParamType.BPS, ParamType.DAYS):
            raise ValueError(f"{what} {value} must not be negative")
        if param.minimum is not None and value < param.minimum:
            raise ValueError(f"{what} {value} is below the minimum {param.minimum}")
        if param.maximum is not None and value > param.maximum:
            raise ValueError(f"{what} {value} is above the maximum {param.maximum}")


class WindowSpec(BaseModel):
    """A sliding event-time window (kind `window`): earlier events with the same key feed `window.*`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: list[str] = Field(min_length=1, description="CEL expressions whose values form the window key")
    days_param: str = Field(description="Name of the `days` parameter that gives the window length")
    amount: str = Field(description="CEL expression: the amount (fen) an event adds to the window")
    include: str | None = Field(None, description="CEL condition: whether an event enters the window at all")
    tolerance_bps_param: str | None = Field(
        None, description="Name of a `bps` parameter: only entries whose amount lies within this share count"
    )


class TimerSpec(BaseModel):
    """A scheduled check (kind `timer`): started by an event, fired by event time (the watermark)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_on: list[str] = Field(min_length=1, description="Event types that start the clock")
    subject: Literal["position", "counterparty"] = Field(
        description="Which ledger position of the starting event is watched (its `after` state)"
    )
    days_param_by_level: dict[str, str] = Field(
        min_length=1, description="Level of the watched position → name of the `days` parameter to wait"
    )

    @field_validator("start_on")
    @classmethod
    def _known_start_types(cls, v: list[str]) -> list[str]:
        unknown = [t for t in v if t not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event types in start_on: {', '.join(unknown)}")
        return v


class RefutationSpec(BaseModel):
    """Late evidence: a later event that refutes an open violation of this rule within the grace period."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_types: list[str] = Field(min_length=1)
    condition: str = Field(
        min_length=1, description="CEL; `violation.<name>` reads the violation's evidence values"
    )
    reason_zh: str
    reason_en: str

    @field_validator("event_types")
    @classmethod
    def _known_types(cls, v: list[str]) -> list[str]:
        unknown = [t for t in v if t not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event types in refuted_by: {', '.join(unknown)}")
        return v


class Rule(BaseModel):
    """One version of one rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=RULE_ID_RE, description="department.short_name, e.g. finance.no_contract")
    version: int = Field(ge=1)
    catalogue_no: int = Field(ge=1, description="Number in the DOMAIN.md rule catalogue")
    title_zh: str
    title_en: str
    explanation_zh: str = Field(description="Template; {name} placeholders are filled from the evidence")
    explanation_en: str
    severity: Severity
    applies_to: list[str] = Field(min_length=1, description="Event types, or 'Timer' for scheduled checks")
    condition: str = Field(min_length=1, description="CEL expression; true means a violation")
    evidence: dict[str, str] = Field(
        default_factory=dict, description="name → CEL expression recorded as evidence and used in templates"
    )
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    kind: Literal["event", "window", "timer", "reference"] = "event"
    window: WindowSpec | None = Field(None, description="Required for kind `window`")
    timer: TimerSpec | None = Field(None, description="Required for kind `timer`")
    refuted_by: RefutationSpec | None = Field(None, description="Late evidence that resolves a violation")
    legal_basis: str
    effective_from: date
    effective_until: date | None = None

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    @field_validator("applies_to")
    @classmethod
    def _known_types(cls, v: list[str]) -> list[str]:
        unknown = [t for t in v if t not in EVENT_TYPES and t != "Timer"]
        if unknown:
            raise ValueError(f"unknown event types in applies_to: {', '.join(unknown)}")
        return v

    @model_validator(mode="after")
    def _dates(self) -> Rule:
        if self.effective_until is not None and self.effective_until <= self.effective_from:
            raise ValueError("effective_until must be after effective_from")
        return self

    @model_validator(mode="after")
    def _kind_specs(self) -> Rule:
        if (self.kind == "window") != (self.window is not None):
            raise ValueError("a `window` block is required for kind window and only allowed there")
        if (self.kind == "timer") != (self.timer is not None):
            raise ValueError("a `timer` block is required for kind timer and only allowed there")
        if self.kind == "timer" and self.applies_to != ["Timer"]:
            raise ValueError("a timer rule applies to ['Timer'] only")
        if self.kind != "timer" and "Timer" in self.applies_to:
            raise ValueError("only timer rules apply to 'Timer'")
        named = [self.window.days_param] if self.window else []
        if self.window and self.window.tolerance_bps_param:
            named.append(self.window.tolerance_bps_param)
        if self.timer:
            named.extend(self.timer.days_param_by_level.values())
        missing = sorted({n for n in named if n not in self.parameters})
        if missing:
            raise ValueError(f"parameters {', '.join(missing)} are named but not declared")
        return self

    def is_effective(self, on: date) -> bool:
        """Whether this version applies to an event that occurred on `on`."""
        return self.effective_from <= on and (self.effective_until is None or on < self.effective_until)


class RulePack(BaseModel):
    """All rules one department owns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["fundtrail.rulepack/v1"] = "fundtrail.rulepack/v1"
    department: Department
    pack_version: int = Field(ge=1, description="Bumped whenever the file changes")
    description: str = ""
    rules: list[Rule]

    @model_validator(mode="after")
    def _consistency(self) -> RulePack:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.ref in seen:
                raise ValueError(f"rule {rule.ref} appears twice")
            seen.add(rule.ref)
            if not rule.id.startswith(f"{self.department.value}."):
                raise ValueError(f"rule {rule.ref} does not belong to department {self.department.value}")
        for rule_id in {r.id for r in self.rules}:
            versions = sorted((r for r in self.rules if r.id == rule_id), key=lambda r: r.version)
            for a, b in pairwise(versions):
                if a.effective_until is None or a.effective_until > b.effective_from:
                    raise ValueError(
                        f"versions of {rule_id} overlap: {a.ref} must end on or before {b.ref} starts"
                    )
        return self


class RulePackError(ValueError):
    """A pack that cannot be loaded; says which file, which rule and what is wrong."""

    def __init__(self, path: str, problem: str, rule: str | None = None) -> None:
        self.path, self.rule, self.problem = path, rule, problem
        where = f"{path}" + (f" rule {rule}" if rule else "")
        super().__init__(f"{where}: {problem}")


# `{name}` or `{name:format}`; formats: `yuan` (fen shown as CNY), `pct` (basis points shown as %),
# `label` (a code shown as its label, `fundtrail_schemas.labels`), `date` (an Asia/Shanghai date).
TEMPLATE_FIELD = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::(yuan|pct|label|date))?}")
TEMPLATE_FORMATS = ("yuan", "pct", "label", "date")


def template_fields(template: str) -> set[str]:
    """Placeholder names used in an explanation template."""
    return {m.group(1) for m in TEMPLATE_FIELD.finditer(template)}


def parse_pack(text: str, path: str = "<memory>") -> RulePack:
    """Parse and validate the structure of a pack (expressions are compiled by the evaluator)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulePackError(path, f"not valid YAML: {exc}") from exc
    try:
        pack = RulePack.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = first["loc"]
        where: str | None = None
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            rules = (data or {}).get("rules") or []
            if loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
                where = f"{rules[loc[1]].get('id')}@{rules[loc[1]].get('version')}"
        field = ".".join(str(p) for p in loc)
        raise RulePackError(path, f"{field}: {first['msg']}", where) from exc
    for rule in pack.rules:
        names = set(rule.evidence) | set(rule.parameters)
        missing = (template_fields(rule.explanation_zh) | template_fields(rule.explanation_en)) - names
        if missing:
            raise RulePackError(
                path, f"explanation uses {', '.join(sorted(missing))}, not defined as evidence or parameter",
                rule.ref,
            )
    return pack


def load_pack(path: Path) -> RulePack:
    """Read and validate one pack file."""
    return parse_pack(path.read_text(encoding="utf-8"), str(path))


def load_pack_dir(directory: Path) -> list[RulePack]:
    """Every `*.yaml` pack of a directory, sorted by department."""
    packs = [load_pack(p) for p in sorted(directory.glob("*.yaml"))]
    depts = [p.department for p in packs]
    dupes = {d for d in depts if depts.count(d) > 1}
    if dupes:
        raise RulePackError(str(directory), f"more than one pack for {', '.join(sorted(dupes))}")
    return packs
