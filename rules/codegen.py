"""Code generation: a checked condition AST becomes one Python expression.

`rules.conditions.ConditionContext` drives this: :class:`CodeGen` type-checks
each predicate against the event schema, resolves macros and lists through the
context, and emits an expression over ``e`` (the event dict) that reads each
field once and is false when it is missing. Literals go into the context's
constant pool (names ``_K<n>_``); the helpers below are the only other names
the generated code uses.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import re2

from rules import grammar as g
from rules.errors import did_you_mean
from rules.fields import ANY, BOOL, ENUM_VALUES, LIST, MAP, MAP_FIELDS, NUMBER, STRING, TIME, field_type, known_fields
from rules.items import Location

if TYPE_CHECKING:
    from rules.conditions import ConditionContext

Prereq = dict[str, frozenset[Any]] | None
INDEX_FIELDS = ("action_category", "event_type")  # equality prerequisites used to pre-index rules

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.never_capture = True  # only "does it match" is asked: no capture bookkeeping


class Fail(Exception):
    """Unwinds one condition's compilation after its diagnostic was recorded."""


def _contains(v: Any, needle: Any) -> bool:
    return isinstance(v, str | list) and needle in v


def _contains_any(v: Any, needles: tuple[str, ...]) -> bool:
    if type(v) is str:
        for n in needles:
            if n in v:
                return True
        return False
    if type(v) is list:
        return any(n in v for n in needles)
    return False


def _deep(e: dict[str, Any], path: tuple[str, ...]) -> Any:
    v: Any = e
    for part in path:
        if type(v) is not dict:
            return None
        v = v.get(part)
    return v


def _safe_in(v: Any, values: frozenset[Any]) -> bool:
    try:
        return v in values
    except TypeError:  # unhashable value from a free-form map
        return False


GLOBALS: dict[str, Any] = {"_contains": _contains, "_contains_any": _contains_any, "_deep": _deep,
                            "_safe_in": _safe_in, "_NUMT": (int, float), "_EMPTY": ("", [], {})}


class CodeGen:
    """Generates the Python expression of one condition source."""

    def __init__(self, ctx: ConditionContext, source: str, location: Location) -> None:
        self.ctx, self.source, self.location = ctx, source, location
        self.fields: list[str] = []

    def fail(self, offset: int, code: str, message: str, hint: str = "") -> Fail:
        self.ctx.error(self.ctx.locate(self.location, self.source, offset), code, message, hint)
        return Fail()

    def run(self) -> tuple[str, Prereq]:
        try:
            ast = g.parse(self.source)
        except g.ParseError as exc:
            raise self.fail(exc.offset, "OVR200", exc.message, exc.hint) from None
        self.failed = False
        result = self.node(ast)
        if self.failed:
            raise Fail()
        return result

    def node(self, n: Any) -> tuple[str, Prereq]:
        """Code of one node; a failing predicate is recorded and compilation goes on (all errors reported)."""
        try:
            return self._node(n)
        except Fail:
            self.failed = True
            return "False", None

    def _node(self, n: Any) -> tuple[str, Prereq]:
        if isinstance(n, g.And | g.Or):
            parts = [self.node(i) for i in n.items]
            word = " and " if isinstance(n, g.And) else " or "
            merge = _and_prereq if isinstance(n, g.And) else _or_prereq
            return "(" + word.join(p[0] for p in parts) + ")", merge([p[1] for p in parts])
        if isinstance(n, g.Not):
            return f"(not {self.node(n.item)[0]})", None
        if isinstance(n, g.Name):
            return self.name(n)
        if isinstance(n, g.Exists):
            self.ftype(n.path, n.offset)
            return f"((_v := {self.getter(n.path)}) is not None and _v not in _EMPTY)", None
        if isinstance(n, g.Cmp):
            return self.cmp(n)
        if isinstance(n, g.In):
            return self.in_(n)
        return self.strop(n)

    # -- names ------------------------------------------------------------------------------------
    def name(self, n: g.Name) -> tuple[str, Prereq]:
        ctx = self.ctx
        if n.name in ctx.macros:
            if n.name in ctx.macro_stack:
                chain = " -> ".join([*ctx.macro_stack[ctx.macro_stack.index(n.name):], n.name])
                raise self.fail(n.offset, "OVR206", f"macro cycle: {chain}", "a macro cannot use itself")
            code = ctx.macro_code(n.name)
            self.fields += ctx.macro_fields.get(n.name, [])
            if code is None:
                raise self.fail(n.offset, "OVR204", f"macro {n.name!r} is invalid (see its own diagnostic)")
            return code
        ftype = field_type(n.name)
        if ftype == BOOL:
            return f"({self.getter(n.name)} is True)", None
        if ftype is not None:
            raise self.fail(n.offset, "OVR202", f"field {n.name!r} is a {ftype}, not a boolean",
                            f"compare it, e.g. '{n.name} exists' or '{n.name} = ...'")
        raise self.fail(n.offset, "OVR204", f"unknown macro {n.name!r}",
                        did_you_mean(n.name, list(ctx.macros) + known_fields())
                        or f"define it with '- macro: {n.name}' in an earlier or the same file")

    def ftype(self, path: str, offset: int) -> str:
        ftype = field_type(path)
        if ftype is None:
            head = path.partition(".")[0]
            hint = did_you_mean(path, known_fields())
            if not hint and head in MAP_FIELDS:
                hint = f"{head}.<key> takes a single key"
            raise self.fail(offset, "OVR201", f"unknown field {path!r}",
                            hint or "fields are those of schemas.Event; map fields: scores.*, attributes.*, "
                            "request_params.*")
        return ftype

    def getter(self, path: str) -> str:
        self.fields.append(path)
        parts = path.split(".")
        if len(parts) == 1:
            return f"e.get({path!r})"
        if len(parts) == 2:
            return f"(_m.get({parts[1]!r}) if type(_m := e.get({parts[0]!r})) is dict else None)"
        return f"_deep(e, {tuple(parts)!r})"

    def literal_values(self, items: tuple[g.Lit | g.Name, ...]) -> list[tuple[Any, int]]:
        out: list[tuple[Any, int]] = []
        for item in items:
            if isinstance(item, g.Name) and item.name in self.ctx.lists:
                values = self.ctx.list_values(item.name, self.location)
                if values is None:
                    raise self.fail(item.offset, "OVR205", f"list {item.name!r} is invalid (see its own diagnostic)")
                out.extend((v, item.offset) for v in values)
            elif isinstance(item, g.Name):
                out.append((item.name, item.offset))  # a bare word in a value list is a string (Falco style)
            else:
                out.append((item.value, item.offset))
        return out

    def named_list(self, name: g.Name) -> list[tuple[Any, int]]:
        if name.name not in self.ctx.lists:
            raise self.fail(name.offset, "OVR205", f"unknown list {name.name!r}",
                            did_you_mean(name.name, self.ctx.lists) or
                            f"define it with '- list: {name.name}' or write the values in parentheses")
        return self.literal_values((name,))

    def check_value(self, path: str, ftype: str, value: Any, offset: int, op: str) -> None:
        if value is None:
            return
        kind = BOOL if isinstance(value, bool) else NUMBER if isinstance(value, int | float) else STRING
        if ftype in (ANY,):
            return
        if ftype == TIME:
            raise self.fail(offset, "OVR202", f"field {path!r} is a timestamp", "compare '_ts' (epoch seconds)")
        expected = STRING if ftype == LIST else ftype
        if ftype == MAP:
            raise self.fail(offset, "OVR202", f"field {path!r} is a map", f"name a key: {path}.<key>")
        if kind != expected:
            hint = f"quote it: '{value}'" if expected == STRING else (
                "write the number without quotes" if expected == NUMBER else "use true or false")
            raise self.fail(offset, "OVR202", f"{op}: field {path!r} is a {expected} but {value!r} is a {kind}", hint)
        allowed = ENUM_VALUES.get(path)
        if allowed is not None and value not in allowed:
            raise self.fail(offset, "OVR207", f"{value!r} is not a valid {path}",
                            did_you_mean(value, allowed) or f"one of: {', '.join(sorted(allowed))}")

    # -- predicates ------------------------------------------------------------------------------
    def cmp(self, n: g.Cmp) -> tuple[str, Prereq]:
        ftype = self.ftype(n.path, n.offset)
        get = self.getter(n.path)
        if isinstance(n.rhs, g.Name):
            return self.cmp_fields(n, ftype, get, n.rhs), None
        value = n.rhs.value
        ordering = n.op in ("<", "<=", ">", ">=")
        if value is None:
            if ordering:
                raise self.fail(n.rhs.offset, "OVR202", f"'{n.op} null' is meaningless", "use 'exists' or '= null'")
            return f"({get} is {'' if n.op == '=' else 'not '}None)", None
        self.check_value(n.path, ftype, value, n.rhs.offset, n.op)
        if ordering and (ftype not in (NUMBER, ANY) or isinstance(value, bool | str)):
            raise self.fail(n.offset, "OVR202", f"'{n.op}' needs a number field and a number",
                            f"{n.path!r} is a {ftype}")
        c = self.ctx.const(value, repr(value))
        if n.op == "=":
            prereq = {n.path: frozenset([value])} if n.path in INDEX_FIELDS else None
            if ftype == LIST:
                raise self.fail(n.offset, "OVR202", f"{n.path!r} is a list", f"use '{n.path} contains ...'")
            return f"({get} == {c})", prereq
        if n.op == "!=":
            return f"((_v := {get}) is not None and _v != {c})", None
        guard = f"type(_v := {get}) in _NUMT" if ftype == ANY else f"(_v := {get}) is not None"
        return f"({guard} and _v {n.op} {c})", None

    def cmp_fields(self, n: g.Cmp, ftype: str, get: str, rhs: g.Name) -> str:
        rtype = field_type(rhs.name)
        if rtype is None:
            raise self.fail(rhs.offset, "OVR201", f"unknown field {rhs.name!r}",
                            (did_you_mean(rhs.name, known_fields()) + " " if did_you_mean(rhs.name, known_fields())
                             else "") + f"to compare with text, quote it: \"{rhs.name}\"")
        if ANY not in (ftype, rtype) and ftype != rtype:
            raise self.fail(rhs.offset, "OVR202", f"cannot compare {n.path!r} ({ftype}) with {rhs.name!r} ({rtype})")
        ordering = n.op in ("<", "<=", ">", ">=")
        if ordering and not {ftype, rtype} <= {NUMBER, ANY}:
            raise self.fail(n.offset, "OVR202", f"'{n.op}' needs number fields",
                            f"{n.path!r} is a {ftype}, {rhs.name!r} a {rtype}")
        op = "==" if n.op == "=" else n.op
        if ordering and ANY in (ftype, rtype):  # a free-form value may hold anything: order numbers only
            return (f"(type(_a := {get}) in _NUMT and type(_b := {self.getter(rhs.name)}) in _NUMT "
                    f"and _a {op} _b)")
        return f"((_a := {get}) is not None and (_b := {self.getter(rhs.name)}) is not None and _a {op} _b)"

    def in_(self, n: g.In) -> tuple[str, Prereq]:
        ftype = self.ftype(n.path, n.offset)
        values = self.named_list(n.list_name) if n.list_name else self.literal_values(n.items or ())
        for value, offset in values:
            self.check_value(n.path, ftype, value, offset, "in")
        frozen = frozenset(v for v, _ in values)
        c = self.ctx.const(frozen, "frozenset(" + repr(sorted(map(repr, frozen))) + ")")
        get = self.getter(n.path)
        if ftype == LIST:
            code = f"(type(_v := {get}) is list and not {c}.isdisjoint(_v))"
            return (f"(type(_v := {get}) is list and {c}.isdisjoint(_v))" if n.negate else code), None
        if n.negate:
            test = f"not _safe_in(_v, {c})" if ftype in (ANY,) else f"_v not in {c}"
            return f"((_v := {get}) is not None and {test})", None
        prereq = {n.path: frozen} if n.path in INDEX_FIELDS else None
        return (f"_safe_in({get}, {c})" if ftype in (ANY,) else f"({get} in {c})"), prereq

    def strop(self, n: g.StrOp) -> tuple[str, Prereq]:
        ftype = self.ftype(n.path, n.offset)
        if ftype not in (STRING, ANY) and not (ftype == LIST and n.op == "contains"):
            raise self.fail(n.offset, "OVR202", f"'{n.op}' needs a string field but {n.path!r} is a {ftype}")
        get = self.getter(n.path)
        rhs = n.rhs
        if isinstance(rhs, g.Name) and rhs.name not in self.ctx.lists:
            return self.strop_field(n, get, rhs), None
        if isinstance(rhs, tuple | g.Name):
            values = self.named_list(rhs) if isinstance(rhs, g.Name) else self.literal_values(rhs)
        else:
            values = [(rhs.value, rhs.offset)]
        for value, offset in values:
            if not isinstance(value, str):
                raise self.fail(offset, "OVR202", f"'{n.op}' needs a string but got {value!r}", f"quote it: '{value}'")
        texts = tuple(v for v, _ in values)
        if not texts:
            return "False", None
        offset = values[0][1]
        if n.op in ("glob", "regex"):
            return self.pattern(n.op, get, texts, offset, ftype), None
        if n.op in ("startswith", "endswith"):
            c = self.ctx.const(texts if len(texts) > 1 else texts[0], repr(texts))
            return f"(type(_v := {get}) is str and _v.{n.op}({c}))", None
        if len(texts) == 1:
            c = self.ctx.const(texts[0], repr(texts[0]))
            if ftype == STRING:
                return f"(type(_v := {get}) is str and {c} in _v)", None
            return f"_contains({get}, {c})", None
        c = self.ctx.const(texts, repr(texts))
        return f"_contains_any({get}, {c})", None

    def strop_field(self, n: g.StrOp, get: str, rhs: g.Name) -> str:
        rtype = field_type(rhs.name)
        if rtype is None:
            raise self.fail(rhs.offset, "OVR201", f"unknown field or list {rhs.name!r}",
                            did_you_mean(rhs.name, known_fields() + list(self.ctx.lists))
                            or f"to match text, quote it: \"{rhs.name}\"")
        if n.op in ("glob", "regex"):
            raise self.fail(rhs.offset, "OVR202", f"'{n.op}' needs a literal pattern, not the field {rhs.name!r}")
        if rtype not in (STRING, ANY):
            raise self.fail(rhs.offset, "OVR202", f"{rhs.name!r} is a {rtype}, '{n.op}' needs a string")
        test = {"contains": "_b in _a", "startswith": "_a.startswith(_b)", "endswith": "_a.endswith(_b)"}[n.op]
        return (f"(type(_a := {get}) is str and type(_b := {self.getter(rhs.name)}) is str "
                f"and _b != '' and {test})")

    def pattern(self, op: str, get: str, texts: tuple[str, ...], offset: int, ftype: str) -> str:
        if op == "glob":
            simple = _simple_glob(texts[0]) if len(texts) == 1 else None
            if simple is not None:
                method, arg = simple
                c = self.ctx.const(arg, repr(arg))
                if method == "eq":
                    return f"({get} == {c})"
                if method == "in":
                    return f"(type(_v := {get}) is str and {c} in _v)"
                return f"(type(_v := {get}) is str and _v.{method}({c}))"
            regex = "|".join(f"(?:{fnmatch.translate(t)})" for t in texts)
            c = self.ctx.const(re.compile(regex).match, f"glob{texts!r}")
            return f"(type(_v := {get}) is str and {c}(_v) is not None)"
        pattern = "|".join(f"(?:{t})" for t in texts) if len(texts) > 1 else texts[0]
        try:
            compiled = re2.compile(pattern, _RE2_OPTIONS)
        except re2.error as exc:
            detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise self.fail(offset, "OVR203", f"invalid regular expression {pattern!r}: {detail}",
                            "RE2 syntax: no backreferences or lookaround (https://github.com/google/re2/wiki/Syntax)"
                            ) from None
        c = self.ctx.const(_re2_searcher(compiled), f"re2{pattern!r}")
        return f"(type(_v := {get}) is str and {c}(_v))"


def _re2_searcher(compiled: Any) -> Callable[[str], bool]:
    """A boolean RE2 search without the wrapper's match-object bookkeeping (about 2x faster).

    Uses the pinned google-re2's compiled object directly; falls back to the public API.
    """
    rx = getattr(compiled, "_regexp", None)
    anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    if rx is None or anchor is None:
        return lambda text: compiled.search(text) is not None
    match = rx.Match

    def search(text: str) -> bool:
        data = text.encode("utf-8", "surrogatepass")
        return bool(match(anchor, data, 0, len(data))[0][0] != -1)

    return search


def _simple_glob(pattern: str) -> tuple[str, str] | None:
    """Globs that are plain string tests: ``x`` (eq), ``x*``, ``*x``, ``*x*``."""
    if any(ch in pattern for ch in "?[]"):
        return None
    core = pattern.strip("*")
    if "*" in core or not core:
        return None
    lead, trail = pattern.startswith("*"), pattern.endswith("*")
    if lead and trail:
        return ("in", core) if pattern == f"*{core}*" else None
    if lead:
        return ("endswith", core) if pattern == f"*{core}" else None
    if trail:
        return ("startswith", core) if pattern == f"{core}*" else None
    return ("eq", core)


def _and_prereq(parts: list[Prereq]) -> Prereq:
    out: dict[str, frozenset[Any]] = {}
    for p in parts:
        for k, v in (p or {}).items():
            out[k] = out[k] & v if k in out else v
    return out or None


def _or_prereq(parts: list[Prereq]) -> Prereq:
    if any(p is None for p in parts):
        return None
    common = set.intersection(*(set(p) for p in parts if p is not None))
    out = {k: frozenset().union(*(p[k] for p in parts if p is not None)) for k in common}
    return out or None
