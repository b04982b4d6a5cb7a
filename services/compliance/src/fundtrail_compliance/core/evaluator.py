"""Compiled rule packs and the evaluation of one event against them.

A pack set is compiled once (every expression rewritten, checked and compiled); per event the
evaluator picks the rules that apply to its type, the version effective on its date, builds ONE
`cel.Context` holding only the fields those rules read, and evaluates each condition against it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import cel

from fundtrail_schemas.enriched import LedgerState, PositionState
from fundtrail_schemas.events import EVENT_TYPES
from fundtrail_schemas.rulepack import Rule, RulePack, RulePackError, check_param_value

from .expr import (
    ANY,
    LIST,
    SCALAR,
    CompiledExpr,
    ExpressionError,
    Leaf,
    Shape,
    compile_expr,
    leaf_value,
    make_binder,
    make_extractor,
    merge_shapes,
    shape_of_model,
)
from .helpers import HELPER_NAMES, HELPERS

LEDGER_SHAPE = shape_of_model(LedgerState)
POSITION_SHAPE = shape_of_model(PositionState)
EVENT_SHAPES = {name: shape_of_model(model) for name, model in EVENT_TYPES.items()}
# What the reference data says about the vendor an event pays or awards (see reference.py).
REF_SHAPE: dict[str, Shape] = {
    "vendor": {
        "vendor_id": SCALAR, "registered": SCALAR, "name": SCALAR, "founded_on": SCALAR, "age_days": SCALAR,
        "debarred": SCALAR, "debarred_from": SCALAR, "debarred_until": SCALAR, "debarred_by": SCALAR,
        "debarment_reason": SCALAR, "related_officials": LIST,
    }
}
WINDOW_SHAPE: dict[str, Shape] = {"count": SCALAR, "total_fen": SCALAR, "event_ids": LIST}
TIMER_SHAPE: dict[str, Shape] = {"days": SCALAR, "due_at": SCALAR, "started_at": SCALAR}
# What an entry (ContractSigned, ProjectApproved) reads about the events depending on it (engine._deps).
DEPS_SHAPE: dict[str, Shape] = {"first_at": SCALAR, "first_event_id": SCALAR}
# Roots whose values a later-arriving, earlier-dated event can change (the engine judges again).
STATEFUL_ROOTS = frozenset({"before", "after", "deps"})


@dataclass(frozen=True)
class CompiledWindow:
    key: tuple[CompiledExpr, ...]
    amount: CompiledExpr
    include: CompiledExpr | None
    days_param: str
    tolerance_bps_param: str | None
    # Resolved once at load (parameters are constants of a compiled rule):
    days: int = 0
    tolerance_bps: int | None = None
    key_reader: Any = None  # roots -> key tuple, when every key is a bare field (no CEL call)
    reads: tuple[tuple[str, str], ...] = ()  # (flat variable, window field) the condition reads
    # What the rule's own context holds: the condition's leaves (but the window's) and those of the
    # key, amount and include expressions that are not bare fields.
    leaves: tuple[Leaf, ...] = ()
    functions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    index: int
    source: str
    params: Mapping[str, Any]
    condition: CompiledExpr
    evidence: Mapping[str, CompiledExpr]
    window: CompiledWindow | None = None
    refutation: CompiledExpr | None = None
    ref: str = ""

    @property
    def scope(self) -> str:
        """Prefix of this rule's own window variables."""
        return f"w{self.index}"


@dataclass(frozen=True)
class Selection:
    """The rule versions effective for one event type on one date, ready to run.

    Plain (non-window) conditions are also compiled into ONE program returning the list of their
    results, so an event costs one call into CEL for all of them; window rules run one by one
    because each needs its own window first.
    """

    plain: tuple[CompiledRule, ...]
    windowed: tuple[CompiledRule, ...]
    combined: Any  # cel.Program | None
    reads_ref: tuple[CompiledRule, ...] = ()  # plain rules whose condition reads reference data
    rejudged: tuple[CompiledRule, ...] = ()  # plain rules whose condition reads the ledger state
    rejudged_leaves: tuple[Leaf, ...] = ()  # what their conditions read (one context serves them all)
    rejudged_functions: frozenset[str] = frozenset()
    # Those reading what depends on an entry (`deps`): all that changes for an entry when its first
    # dependent arrives in date order.
    reads_deps: tuple[CompiledRule, ...] = ()
    deps_read_state: bool = False  # some of those also read the before/after states

    @property
    def rules(self) -> tuple[CompiledRule, ...]:
        return self.plain + self.windowed


@dataclass
class TypeIndex:
    """What evaluating one event type needs: rule versions by id, the leaves and functions its plain
    conditions read (window rules have their own, see `CompiledWindow`)."""

    groups: list[list[CompiledRule]] = field(default_factory=list)
    leaves: tuple[Leaf, ...] = ()
    functions: frozenset[str] = frozenset()
    uses_ref: bool = False
    _by_date: dict[date, Selection] = field(default_factory=dict)
    _by_rules: dict[tuple[int, ...], Selection] = field(default_factory=dict)

    def effective(self, on: date) -> Selection:
        """The version of each rule effective on a date (cached per date and per set of versions)."""
        hit = self._by_date.get(on)
        if hit is None:
            chosen = [v for v in (select_version(g, on) for g in self.groups) if v is not None]
            key = tuple(r.index for r in chosen)
            hit = self._by_rules.get(key)
            if hit is None:
                plain = tuple(r for r in chosen if r.window is None)
                windowed = tuple(r for r in chosen if r.window is not None)
                combined = cel.compile("[" + ", ".join(f"({r.condition.rewritten})" for r in plain) + "]")
                reads_ref = tuple(r for r in plain if any(leaf.root == "ref" for leaf in r.condition.leaves))
                rejudged = tuple(
                    r for r in plain if any(leaf.root in STATEFUL_ROOTS for leaf in r.condition.leaves)
                )
                reads_deps = tuple(r for r in rejudged if any(leaf.root == "deps" for leaf in r.condition.leaves))
                hit = self._by_rules[key] = Selection(
                    plain, windowed, combined if plain else None, reads_ref, rejudged,
                    tuple({leaf.name: leaf for r in rejudged for leaf in r.condition.leaves}.values()),
                    frozenset(f for r in rejudged for f in r.condition.functions),
                    reads_deps,
                    any(leaf.root in ("before", "after") for r in reads_deps for leaf in r.condition.leaves),
                )
            if len(self._by_date) > 4096:
                self._by_date.clear()
            self._by_date[on] = hit
        return hit


def select_version(versions: Sequence[CompiledRule], on: date) -> CompiledRule | None:
    """The version of a rule effective on a date (versions never overlap), or None."""
    for r in versions:
        if r.rule.is_effective(on):
            return r
    return None


class EvaluationError(Exception):
    """A condition that raised or did not return a boolean for one event."""

    def __init__(self, rule_ref: str, message: str) -> None:
        super().__init__(f"{rule_ref}: {message}")
        self.rule_ref = rule_ref
        self.message = message


class PackSet:
    """Every loaded rule version, compiled and indexed by event type."""

    def __init__(self, packs: Iterable[tuple[RulePack, str]], overrides: Mapping[str, Mapping[str, Any]] | None = None):
        overrides = overrides or {}
        self.packs: list[RulePack] = []
        self.rules: list[CompiledRule] = []
        seen: dict[str, str] = {}
        for pack, path in packs:
            self.packs.append(pack)
            for rule in pack.rules:
                if rule.ref in seen:
                    raise RulePackError(path, f"rule id already defined in {seen[rule.ref]}", rule.ref)
                seen[rule.ref] = path
                self.rules.append(_compile_rule(rule, len(self.rules), path, overrides.get(rule.id, {})))
        self.by_type: dict[str, TypeIndex] = {}
        self.timer_rules: list[list[CompiledRule]] = []
        self.timer_starts: dict[str, list[list[CompiledRule]]] = {}
        self.refutations: dict[str, list[CompiledRule]] = {}
        self.by_ref = {r.ref: r for r in self.rules}
        self.ref_fields: frozenset[str] = frozenset()
        self._index()

    def _index(self) -> None:
        by_id: dict[str, list[CompiledRule]] = {}
        for r in self.rules:
            by_id.setdefault(r.rule.id, []).append(r)
        for versions in by_id.values():
            versions.sort(key=lambda r: r.rule.version)
            first = versions[0].rule
            # Timer checks too may be refuted by late evidence (an outflow dated before the due time).
            for v in versions:
                if v.refutation is not None and v.rule.refuted_by is not None:
                    for t in v.rule.refuted_by.event_types:
                        self.refutations.setdefault(t, []).append(v)
            if first.kind == "timer":
                self.timer_rules.append(versions)
                starts = {t for v in versions if v.rule.timer for t in v.rule.timer.start_on}
                for t in starts:
                    self.timer_starts.setdefault(t, []).append(versions)
                continue
            types = {t for v in versions for t in v.rule.applies_to}
            for t in types:
                self.by_type.setdefault(t, TypeIndex()).groups.append(versions)
        for idx in self.by_type.values():
            leaves: dict[str, Leaf] = {}
            functions: set[str] = set()
            for versions in idx.groups:
                for v in versions:
                    if v.window is None:
                        functions |= v.condition.functions
                        leaves.update((leaf.name, leaf) for leaf in v.condition.leaves)
            idx.leaves = tuple(leaves.values())
            idx.functions = frozenset(functions)
            idx.uses_ref = any(
                leaf.root == "ref"
                for versions in idx.groups
                for v in versions
                for leaf in (v.window.leaves if v.window is not None else v.condition.leaves)
            )
        # The fields of the vendor's reference view some condition reads (what re-judging compares).
        self.ref_fields = frozenset(
            leaf.path[1] for r in self.rules for leaf in r.condition.leaves
            if leaf.root == "ref" and len(leaf.path) > 1
        )

    def fingerprint(self) -> str:
        """Identifies what the set evaluates: every rule version as written, with its parameters."""
        parts = sorted(r.rule.model_dump_json() + json.dumps(r.params, sort_keys=True, default=str) for r in self.rules)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def rule_ids(self) -> set[str]:
        """Every rule id loaded (any version)."""
        return {r.rule.id for r in self.rules}


def _compile_rule(rule: Rule, index: int, path: str, override: Mapping[str, Any]) -> CompiledRule:
    params = {name: p.default for name, p in rule.parameters.items()}
    for name, value in override.items():
        if name not in rule.parameters:
            raise RulePackError(path, f"override of unknown parameter {name}", rule.ref)
        try:
            check_param_value(rule.parameters[name], value, f"override {name}")
        except ValueError as exc:
            raise RulePackError(path, str(exc), rule.ref) from exc
        params[name] = value
    scope = f"w{index}"

    def comp(what: str, src: str, roots: Mapping[str, Shape], scoped: Mapping[str, str] | None = None) -> CompiledExpr:
        try:
            return compile_expr(src, roots, params, scoped=scoped, helpers=HELPER_NAMES)
        except ExpressionError as exc:
            raise RulePackError(path, f"{what}: {exc}", rule.ref) from exc

    if rule.kind == "timer":
        roots: dict[str, Shape] = {"position": POSITION_SHAPE, "timer": TIMER_SHAPE}
    else:
        roots = {
            "event": merge_shapes([EVENT_SHAPES[t] for t in rule.applies_to]),
            "before": LEDGER_SHAPE,
            "after": LEDGER_SHAPE,
            "ref": REF_SHAPE,
            "deps": DEPS_SHAPE,
        }
        if rule.kind == "window":
            roots["window"] = WINDOW_SHAPE
    scoped = {"window": scope}
    condition = comp("condition", rule.condition, roots, scoped)
    evidence = {name: comp(f"evidence.{name}", src, roots, scoped) for name, src in rule.evidence.items()}
    window = None
    if rule.window is not None:
        plain = {k: v for k, v in roots.items() if k != "window"}
        keys = tuple(comp("window.key", k, plain) for k in rule.window.key)
        bare_keys = tuple(k.bare for k in keys if k.bare is not None)
        tol_param = rule.window.tolerance_bps_param
        amount = comp("window.amount", rule.window.amount, plain)
        include = comp("window.include", rule.window.include, plain) if rule.window.include else None
        # Bare fields (a key or amount that is just a path) are read without CEL.
        exprs = [condition, *(e for e in (*keys, amount) if e.bare is None), *([include] if include else [])]
        window = CompiledWindow(
            key=keys,
            amount=amount,
            include=include,
            days_param=rule.window.days_param,
            tolerance_bps_param=tol_param,
            days=int(params[rule.window.days_param]),
            tolerance_bps=int(params[tol_param]) if tol_param else None,
            key_reader=make_extractor(bare_keys) if len(bare_keys) == len(keys) else None,
            reads=tuple((leaf.name, leaf.path[0]) for leaf in condition.leaves if leaf.root == "window"),
            leaves=tuple({leaf.name: leaf for e in exprs for leaf in e.leaves if leaf.root != "window"}.values()),
            functions=frozenset(f for e in exprs for f in e.functions),
        )
    refutation = None
    if rule.refuted_by is not None:
        r_roots: dict[str, Shape] = {
            "event": merge_shapes([EVENT_SHAPES[t] for t in rule.refuted_by.event_types]),
            "before": LEDGER_SHAPE,
            "after": LEDGER_SHAPE,
            "violation": ANY,
        }
        refutation = comp("refuted_by.condition", rule.refuted_by.condition, r_roots, {"violation": "v"})
    return CompiledRule(rule, index, path, params, condition, evidence, window, refutation, rule.ref)


def build_context(leaves: Iterable[Leaf], roots: Mapping[str, Any], functions: Iterable[str] = ()) -> Any:
    """One cel.Context with the given leaves read from the roots."""
    variables = {leaf.name: leaf_value(leaf, roots.get(leaf.root)) for leaf in leaves}
    fns = {name: HELPERS[name] for name in functions}
    return cel.Context(variables=variables, functions=fns) if fns else cel.Context(variables=variables)


_UNSET = object()


class LiveContext:
    """A long-lived cel.Context for one event type, re-bound per event.

    Converting values into CEL costs about a microsecond per string, and every change makes CEL
    rebuild its environment on the next call; consecutive events share many values (event type,
    kinds, fund, project), so only the variables whose value changed since the previous event are
    re-bound (by a generated, unrolled binder). The context then serves every rule evaluated for
    the event.
    """

    def __init__(self, leaves: Sequence[Leaf], functions: Iterable[str] = ()) -> None:
        self.leaves = tuple(leaves)
        self.names = tuple(leaf.name for leaf in self.leaves)
        self._binder = make_binder(self.leaves)
        self.last: list[Any] = [_UNSET] * len(self.leaves)
        self.extra: dict[str, Any] = {}
        fns = {name: HELPERS[name] for name in functions}
        self.ctx = cel.Context(functions=fns) if fns else cel.Context()
        self._add = self.ctx.add_variable

    def set(self, name: str, value: Any) -> None:
        """Bind one extra variable (a window's), only if its value changed."""
        old = self.extra.get(name, _UNSET)
        if value.__class__ is not old.__class__ or value != old:
            self._add(name, value)
            self.extra[name] = value

    def bind(self, roots: Mapping[str, Any]) -> Any:
        """The context holding this event's values."""
        self._binder(roots, self.last, self._add)
        return self.ctx


def live_context(
    cache: dict[str, LiveContext], key: str, leaves: Sequence[Leaf], functions: Iterable[str]
) -> LiveContext:
    """The cached live context under `key`, made on first use."""
    live = cache.get(key)
    if live is None:
        live = cache[key] = LiveContext(leaves, functions)
    return live


def run_plain(selected: Selection, ctx: Any) -> list[Any] | None:
    """The results of a selection's plain conditions in one call, or None when one of them failed
    (the caller runs them one by one to say which)."""
    if selected.combined is None:
        return []
    try:
        return list(selected.combined.execute(ctx))
    except (RuntimeError, TypeError, ValueError, OverflowError):
        return None


def ensure_leaves(ctx: Any, have: set[str], leaves: Iterable[Leaf], roots: Mapping[str, Any]) -> None:
    """Add leaves an expression needs that the context does not hold yet."""
    for leaf in leaves:
        if leaf.name not in have:
            ctx.add_variable(leaf.name, leaf_value(leaf, roots.get(leaf.root)))
            have.add(leaf.name)


def run(expr: CompiledExpr, ctx: Any, rule_ref: str) -> Any:
    """Execute a compiled expression; errors become EvaluationError naming the rule."""
    try:
        return expr.program.execute(ctx)
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
        raise EvaluationError(rule_ref, f"{expr.source.strip()}: {exc}") from exc


def run_condition(expr: CompiledExpr, ctx: Any, rule_ref: str) -> bool:
    """Execute a condition; anything but a boolean is an error."""
    result = run(expr, ctx, rule_ref)
    if not isinstance(result, bool):
        raise EvaluationError(rule_ref, f"condition returned {type(result).__name__}, not bool")
    return result


def read_values(leaves: Iterable[Leaf], roots: Mapping[str, Any]) -> dict[str, Any]:
    """The values a condition read, by dotted path (evidence)."""
    return {".".join((leaf.root, *leaf.path)): leaf_value(leaf, roots.get(leaf.root)) for leaf in leaves}
