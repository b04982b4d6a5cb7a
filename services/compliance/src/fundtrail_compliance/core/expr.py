"""CEL expressions of rule packs: field validation, projection and compilation.

Converting nested Python dicts into CEL values costs about a microsecond per map entry, which would
dominate evaluation. So an expression is rewritten once, at load: every field path it reads
(`after.contract.paid_fen`) becomes one flat CEL variable (`after__contract__paid_fen`), and per
event only the paths the loaded rules read are extracted. Paths are checked against the contract
models, so a misspelt field fails the pack load instead of reading null at run time.

Semantics kept for rule authors:
- a path through a null or missing object reads as null (`before.project.approved` is null when
  there is no project), so `x != null && x.f` and `x == null || !x.f` work as in CEL;
- an object read as a whole can only be compared with null (`before.project == null`): it reads as
  `true` when present, null when absent;
- `params.<name>` is replaced by the parameter's literal value (parameters are constants of a
  compiled pack).
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

import cel
from pydantic import BaseModel

SCALAR = "scalar"
LIST = "list"
ANY = "any"  # an open map: any field name, any value (violation evidence)
Shape = Union[str, dict[str, "Shape"]]  # noqa: UP007 - a recursive alias needs the string form

# Global functions CEL itself provides, and the helpers we register (see `helpers.py`).
CEL_GLOBALS = frozenset(
    {"size", "int", "uint", "double", "string", "bytes", "bool", "timestamp", "duration", "dyn", "type",
     "matches", "max", "min"}
)


class ExpressionError(ValueError):
    """An expression that cannot be compiled against its roots."""


@dataclass(frozen=True)
class Leaf:
    """One flat CEL variable: a path under a root; `presence` leaves are objects read as a whole."""

    name: str
    root: str
    path: tuple[str, ...]
    presence: bool


@dataclass(frozen=True)
class CompiledExpr:
    source: str
    rewritten: str
    program: Any  # cel.Program
    leaves: tuple[Leaf, ...]
    functions: frozenset[str]
    bare: Leaf | None = None  # the expression is just this field: read it without calling CEL


def shape_of_model(model: type[BaseModel]) -> dict[str, Shape]:
    """Field shapes of a pydantic model (objects recurse, lists and scalars are leaves)."""
    return {name: _shape_of_annotation(f.annotation) for name, f in model.model_fields.items()}


def _shape_of_annotation(tp: Any) -> Shape:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _shape_of_annotation(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _shape_of_annotation(args[0]) if len(args) == 1 else SCALAR
    if origin in (list, tuple, set, frozenset):
        return LIST
    if origin is dict:
        return ANY
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return shape_of_model(tp)
    return SCALAR


def merge_shapes(shapes: list[dict[str, Shape]]) -> dict[str, Shape]:
    """Union of the fields of several object shapes (the event types a rule applies to)."""
    out: dict[str, Shape] = {}
    for s in shapes:
        for k, v in s.items():
            if k not in out:
                out[k] = v
            elif isinstance(out[k], dict) and isinstance(v, dict):
                out[k] = merge_shapes([out[k], v])  # type: ignore[list-item]
    return out


# --- lexer ------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<str>(?:[rR][bB]?|[bB][rR]?)?
        (?:\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
  | (?P<num>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _tokens(src: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None:  # pragma: no cover - the last alternative matches any character
            raise ExpressionError(f"cannot read the expression at position {pos}")
        kind = m.lastgroup or "op"
        out.append((kind, m.group()))
        pos = m.end()
    return out


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"({value})" if value < 0 else str(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid CEL string escapes
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    raise ExpressionError(f"parameter value {value!r} cannot be written as a CEL literal")


def flat_name(prefix: str, path: tuple[str, ...]) -> str:
    return "__".join((prefix, *path))


def compile_expr(
    source: str,
    roots: Mapping[str, Shape],
    params: Mapping[str, Any],
    *,
    scoped: Mapping[str, str] | None = None,
    helpers: frozenset[str] = frozenset(),
) -> CompiledExpr:
    """Rewrite `source` to flat variables, check every path and name, and compile it with cel."""
    scoped = scoped or {}
    toks = _tokens(source)
    out: list[str] = []
    leaves: dict[str, Leaf] = {}
    functions: set[str] = set()
    sig = [i for i, (k, _) in enumerate(toks) if k != "ws"]
    pos_in_sig = {t: n for n, t in enumerate(sig)}

    def nxt(i: int, step: int = 1) -> tuple[str, str] | None:
        n = pos_in_sig[i] + step
        return toks[sig[n]] if 0 <= n < len(sig) else None

    def prev(i: int) -> tuple[str, str] | None:
        n = pos_in_sig[i] - 1
        return toks[sig[n]] if n >= 0 else None

    i = 0
    while i < len(toks):
        kind, text = toks[i]
        if kind != "ident":
            out.append(text)
            i += 1
            continue
        before = prev(i)
        after = nxt(i)
        member = before is not None and before[1] == "."
        if not member and after is not None and after[1] == "(":
            if text == "has":
                raise ExpressionError("has() is not supported: a missing field reads as null, compare with null")
            if text not in CEL_GLOBALS and text not in helpers:
                raise ExpressionError(f"unknown function {text}()")
            if text in helpers:
                functions.add(text)
            out.append(text)
            i += 1
            continue
        if member or (text not in roots and text != "params"):
            out.append(text)
            i += 1
            continue
        # A chain root.ident.ident..., stopping before a method call.
        path: list[str] = []
        j = i
        while True:
            dot = nxt(j)
            name = nxt(j, 2)
            call = nxt(j, 3)
            if dot is None or dot[1] != "." or name is None or name[0] != "ident":
                break
            if call is not None and call[1] == "(":
                break
            path.append(name[1])
            j = sig[pos_in_sig[j] + 2]
        if not path:
            raise ExpressionError(f"read fields of {text}, not {text} itself (e.g. {text}.<field>)")
        if text == "params":
            if len(path) != 1 or path[0] not in params:
                raise ExpressionError(f"unknown parameter params.{'.'.join(path)}")
            out.append(_literal(params[path[0]]))
        else:
            shape: Shape = roots[text]
            for n, field in enumerate(path):
                if shape == ANY:
                    shape = SCALAR
                    continue
                if not isinstance(shape, dict):
                    raise ExpressionError(
                        f"{text}.{'.'.join(path[:n])} is a {shape}, it has no field {field}"
                    )
                if field not in shape:
                    known = ", ".join(sorted(shape))
                    raise ExpressionError(f"{text}.{'.'.join(path[: n + 1])} is not a known field (known: {known})")
                shape = shape[field]
            leaf = Leaf(flat_name(scoped.get(text, text), tuple(path)), text, tuple(path), isinstance(shape, dict))
            leaves[leaf.name] = leaf
            out.append(leaf.name)
        i = j + 1
    rewritten = "".join(out)
    try:
        program = cel.compile(rewritten)
    except (ValueError, RuntimeError, TypeError) as exc:
        message = str(exc)
        for leaf in leaves.values():
            message = message.replace(leaf.name, ".".join((leaf.root, *leaf.path)))
        raise ExpressionError(f"does not compile: {message}") from exc
    bare = next((leaf for leaf in leaves.values() if leaf.name == rewritten.strip() and not leaf.presence), None)
    return CompiledExpr(source, rewritten, program, tuple(leaves.values()), frozenset(functions), bare)


def leaf_value(leaf: Leaf, root_value: Any) -> Any:
    """The value of a leaf given its root's (JSON-like) value; null through missing objects."""
    v = root_value
    for field in leaf.path:
        if not isinstance(v, dict):
            return None
        v = v.get(field)
    if leaf.presence:
        return True if isinstance(v, dict) else None
    return v


def _path_reader(lines: list[str]) -> Any:
    names: dict[tuple[str, ...], str] = {}

    def var(path: tuple[str, ...]) -> str:
        if path in names:
            return names[path]
        if len(path) == 1:
            name = f"_v{len(names)}"
            lines.append(f"    {name} = roots.get({path[0]!r})")
        else:
            parent = var(path[:-1])
            name = f"_v{len(names)}"
            lines.append(f"    {name} = {parent}.get({path[-1]!r}) if {parent}.__class__ is _d else None")
        names[path] = name
        return name

    return var


def _generated(lines: list[str], name: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), f"<fundtrail-{name}>", "exec"), namespace)
    return namespace[name]


def make_binder(leaves: tuple[Leaf, ...]) -> Any:
    """A generated function `bind(roots, last, add)` calling `add(name, value)` for every leaf whose
    value differs from `last[i]` (value or type), and recording it there.

    Unrolled per leaf, so an event costs no loop, no intermediate tuple and no call per unchanged
    leaf (same value semantics as `leaf_value`); only our validated leaf names and repr-quoted field
    names appear in the generated source.
    """
    lines = ["def bind(roots, last, add):", "    _d = dict"]
    var = _path_reader(lines)
    for i, leaf in enumerate(leaves):
        v = var((leaf.root, *leaf.path))
        lines.append(f"    x = (True if {v}.__class__ is _d else None)" if leaf.presence else f"    x = {v}")
        lines.append(f"    o = last[{i}]")
        lines.append("    if x.__class__ is not o.__class__ or x != o:")
        lines.append(f"        add({leaf.name!r}, x)")
        lines.append(f"        last[{i}] = x")
    lines.append("    return None")
    return _generated(lines, "bind")


def make_extractor(leaves: tuple[Leaf, ...]) -> Any:
    """A generated function `roots -> tuple of leaf values` (same semantics as `leaf_value`, faster).

    Every distinct path prefix is read once into a local; only names of our own leaves (validated
    identifiers) and field names (repr-quoted) appear in the generated source.
    """
    lines = ["def extract(roots):", "    _d = dict"]
    var = _path_reader(lines)
    values = []
    for leaf in leaves:
        v = var((leaf.root, *leaf.path))
        values.append(f"(True if {v}.__class__ is _d else None)" if leaf.presence else v)
    lines.append("    return (" + "".join(f"{v}, " for v in values) + ")")
    return _generated(lines, "extract")
