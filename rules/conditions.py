"""Compile conditions ONCE into fast Python predicates over event dicts.

A condition's AST (`rules.grammar`) is type-checked against the event schema
(`rules.fields`), macros are expanded and named lists inlined, and the result
is generated as one Python expression and compiled to a single lambda, so
evaluating a rule is one call with no interpretation. Literals live in a
constant pool bound as default arguments (fast local lookups; no literal is
ever pasted into source code). Every comparison reads its field once and is
false when the field is missing or None — a predicate never raises on a
well-formed event dict.

>>> from rules.errors import Diagnostics
>>> from rules.items import Location
>>> ctx = ConditionContext(Diagnostics())
>>> p = ctx.compile_condition('action_category = "exec" and tool_arguments contains "rm -rf"',
...                           Location("<doc>", 1, 1))
>>> p({"action_category": "exec", "tool_arguments": "rm -rf /"}), p({"action_category": "exec"})
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rules.codegen import GLOBALS, CodeGen, Fail, Prereq
from rules.errors import Diagnostics, did_you_mean
from rules.items import Location, Predicate, RawItem
from rules.yamlsrc import OffsetMap

__all__ = ['Compiled', 'ConditionContext', 'compile_condition']

_CONST = re.compile(r"_K\d+_")


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled condition: the predicate, its indexing prerequisite and a canonical text for hashing."""

    predicate: Predicate
    prereq: Prereq
    canon: str
    code: str
    fields: tuple[str, ...] = ()  # every field path the condition reads (macros included)


class ConditionContext:
    """Lists, macros and the diagnostics sink: implements `rules.items.CompileContext`."""

    def __init__(self, diags: Diagnostics, lists: list[RawItem] | None = None,
                 macros: list[RawItem] | None = None,
                 offset_maps: dict[Location, tuple[str, OffsetMap]] | None = None) -> None:
        self.diags = diags
        self.lists = {i.name: i for i in lists or []}
        self.macros = {i.name: i for i in macros or []}
        self.offset_maps = offset_maps or {}
        self._consts: list[Any] = []
        self._const_ids: dict[str, int] = {}
        self._canon: list[str] = []
        self._list_values: dict[str, tuple[Any, ...] | None] = {}
        self._macro_code: dict[str, tuple[str, Prereq] | None] = {}
        self.macro_fields: dict[str, list[str]] = {}
        self.macro_stack: list[str] = []

    # -- CompileContext -------------------------------------------------------------------------
    def compile_condition(self, source: str, location: Location) -> Predicate | None:
        compiled = self.compile(source, location)
        return compiled.predicate if compiled else None

    def error(self, location: Location, code: str, message: str, hint: str = "") -> None:
        self.diags.error(location, code, message, hint)

    # -- richer API for the rule compiler ------------------------------------------------------
    def compile(self, source: Any, location: Location) -> Compiled | None:
        if not isinstance(source, str):
            self.error(location, "OVR105", f"a condition must be a string, got {type(source).__name__}",
                       "quote the condition or use a folded block: condition: >")
            return None
        gen = CodeGen(self, source, location)
        try:
            code, prereq = gen.run()
        except Fail:
            return None
        used = sorted(set(_CONST.findall(code)))
        defaults = "".join(f", {n}={n}" for n in used)
        namespace = dict(GLOBALS)
        namespace.update({n: self._consts[int(n[2:-1])] for n in used})
        predicate = eval(f"lambda e{defaults}: {code}", namespace)  # noqa: S307 - generated from a checked AST
        canon = _CONST.sub(lambda m: self._canon[int(m.group()[2:-1])], code)
        return Compiled(predicate, prereq, canon, code, tuple(dict.fromkeys(gen.fields)))

    def namespace(self) -> dict[str, Any]:
        """Helpers and every pooled constant: the globals of code fused from many conditions."""
        out = dict(GLOBALS)
        out.update({f"_K{i}_": v for i, v in enumerate(self._consts)})
        return out

    def check_all(self) -> None:
        """Validate every list and macro, used or not (so a typo in an unused macro is still reported)."""
        for name in self.lists:
            self.list_values(name, self.lists[name].location)
        for name in self.macros:
            self.macro_code(name)

    def locate(self, location: Location, source: str, offset: int) -> Location:
        found = self.offset_maps.get(location)
        if found is not None and found[0] == source:
            return found[1](offset)
        if "\n" not in source[:offset]:
            return Location(location.path, location.line, location.col + offset)
        return location

    def const(self, value: Any, canon: str) -> str:
        idx = self._const_ids.get(canon)
        if idx is None:
            idx = len(self._consts)
            self._consts.append(value)
            self._canon.append(canon)
            self._const_ids[canon] = idx
        return f"_K{idx}_"

    def list_values(self, name: str, where: Location, stack: tuple[str, ...] = ()) -> tuple[Any, ...] | None:
        if name in self._list_values:
            return self._list_values[name]
        item = self.lists[name]
        if name in stack:
            self.error(item.location, "OVR206", f"list {name!r} includes itself: {' -> '.join((*stack, name))}")
            return None
        for key in item.body:
            if key != "items":
                self.error(item.where(key), "OVR103", f"unknown key {key!r} in list {name!r}",
                           did_you_mean(key, ["items"]) or "a list has only 'items'")
        raw = item.body.get("items")
        if not isinstance(raw, list):
            self.error(item.where("items") if "items" in item.body else item.location,
                       "OVR104" if raw is None else "OVR105", f"list {name!r} needs 'items': a YAML list of values")
            self._list_values[name] = None
            return None
        out: list[Any] = []
        for i, v in enumerate(raw):
            if isinstance(v, str) and v in self.lists and v != name:
                sub = self.list_values(v, item.where(f"items.{i}"), (*stack, name))
                out.extend(sub or ())
            elif isinstance(v, str | int | float | bool):
                out.append(v)
            else:
                self.error(item.where(f"items.{i}"), "OVR105", f"list {name!r} items must be strings or numbers")
        self._list_values[name] = tuple(out)
        return self._list_values[name]

    def macro_code(self, name: str) -> tuple[str, Prereq] | None:
        if name in self._macro_code:
            return self._macro_code[name]
        item = self.macros[name]
        for key in item.body:
            if key != "condition":
                self.error(item.where(key), "OVR103", f"unknown key {key!r} in macro {name!r}",
                           did_you_mean(key, ["condition"]) or "a macro has only 'condition'")
        source = item.body.get("condition")
        if not isinstance(source, str):
            self.error(item.where("condition") if "condition" in item.body else item.location,
                       "OVR104" if source is None else "OVR105", f"macro {name!r} needs a 'condition' string")
            self._macro_code[name] = None
            return None
        self.macro_stack.append(name)
        gen = CodeGen(self, source, item.where("condition"))
        try:
            result: tuple[str, Prereq] | None = gen.run()
        except Fail:
            result = None
        finally:
            self.macro_stack.pop()
        self.macro_fields[name] = gen.fields
        self._macro_code[name] = result
        return result


def compile_condition(source: str, *, lists: dict[str, list[Any]] | None = None,
                      macros: dict[str, str] | None = None, location: Location | None = None,
                      errors: Diagnostics | None = None) -> Callable[[dict[str, Any]], bool] | None:
    """One-shot helper: compile ``source`` with plain-dict lists and macros.

    >>> p = compile_condition("tool_name in shells", lists={"shells": ["bash", "sh"]})
    >>> p({"tool_name": "sh"}), p({"tool_name": "python"})
    (True, False)
    """
    loc = location or Location("<condition>", 1, 1)
    diags = errors if errors is not None else Diagnostics()
    lst = [RawItem("list", k, {"items": v}, loc) for k, v in (lists or {}).items()]
    mac = [RawItem("macro", k, {"condition": v}, loc) for k, v in (macros or {}).items()]
    return ConditionContext(diags, lst, mac).compile_condition(source, loc)
