"""Run the tests written inside rule files, through exactly the engine's code path.

A rule's ``tests`` are cases ``{name, events, expect}``. Each case runs in a
fresh :class:`rules.engine.Engine` holding only that rule (with all lists and
macros), so other rules cannot interfere. Events are validated by
`schemas.Event` like live input; they may omit ``event_id`` (generated),
``event_type`` (``tool_call``) and ``ts`` (2026-01-01T00:00:00Z plus one
second per event, or ``t: 30s`` — an offset from that base). After the events,
event time jumps far ahead, so windows close, absences fire and dedup
periods end — a test sees every hit the rule would ever produce.

``expect`` is ``{hits: N}`` (hits of this rule, dedup summaries included),
``{hit: true|false}``, optionally with ``suppressed: N`` (folded hits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from rules.base import Hit
from rules.durations import parse_duration
from rules.engine import Engine
from rules.items import Location
from rules.rule import RuleDef

__all__ = ['CaseResult', 'run_case', 'run_rule_tests']

BASE_TS = datetime(2026, 1, 1, tzinfo=UTC)
FLUSH_S = 1e9
CASE_KEYS = ("name", "events", "expect")


@dataclass
class CaseResult:
    rule_id: str
    name: str
    passed: bool
    location: Location
    message: str = ""
    hits: list[Hit] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule_id, "test": self.name, "passed": self.passed, "message": self.message,
                "path": self.location.path, "line": self.location.line, "col": self.location.col,
                "hits": [{"output": h.output, "severity": h.severity, "suppressed_count": h.suppressed_count}
                         for h in self.hits]}


class _CaseError(Exception):
    def __init__(self, message: str, location: Location) -> None:
        super().__init__(message)
        self.message, self.location = message, location


def event_dicts(raw_events: list[Any], rule: RuleDef, case_index: int) -> list[dict[str, Any]]:
    """Validate test events into event dicts as the decoder makes them (fields + ``_ts``)."""
    from schemas.events import Event

    out = []
    for j, raw in enumerate(raw_events):
        where = rule.raw.where(f"tests.{case_index}.events.{j}") if rule.raw else rule.location
        if not isinstance(raw, dict):
            raise _CaseError(f"event {j} must be a mapping of event fields", where)
        data = dict(raw)
        offset = data.pop("t", None)
        if offset is not None:
            seconds = parse_duration(offset) if offset != 0 else 0.0
            if seconds is None:
                raise _CaseError(f"event {j}: bad offset t={offset!r}", where)
            data.setdefault("ts", BASE_TS + timedelta(seconds=seconds))
        data.setdefault("ts", BASE_TS + timedelta(seconds=j))
        data.setdefault("event_type", "tool_call")
        data.setdefault("event_id", f"test-{rule.id}-{case_index}-{j}")
        try:
            event = Event.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise _CaseError(f"event {j} is not a valid event: {loc}: {first['msg']}", where) from None
        d = event.model_dump()
        d["_ts"] = event.ts.timestamp()
        out.append(d)
    return out


def run_case(engine: Engine, rule: RuleDef, index: int, case: Any) -> CaseResult:
    where = rule.raw.where(f"tests.{index}") if rule.raw else rule.location
    name = str(case.get("name", f"case {index}")) if isinstance(case, dict) else f"case {index}"
    try:
        if not isinstance(case, dict):
            raise _CaseError("a test case is a mapping {name, events, expect}", where)
        unknown = [k for k in case if k not in CASE_KEYS]
        if unknown:
            raise _CaseError(f"unknown test key(s) {unknown}; a case has {', '.join(CASE_KEYS)}", where)
        expect = case.get("expect")
        if not isinstance(expect, dict) or not ({"hits", "hit"} & set(expect)):
            raise _CaseError("expect must be {hits: N} or {hit: true|false}", where)
        events = event_dicts(case.get("events") or [], rule, index)
    except _CaseError as exc:
        return CaseResult(rule.id, name, False, exc.location, exc.message)
    hits = [h for h in engine.process(events) if h.rule_id == rule.id]
    last = max((e["_ts"] for e in events), default=BASE_TS.timestamp())
    hits += [h for h in engine.advance(last + FLUSH_S) if h.rule_id == rule.id]
    problems = []
    if "hits" in expect and len(hits) != expect["hits"]:
        problems.append(f"expected {expect['hits']} hit(s), got {len(hits)}")
    if "hit" in expect and bool(hits) != bool(expect["hit"]):
        problems.append(f"expected {'a hit' if expect['hit'] else 'no hit'}, got {len(hits)}")
    if "suppressed" in expect:
        folded = sum(h.suppressed_count for h in hits)
        if folded != expect["suppressed"]:
            problems.append(f"expected {expect['suppressed']} suppressed, got {folded}")
    return CaseResult(rule.id, name, not problems, where, "; ".join(problems), hits)


def run_rule_tests(engine: Engine, rule_ids: list[str] | None = None) -> list[CaseResult]:
    """Run every test case of every rule (or of ``rule_ids``) of a loaded engine."""
    results: list[CaseResult] = []
    for rule in engine.rules:
        if rule_ids is not None and rule.id not in rule_ids:
            continue
        for i, case in enumerate(rule.tests):
            single = Engine(engine.loaded, [_enabled(rule)], engine.context, [], allowed_lateness_s=engine.lateness)
            results.append(run_case(single, rule, i, case))
    return results


def _enabled(rule: RuleDef) -> RuleDef:
    """Tests exercise a disabled rule too (it may be enabled by an override)."""
    if rule.enabled:
        return rule
    from dataclasses import replace

    return replace(rule, enabled=True)
