"""Per-rule dedup: the first hit of a key returns at once; later ones in the period fold into it.

Folded hits are counted (``suppressed_count`` on the summary, and the
engine's ``suppressed`` stat), never dropped silently. When the period of a
key ends — event time passing ``first.ts + period``, or a new hit of the same
key arriving after it — a *summary hit* is emitted if anything was folded:
same rule and scope, ``suppressed_count`` = number folded, the folded event
ids (last 20) and the period in its evidence. A period with nothing folded
ends quietly.

State per open key is one flat tuple (a list once a hit folded into it) of
what the summary needs: the first hit's time, output, scope, ids, group,
evidence and sources (dicts and lists packed into tuples, so a later change
to the returned hit cannot alter the summary; the output only when it cannot
be rendered again, identically, from the evidence's event fields; a
single-event rule's evidence ``{"fields": {...}}`` as its field names, the
values at the end of the state), the rule-level fields shared by every key
of the rule, the folded count, newest time and ids. Values of
low-cardinality event fields (tenant, deployment, model, categories:
``LOW_CARDINALITY``) are interned, and a key template of one bare field keys
by the field's own string. Snapshots keep the version 1 format (the first
hit as a dict).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

from rules.base import Hit
from rules.rule import RuleDef

MAX_FOLDED_IDS = 20
# slots of an open key's state
TS, COUNT, LAST_TS, IDS, CONSTS, OUTPUT, SCOPE, EVENT_IDS, GROUP, EVIDENCE, TENANT, DEPLOYMENT, MODEL, RUN, \
    SOURCES, FIELDS = range(16)  # FIELDS: where a single-event rule's evidence values start (EVIDENCE: their names)
_CONST_FIELDS = ("rule_id", "rule_version", "kind", "title", "severity", "tags", "mode", "scope_kind",
                 "runbook_url", "suppressed_count")
# event fields whose values repeat across keys (a few tenants, deployments, models, categories): an open key
# keeps them interned, one string object for every key holding the same value, instead of each event's copy
LOW_CARDINALITY = frozenset({
    "tenant_id", "deployment_id", "environment", "region", "provider", "request_model", "response_model",
    "model_checkpoint", "agent_name", "agent_version", "operation", "event_type", "tool_name", "tool_type",
    "action_category", "privilege", "approval", "producer_id", "error_type", "model", "scope_value"})
_intern = sys.intern


def shared(v: Any) -> Any:
    """``v`` interned when it is a string (equal value, one object for all holders; a mortal intern:
    freed with its last holder), else ``v``."""
    return _intern(v) if type(v) is str else v


class _Dict(tuple):  # type: ignore[type-arg]
    """A packed dict: its keys tuple, then its packed values."""

    __slots__ = ()


class _List(tuple):  # type: ignore[type-arg]
    """A packed list."""

    __slots__ = ()


class _Fields(tuple):  # type: ignore[type-arg]
    """A packed ``{"fields": {...}}`` (the evidence of a single-event rule): the inner dict packed as a _Dict."""

    __slots__ = ()


class _Source(tuple):  # type: ignore[type-arg]
    """A packed list ``[topic, partition, offset]`` (an event's ``_src``) that is also a hit's one source."""

    __slots__ = ()


def pack(v: Any, shapes: dict[tuple[str, ...], tuple[str, ...]], source: _Source | None = None) -> Any:
    """An immutable copy of a JSON-like value: dicts and lists become tuples; key tuples are shared via ``shapes``;
    a ``_src`` list equal to ``source`` (atom by atom, types included) becomes ``source`` itself."""
    t = type(v)
    if t is dict:
        if len(v) == 1 and type(v.get("fields")) is dict:
            return _Fields(_pack_dict(v["fields"], shapes, source))
        return _Dict(_pack_dict(v, shapes, source))
    if t is list:
        return _List(pack(x, shapes, source) for x in v)
    if t is tuple:
        return tuple(pack(x, shapes, source) for x in v)
    return v


def _pack_dict(v: dict[str, Any], shapes: dict[tuple[str, ...], tuple[str, ...]],
               source: _Source | None) -> tuple[Any, ...]:
    keys = tuple(v)
    keys = shapes.setdefault(keys, keys)
    return (keys, *(_pack_item(k, x, shapes, source) for k, x in v.items()))


def _pack_item(k: str, x: Any, shapes: dict[tuple[str, ...], tuple[str, ...]], source: _Source | None) -> Any:
    if type(x) is str:
        return _intern(x) if k in LOW_CARDINALITY else x
    if (k == "_src" and source is not None and type(x) is list and len(x) == len(source)
            and all(type(a) is type(b) and a == b for a, b in zip(x, source, strict=True))):
        return source
    return pack(x, shapes, source)


def unpack(v: Any) -> Any:
    """The value :func:`pack` was given (a fresh copy)."""
    t = type(v)
    if t is _Dict:
        return dict(zip(v[0], map(unpack, v[1:]), strict=True))
    if t is _Fields:
        return {"fields": dict(zip(v[0], map(unpack, v[1:]), strict=True))}
    if t is _List or t is _Source:
        return [unpack(x) for x in v]
    if t is tuple:
        return tuple(unpack(x) for x in v)
    return v


class Suppressor:
    def __init__(self, rule: RuleDef) -> None:
        assert rule.dedup_key is not None
        self.rule, self.key, self.period = rule, rule.dedup_key, rule.dedup_period
        # key -> (first ts, folded count, last ts, folded ids, rule-level fields, the first hit's own fields...):
        # a tuple until a hit folds into it, then a list
        self.open: dict[str, Any] = {}
        # a key template of one bare field (``{agent_run_id}``): a string value is the key itself, no new string
        pieces = self.key.pieces
        literal, name, get, spec = pieces[0] if len(pieces) == 1 else ("x", None, None, "")
        self.bare = get if not literal and name is not None and not spec else None
        self.suppressed = 0
        self.next_due = math.inf  # earliest period end: advance() is free until then
        self.shapes: dict[tuple[str, ...], tuple[str, ...]] = {}  # evidence key tuples shared by all keys
        self.consts: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # rule-level fields, one tuple for all keys
        # True while the open keys' first-hit times never decrease in insertion order (hits come sorted by
        # time, so nearly always): then the keys due are a prefix of ``open`` and advance() need not scan it all
        self.ordered = True
        self.newest = -math.inf

    def _state(self, f: dict[str, Any] | Hit) -> tuple[Any, ...]:
        get: Callable[[str], Any] = f.get if isinstance(f, dict) else lambda name: getattr(f, name)
        consts = tuple(pack(get(n), self.shapes) for n in _CONST_FIELDS)
        consts = self.consts.setdefault(consts, consts)
        ids = get("event_ids")
        group = get("group")
        sources = self._sources(get("sources"))
        one = sources if type(sources) is _Source else None  # shared with the evidence's equal ``_src``
        evidence = pack(get("evidence"), self.shapes, one)
        output = get("output")
        fields: tuple[Any, ...] = ()
        if type(evidence) is _Fields:  # a single-event rule's evidence: its values go at the end of the state
            if self.rule.output.render(unpack(evidence)["fields"]) == output:
                output = None  # rendered again from the evidence when needed: the same text
            evidence, fields = evidence[0], evidence[1:]  # the field names (a plain tuple), their values
        return (get("ts"), 0, get("ts"), None, consts, output, shared(get("scope_value")),
                ids[0] if len(ids) == 1 and type(ids[0]) is str else pack(list(ids), self.shapes),
                pack(group, self.shapes) if group else None, evidence,
                shared(get("tenant_id")), shared(get("deployment_id")), shared(get("model")), get("agent_run_id"),
                sources, *fields)

    def _sources(self, sources: list[Any]) -> Any:
        """One source (the usual case) as a _Source of its atoms; else a packed list."""
        if len(sources) == 1 and all(type(x) in (str, int) for x in sources[0]):
            return _Source(sources[0])
        return pack(list(sources), self.shapes)

    def admit(self, hit: Hit, e: dict[str, Any], out: list[Hit]) -> None:
        key = self.bare(e) if self.bare is not None else None
        if type(key) is not str:
            key = self.key.render(e)
        hit.dedup_key = key
        state = self.open.get(key)
        if state is not None and hit.ts >= state[TS] + self.period:
            self._close(key, out)
            state = None
        if state is None:
            self.open[key] = self._state(hit)
            if hit.ts < self.newest:
                self.ordered = False
            else:
                self.newest = hit.ts
            self.next_due = min(self.next_due, hit.ts + self.period)
            out.append(hit)
            return
        if type(state) is tuple:  # the key's first folded hit
            state = self.open[key] = list(state)
        state[COUNT] += 1
        state[LAST_TS] = max(state[LAST_TS], hit.ts)
        state[IDS] = ((state[IDS] or []) + hit.event_ids)[-MAX_FOLDED_IDS:]
        self.suppressed += 1

    def advance(self, watermark: float, out: list[Hit]) -> None:
        if watermark < self.next_due:
            return
        period = self.period
        if self.ordered:
            due = []
            for k, s in self.open.items():
                if s[TS] + period > watermark:
                    break
                due.append(k)
            for key in due:
                self._close(key, out)
            self.next_due = next((s[TS] + period for s in self.open.values()), math.inf)
            return
        for key in [k for k, s in self.open.items() if s[TS] + period <= watermark]:
            self._close(key, out)
        self.next_due = min((s[TS] + period for s in self.open.values()), default=math.inf)
        last = -math.inf  # the scan closed the late keys: are the rest in order again?
        for s in self.open.values():
            if s[TS] < last:
                break
            last = s[TS]
        else:
            self.ordered, self.newest = True, last

    @staticmethod
    def _evidence(s: Any) -> dict[str, Any]:
        """The first hit's evidence (a fresh copy): packed, or a single-event rule's field names and values."""
        ev = s[EVIDENCE]
        if type(ev) is tuple:
            return {"fields": dict(zip(ev, map(unpack, s[FIELDS:]), strict=True))}
        return unpack(ev)  # type: ignore[no-any-return]

    def _first(self, key: str, s: Any) -> dict[str, Any]:
        """The first hit as ``dataclasses.asdict`` gave it (the version 1 snapshot format)."""
        first = dict(zip(_CONST_FIELDS, map(unpack, s[CONSTS]), strict=True))
        ids, output, evidence, sources = s[EVENT_IDS], s[OUTPUT], self._evidence(s), s[SOURCES]
        if output is None:
            output = self.rule.output.render(evidence["fields"])
        first.update(output=output, ts=s[TS], scope_value=s[SCOPE],
                     event_ids=[ids] if type(ids) is str else unpack(ids), group=unpack(s[GROUP]) or {},
                     evidence=evidence, tenant_id=s[TENANT], deployment_id=s[DEPLOYMENT], model=s[MODEL],
                     agent_run_id=s[RUN], sources=[tuple(sources)] if type(sources) is _Source else unpack(sources),
                     dedup_key=key)
        return {name: first[name] for name in Hit.__dataclass_fields__}

    def _close(self, key: str, out: list[Hit]) -> None:
        s = self.open.pop(key)
        count, last_ts, ids = s[COUNT], s[LAST_TS], s[IDS] or []
        if not count:
            return
        first = self._first(key, s)
        summary = Hit(**{**first, "sources": [tuple(x) for x in first["sources"]]})
        summary.output = f"{first['output']} (+{count} more suppressed within {self.period:g}s)"
        summary.ts = last_ts
        summary.event_ids = list(ids)
        summary.suppressed_count = count
        summary.evidence = {**first["evidence"], "suppressed_count": count, "period_start": first["ts"],
                            "period_end": first["ts"] + self.period, "first_event_ids": first["event_ids"]}
        out.append(summary)

    def dump(self) -> Any:
        """Version 1 format: ``{key: [first hit as a dict, folded count, last ts, folded ids]}``."""
        return dict(self.rows())

    def rows(self) -> Iterator[tuple[str, list[Any]]]:
        """The items of :meth:`dump` one by one (a snapshot serializes them in chunks)."""
        for k, s in self.open.items():
            yield k, [self._first(k, s), s[COUNT], s[LAST_TS], s[IDS] or []]

    def load(self, data: Any) -> None:
        self.open = {}
        for k, (first, count, last_ts, ids) in data.items():
            s: Any = self._state(first)
            if count or ids or last_ts != s[LAST_TS]:
                s = list(s)
                s[COUNT], s[LAST_TS], s[IDS] = count, last_ts, list(ids) or None
            self.open[k] = s
        self.next_due = -math.inf
        self.ordered, self.newest = False, -math.inf  # the next advance checks the order
