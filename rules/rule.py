"""Compile ``rule`` items into :class:`RuleDef` values: checked, with compiled conditions.

A rule is one of three kinds, by the keys it has:

- ``condition`` only: evaluated per event;
- ``window`` (+ ``condition`` selecting the events that count): a threshold over time;
- ``sequence``: ordered steps joined by fields within a maxspan.

The definition hash covers only what shapes state (kind, conditions,
exceptions, window, sequence, dedup), so editing a title or runbook during a
hot swap keeps the rule's window and sequence state.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, cast

from rules.base import Mode
from rules.conditions import Compiled, ConditionContext
from rules.durations import parse_duration
from rules.errors import did_you_mean
from rules.fields import field_type, known_fields
from rules.items import Location, RawItem
from rules.template import Getter, Template, getter

SEVERITIES = ("info", "low", "medium", "high", "critical")
MODES = ("enforce", "shadow")
SCOPES = {"deployment": "deployment_id", "model": "request_model", "tenant": "tenant_id",
          "agent_run": "agent_run_id", "session": "conversation_id", "fleet": None}
RULE_KEYS = ("title", "description", "severity", "tags", "enabled", "mode", "runbook", "output", "scope",
             "exceptions", "version", "condition", "window", "sequence", "dedup", "tests")
WINDOW_KEYS = ("agg", "field", "duration", "type", "group_by", "op", "value", "min_count", "max_events")
SEQUENCE_KEYS = ("by", "maxspan", "steps")
AGGS = ("count", "sum", "avg", "min", "max", "distinct")
OPS = (">", ">=", "<", "<=", "=", "!=")
WINDOW_EXTRAS = ("window.value", "window.threshold", "window.agg", "window.count", "window.duration", "window.field")
SEQUENCE_EXTRAS = ("sequence.steps", "sequence.span_s", "sequence.absent")
#: event fields every hit carries (scope and correlation), kept with window/sequence state
CONTEXT_FIELDS = ("event_id", "tenant_id", "deployment_id", "request_model", "agent_run_id", "conversation_id")


@dataclass(slots=True)
class WindowSpec:
    agg: str
    field: str | None
    duration: float
    type: str
    group_by: tuple[str, ...]
    op: str
    value: float
    min_count: int
    max_events: int

    @property
    def eager(self) -> bool:
        """Monotone thresholds fire the moment they are crossed; the rest are judged when the window closes."""
        if self.type == "sliding":
            return True
        if self.op in (">", ">=") and self.agg in ("count", "sum", "distinct", "max"):
            return True
        return self.op in ("<", "<=") and self.agg == "min"


@dataclass(slots=True)
class Step:
    condition: Compiled
    absent: bool = False
    within: float = 0.0


@dataclass(slots=True)
class SequenceSpec:
    by: tuple[str, ...]
    maxspan: float
    steps: list[Step]


@dataclass(slots=True)
class ExceptionSpec:
    name: str
    fields: tuple[str, ...]
    getters: tuple[Getter, ...]
    values: frozenset[tuple[Any, ...]]


@dataclass(slots=True)
class RuleDef:
    id: str
    title: str
    description: str
    severity: str
    tags: list[str]
    enabled: bool
    mode: Mode
    runbook: str | None
    output: Template
    scope: str
    version: str
    location: Location
    condition: Compiled | None = None
    window: WindowSpec | None = None
    sequence: SequenceSpec | None = None
    exceptions: list[ExceptionSpec] = field(default_factory=list)
    dedup_key: Template | None = None
    dedup_period: float = 0.0
    tests: list[Any] = field(default_factory=list)
    raw: RawItem | None = None
    hash: str = ""
    context_fields: tuple[str, ...] = ()
    evidence_fields: tuple[str, ...] = ()  # context plus the fields the conditions read

    @property
    def kind(self) -> str:
        return "sequence" if self.sequence else "window" if self.window else "event"

    def excepted(self, e: dict[str, Any]) -> bool:
        for ex in self.exceptions:
            if tuple(g(e) for g in ex.getters) in ex.values:
                return True
        return False


class _RuleCompiler:
    def __init__(self, item: RawItem, ctx: ConditionContext) -> None:
        self.item, self.ctx, self.body = item, ctx, item.body
        self.ok = True

    def err(self, key: str, code: str, message: str, hint: str = "") -> None:
        self.ok = False
        self.ctx.error(self.item.where(key), code, f"rule {self.item.name!r}: {message}", hint)

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.body.get(key, default)
        if value not in allowed:
            self.err(key, "OVR106", f"{key} must be one of {', '.join(allowed)}, got {value!r}",
                     did_you_mean(str(value), allowed))
            return default
        return str(value)

    def text(self, key: str, required: bool = False, default: str = "") -> str:
        value = self.body.get(key)
        if value is None:
            if required:
                self.err(key, "OVR104", f"missing required key {key!r}")
            return default
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            self.err(key, "OVR105", f"{key} must be a string")
            return default
        return str(value)

    def duration(self, key: str, value: Any) -> float:
        seconds = parse_duration(value)
        if seconds is None:
            self.err(key, "OVR109", f"invalid duration {value!r}", "write e.g. 30s, 10m, 1h or a number of seconds")
            return 1.0
        return seconds

    def fields_list(self, key: str, value: Any, code: str) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            self.err(key, code, f"{key} must be a field name or a list of field names")
            return ()
        for i, name in enumerate(items):
            if field_type(name) is None:
                self.ok = False
                self.ctx.error(self.item.where(f"{key}.{i}") if isinstance(value, list) else self.item.where(key),
                               "OVR201", f"rule {self.item.name!r}: unknown field {name!r}",
                               did_you_mean(name, known_fields()))
        return tuple(items)

    def run(self) -> RuleDef | None:
        item, body = self.item, self.body
        for key in body:
            if key not in RULE_KEYS:
                self.err(key + ":key" if key + ":key" in item.key_locations else key, "OVR103",
                         f"unknown key {key!r}", did_you_mean(key, RULE_KEYS))
        title = self.text("title", required=True)
        severity = self.choice("severity", SEVERITIES, "medium")
        if "severity" not in body:
            self.err("severity", "OVR104", "missing required key 'severity'", f"one of {', '.join(SEVERITIES)}")
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            self.err("tags", "OVR105", "tags must be a list of strings")
            tags = []
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            self.err("enabled", "OVR105", "enabled must be true or false")
        rule = RuleDef(id=item.name, title=title, description=self.text("description"), severity=severity,
                       tags=list(tags), enabled=enabled is not False,
                       mode=cast(Mode, self.choice("mode", MODES, "enforce")),
                       runbook=self.text("runbook") or None, output=Template(title), scope="deployment",
                       version=self.text("version", default="1"), location=item.location, raw=item)
        rule.scope = self.choice("scope", tuple(SCOPES), "deployment")
        self.kind_parts(rule)
        self.template(rule)
        self.exceptions(rule)
        self.dedup(rule)
        rule.tests = self.tests()
        if not self.ok:
            return None
        rule.hash = _definition_hash(rule)
        rule.context_fields = _context_fields(rule)
        rule.evidence_fields = _evidence_fields(rule)
        return rule

    def tests(self) -> list[Any]:
        """Check the shape of the in-file tests (their events are validated when they run)."""
        tests = self.body.get("tests", [])
        if not isinstance(tests, list):
            self.err("tests", "OVR305", "tests must be a list of {name, events, expect}")
            return []
        for i, case in enumerate(tests):
            where = f"tests.{i}"
            if not isinstance(case, dict):
                self.err(where, "OVR305", "a test case is a mapping {name, events, expect}")
                continue
            for key in case:
                if key not in ("name", "events", "expect"):
                    self.err(f"{where}.{key}:key", "OVR103", f"unknown test key {key!r}",
                             did_you_mean(str(key), ("name", "events", "expect")))
            if not isinstance(case.get("events"), list):
                self.err(where, "OVR305", "a test case needs 'events': a list of event mappings")
            expect = case.get("expect")
            if not isinstance(expect, dict) or not {"hits", "hit"} & set(expect) or \
                    set(expect) - {"hits", "hit", "suppressed"}:
                self.err(f"{where}.expect" if "expect" in case else where, "OVR305",
                         "expect must be {hits: N} or {hit: true|false}, optionally with suppressed: N")
        return tests

    def kind_parts(self, rule: RuleDef) -> None:
        body = self.body
        if "sequence" in body:
            if "condition" in body or "window" in body:
                self.err("sequence", "OVR301", "a sequence rule puts its conditions in its steps",
                         "remove 'condition'/'window' or split the rule")
            rule.sequence = self.sequence(body["sequence"])
            return
        if "condition" not in body:
            self.err("condition", "OVR104", "missing required key 'condition' (or 'sequence')")
            return
        rule.condition = self.ctx.compile(body["condition"], self.item.where("condition"))
        if rule.condition is None:
            self.ok = False
        if "window" in body:
            rule.window = self.window(body["window"])

    def window(self, raw: Any) -> WindowSpec | None:
        if not isinstance(raw, dict):
            self.err("window", "OVR300", "window must be a mapping {agg, field, duration, op, value, ...}")
            return None
        for key in raw:
            if key not in WINDOW_KEYS:
                self.err(f"window.{key}:key", "OVR103", f"unknown window key {key!r}",
                         did_you_mean(str(key), WINDOW_KEYS))
        agg = raw.get("agg", "count")
        if agg not in AGGS:
            self.err("window.agg", "OVR300", f"agg must be one of {', '.join(AGGS)}, got {agg!r}",
                     did_you_mean(str(agg), AGGS))
        fld = raw.get("field")
        if agg != "count" and not fld:
            self.err("window", "OVR104", f"window agg {agg!r} needs a 'field'")
        if fld is not None:
            ftype = field_type(fld) if isinstance(fld, str) else None
            if ftype is None:
                self.err("window.field", "OVR201", f"unknown field {fld!r}", did_you_mean(str(fld), known_fields()))
            elif agg in ("sum", "avg", "min", "max") and ftype not in ("number", "any"):
                self.err("window.field", "OVR202", f"{agg} needs a number field but {fld!r} is a {ftype}")
        if "duration" not in raw:
            self.err("window", "OVR104", "window needs a 'duration' (e.g. 60s)")
        wtype = raw.get("type", "tumbling")
        if wtype not in ("tumbling", "sliding"):
            self.err("window.type", "OVR300", f"type must be tumbling or sliding, got {wtype!r}")
        op, value = raw.get("op", ">="), raw.get("value")
        if op not in OPS:
            self.err("window.op", "OVR300", f"op must be one of {' '.join(OPS)}, got {op!r}")
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.err("window.value" if "value" in raw else "window", "OVR300",
                     "window needs a number 'value' to compare with")
            value = 0
        if wtype == "sliding" and op in ("<", "<=") and agg in ("count", "distinct", "sum"):
            self.err("window.op", "OVR300", f"a sliding {agg} '{op}' threshold can never be decided early",
                     "use type: tumbling, judged when each window closes")
        ints = {k: raw.get(k, d) for k, d in (("min_count", 1), ("max_events", 10000))}
        for k, v in ints.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                self.err(f"window.{k}", "OVR300", f"{k} must be a positive integer")
        group = self.fields_list("window.group_by", raw.get("group_by", []), "OVR300")
        return WindowSpec(agg=str(agg), field=fld if isinstance(fld, str) else None,
                          duration=self.duration("window.duration", raw.get("duration", 60)),
                          type=str(wtype), group_by=group, op=str(op), value=float(value),
                          min_count=int(ints["min_count"]), max_events=int(ints["max_events"]))

    def sequence(self, raw: Any) -> SequenceSpec | None:
        if not isinstance(raw, dict):
            self.err("sequence", "OVR301", "sequence must be a mapping {by, maxspan, steps}")
            return None
        for key in raw:
            if key not in SEQUENCE_KEYS:
                self.err(f"sequence.{key}:key", "OVR103", f"unknown sequence key {key!r}",
                         did_you_mean(str(key), SEQUENCE_KEYS))
        by = self.fields_list("sequence.by", raw.get("by", []), "OVR301")
        if not by:
            self.err("sequence", "OVR301", "sequence needs 'by': the fields that join its steps",
                     "e.g. by: [agent_run_id]")
        maxspan = self.duration("sequence.maxspan", raw.get("maxspan"))
        steps_raw = raw.get("steps")
        if not isinstance(steps_raw, list) or len(steps_raw) < 2:
            self.err("sequence.steps" if "steps" in raw else "sequence", "OVR301",
                     "sequence needs 'steps': a list of at least two steps")
            return None
        steps: list[Step] = []
        for i, s in enumerate(steps_raw):
            where = f"sequence.steps.{i}"
            if not isinstance(s, dict) or len(set(s) & {"condition", "absent"}) != 1:
                self.err(where, "OVR301", "each step is {condition: ...} or {absent: ..., within: 5m}")
                continue
            absent = "absent" in s
            for key in s:
                if key not in ("condition", "absent", "within"):
                    self.err(f"{where}.{key}:key", "OVR103", f"unknown step key {key!r}",
                             did_you_mean(str(key), ("condition", "absent", "within")))
            if absent and (i == 0 or i != len(steps_raw) - 1):
                self.err(where, "OVR301", "an absence must be the last step (A, then no B within a time)")
            key = "absent" if absent else "condition"
            compiled = self.ctx.compile(s[key], self.item.where(f"{where}.{key}"))
            if compiled is None:
                self.ok = False
                continue
            within = self.duration(f"{where}.within", s.get("within")) if absent else 0.0
            if not absent and "within" in s:
                self.err(f"{where}.within", "OVR301", "'within' belongs to an absent step; maxspan bounds the others")
            steps.append(Step(compiled, absent, within))
        return SequenceSpec(by=by, maxspan=maxspan, steps=steps)

    def template(self, rule: RuleDef) -> None:
        text = self.body.get("output", rule.title)
        if not isinstance(text, str):
            self.err("output", "OVR105", "output must be a string template")
            return
        try:
            rule.output = Template(text)
        except ValueError as exc:
            self.err("output", "OVR303", f"bad output template: {exc}", "use {field} or {scores.name}")
            return
        extras = ("suppressed_count",) + (WINDOW_EXTRAS if self.body.get("window") else ()) + (
            SEQUENCE_EXTRAS if self.body.get("sequence") else ())
        for name in rule.output.fields:
            if name not in extras and field_type(name) is None:
                self.err("output", "OVR303", f"unknown field {{{name}}} in output",
                         did_you_mean(name, known_fields() + list(extras)) or "fields are event fields")

    def exceptions(self, rule: RuleDef) -> None:
        raw = self.body.get("exceptions", [])
        if not isinstance(raw, list):
            self.err("exceptions", "OVR302", "exceptions must be a list of {name, fields, values}")
            return
        for i, ex in enumerate(raw):
            where = f"exceptions.{i}"
            if not isinstance(ex, dict) or "fields" not in ex or "values" not in ex:
                self.err(where, "OVR302", "an exception needs 'fields' and 'values'",
                         "e.g. {name: ci_bot, fields: [agent_name, tool_name], values: [[ci-bot, bash]]}")
                continue
            for key in ex:
                if key not in ("name", "fields", "values"):
                    self.err(f"{where}.{key}:key", "OVR103", f"unknown exception key {key!r}",
                             did_you_mean(str(key), ("name", "fields", "values")))
            single = isinstance(ex["fields"], str)
            fields = self.fields_list(f"{where}.fields", ex["fields"], "OVR302")
            values = ex["values"]
            if not isinstance(values, list):
                self.err(f"{where}.values", "OVR302", "values must be a list of tuples (lists)")
                continue
            tuples: set[tuple[Any, ...]] = set()
            for j, v in enumerate(values):
                row = [v] if single else v
                if not isinstance(row, list) or len(row) != len(fields):
                    self.err(f"{where}.values.{j}", "OVR302",
                             f"each value must be a list of {len(fields)} item(s), one per field {list(fields)}")
                    continue
                tuples.add(tuple(row))
            rule.exceptions.append(ExceptionSpec(str(ex.get("name", f"exception_{i}")), fields,
                                                 tuple(getter(f) for f in fields), frozenset(tuples)))

    def dedup(self, rule: RuleDef) -> None:
        raw = self.body.get("dedup")
        if raw is None:
            return
        if not isinstance(raw, dict) or "period" not in raw:
            self.err("dedup", "OVR304", "dedup must be {key: \"{deployment_id}\", period: 10m}")
            return
        for key in raw:
            if key not in ("key", "period"):
                self.err(f"dedup.{key}:key", "OVR103", f"unknown dedup key {key!r}",
                         did_you_mean(str(key), ("key", "period")))
        try:
            rule.dedup_key = Template(str(raw.get("key", "{deployment_id}")))
        except ValueError as exc:
            self.err("dedup.key", "OVR304", f"bad dedup key template: {exc}")
            return
        for name in rule.dedup_key.fields:
            if field_type(name) is None:
                self.err("dedup.key", "OVR303", f"unknown field {{{name}}} in dedup key",
                         did_you_mean(name, known_fields()))
        rule.dedup_period = self.duration("dedup.period", raw.get("period"))


def compile_rule(item: RawItem, ctx: ConditionContext) -> RuleDef | None:
    """A checked rule, or None after recording its diagnostics in ``ctx``."""
    return _RuleCompiler(item, ctx).run()


def _definition_hash(rule: RuleDef) -> str:
    parts: dict[str, Any] = {"kind": rule.kind, "condition": rule.condition.canon if rule.condition else None,
                             "exceptions": [[e.fields, sorted(map(repr, e.values))] for e in rule.exceptions],
                             "dedup": [rule.dedup_key.text if rule.dedup_key else None, rule.dedup_period]}
    if rule.window:
        w = rule.window
        parts["window"] = [w.agg, w.field, w.duration, w.type, w.group_by, w.op, w.value, w.min_count, w.max_events]
    if rule.sequence:
        s = rule.sequence
        parts["sequence"] = [s.by, s.maxspan, [[st.condition.canon, st.absent, st.within] for st in s.steps]]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _evidence_fields(rule: RuleDef) -> tuple[str, ...]:
    """Fields shown as a hit's evidence: its context and every field its conditions read."""
    read = list(rule.condition.fields) if rule.condition else []
    for step in rule.sequence.steps if rule.sequence else []:
        read += step.condition.fields
    return tuple(dict.fromkeys([*rule.context_fields, *read]))


def _context_fields(rule: RuleDef) -> tuple[str, ...]:
    """Event fields kept with window/sequence state so a hit fired later can still be rendered."""
    names = list(CONTEXT_FIELDS) + rule.output.fields + (rule.dedup_key.fields if rule.dedup_key else [])
    scope_field = SCOPES.get(rule.scope)
    if scope_field:
        names.append(scope_field)
    return tuple(dict.fromkeys(n for n in names if field_type(n) is not None))
