"""Threshold rules over event-time windows: count, sum, avg, min, max, distinct.

State is compact and bounded. A *tumbling* window keeps, per (window start,
group key), a handful of numbers (count, sum, min, max; a set only for
``distinct``), the last 10 event ids and — only for thresholds judged at
close — a reduced copy of the last event. A *sliding* window keeps per group
key a deque of ``(ts, value, event_id)``, at most ``max_events`` long (older
entries beyond it are evicted and counted in ``overflow``); a ``distinct`` set
holds at most ``max_events`` values (the count saturates there, also counted).

When a threshold is decided:

- monotone thresholds (``count|sum|distinct|max`` with ``>``/``>=``; ``min``
  with ``<``/``<=``) fire the moment they are crossed, once per window;
- any other tumbling threshold (``avg``, ``<`` on counts, ``=``) is judged
  when the window closes: event time reaching ``end + allowed lateness``;
- a sliding window is judged after every event; after it fires, its key
  starts afresh (the evidence is consumed), so one burst is one hit.

Events without a value for a ``group_by`` field are not counted (there is
no key to count them under). Late events (older than the watermark minus
the allowed lateness) are counted by the engine *and still applied* to
their own window; a window that had already closed re-opens for them and is
judged again at the next advance.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

from rules.base import Hit
from rules.hits import group_dict, make_hit, reduce_event
from rules.rule import RuleDef, WindowSpec
from rules.template import getter

Emit = Callable[[Hit, dict[str, Any], list[Hit]], None]
MAX_IDS = 10
_CMP: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, "=": lambda a, b: a == b, "!=": lambda a, b: a != b}
# accumulator slots of a tumbling window
COUNT, SUM, NVALS, MIN, MAX, DISTINCT, FIRED, IDS, LAST_TS, CTX = range(10)


def hashable_key(key: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The key, or None when a malformed event put a list or map in a group field (not countable)."""
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _value(spec: WindowSpec, e: dict[str, Any], get: Callable[[dict[str, Any]], Any] | None) -> Any:
    if get is None:
        return None
    v = get(e)
    if spec.agg == "distinct":
        return None if v is None else str(v)
    return v if type(v) in (int, float) else None


def aggregate(spec: WindowSpec, count: int, total: float, nvals: int, lo: float | None, hi: float | None,
              distinct: int) -> float | None:
    """The aggregate's current value (None while undefined, e.g. avg of nothing)."""
    if spec.agg == "count":
        return count
    if spec.agg == "distinct":
        return distinct
    if nvals == 0:
        return None
    return {"sum": total, "avg": total / nvals, "min": lo, "max": hi}[spec.agg]


class _WindowBase:
    def __init__(self, rule: RuleDef, lateness: float, emit: Emit) -> None:
        assert rule.window is not None
        self.rule, self.spec, self.lateness, self.emit = rule, rule.window, lateness, emit
        self.group_getters = tuple(getter(f) for f in self.spec.group_by)
        flat = all("." not in f for f in self.spec.group_by)
        self.group_fields = self.spec.group_by if flat else None
        self.value_getter = getter(self.spec.field) if self.spec.field else None
        self.test = _CMP[self.spec.op]
        self.overflow = 0

    def key(self, e: dict[str, Any]) -> tuple[Any, ...] | None:
        fields = self.group_fields
        key = tuple(map(e.get, fields)) if fields is not None else tuple(g(e) for g in self.group_getters)
        return None if None in key else hashable_key(key)

    def fire(self, e: dict[str, Any], key: tuple[Any, ...], value: float, count: int, ids: list[str],
             ts: float, start: float, out: list[Hit]) -> None:
        s = self.spec
        extra = {"window.value": value, "window.threshold": s.value, "window.agg": s.agg, "window.count": count,
                 "window.duration": s.duration, "window.field": s.field}
        evidence = {"agg": s.agg, "field": s.field, "value": value, "op": s.op, "threshold": s.value,
                    "count": count, "window_type": s.type, "window_start": start, "window_end": start + s.duration}
        self.emit(make_hit(self.rule, e, ts, list(ids), group_dict(s.group_by, key), evidence, extra), e, out)


class TumblingWindow(_WindowBase):
    def __init__(self, rule: RuleDef, lateness: float, emit: Emit) -> None:
        super().__init__(rule, lateness, emit)
        self.buckets: dict[float, dict[tuple[Any, ...], list[Any]]] = {}
        self.eager = self.spec.eager

    def on_event(self, e: dict[str, Any], step: int, out: list[Hit]) -> None:
        key = self.key(e)
        if key is None:
            return
        s = self.spec
        ts = e["_ts"]
        start = math.floor(ts / s.duration) * s.duration
        accs = self.buckets.get(start)
        if accs is None:
            accs = self.buckets[start] = {}
        acc = accs.get(key)
        if acc is None:
            acc = accs[key] = [0, 0.0, 0, None, None, set() if s.agg == "distinct" else None, False, [], ts, None]
        acc[COUNT] += 1
        v = _value(s, e, self.value_getter)
        if v is not None:
            if s.agg == "distinct":
                if len(acc[DISTINCT]) < s.max_events:
                    acc[DISTINCT].add(v)
                elif v not in acc[DISTINCT]:
                    self.overflow += 1  # the set is full: the count saturates at max_events
            else:
                acc[SUM] += v
                acc[NVALS] += 1
                acc[MIN] = v if acc[MIN] is None or v < acc[MIN] else acc[MIN]
                acc[MAX] = v if acc[MAX] is None or v > acc[MAX] else acc[MAX]
        ids = acc[IDS]
        ids.append(e.get("event_id"))
        if len(ids) > MAX_IDS:
            del ids[0]
        acc[LAST_TS] = max(acc[LAST_TS], ts)
        if not self.eager:
            acc[CTX] = e  # reduced to the context fields only when snapshotted (see dump)
        elif not acc[FIRED]:
            value = self._value(acc)
            if value is not None and acc[COUNT] >= s.min_count and self.test(value, s.value):
                acc[FIRED] = True
                self.fire(e, key, value, acc[COUNT], ids, ts, start, out)

    def _value(self, acc: list[Any]) -> float | None:
        return aggregate(self.spec, acc[COUNT], acc[SUM], acc[NVALS], acc[MIN], acc[MAX],
                         len(acc[DISTINCT]) if acc[DISTINCT] is not None else 0)

    def advance(self, watermark: float, out: list[Hit]) -> None:
        s = self.spec
        for start in sorted(b for b in self.buckets if b + s.duration + self.lateness <= watermark):
            accs = self.buckets.pop(start)
            if self.eager:
                continue
            for key, acc in accs.items():
                value = self._value(acc)
                if value is not None and acc[COUNT] >= s.min_count and self.test(value, s.value):
                    self.fire(acc[CTX] or {}, key, value, acc[COUNT], acc[IDS], acc[LAST_TS], start, out)

    def size(self) -> int:
        return sum(len(a) for a in self.buckets.values())

    def dump(self) -> Any:
        fields = self.rule.context_fields
        return [[start, list(key), [*acc[:DISTINCT], sorted(acc[DISTINCT]) if acc[DISTINCT] is not None else None,
                                    *acc[FIRED:CTX], reduce_event(acc[CTX], fields) if acc[CTX] else None]]
                for start, accs in self.buckets.items() for key, acc in accs.items()]

    def load(self, data: Any) -> None:
        self.buckets = {}
        for start, key, acc in data:
            if acc[DISTINCT] is not None:
                acc[DISTINCT] = set(acc[DISTINCT])
            self.buckets.setdefault(start, {})[tuple(key)] = acc


class SlidingWindow(_WindowBase):
    def __init__(self, rule: RuleDef, lateness: float, emit: Emit) -> None:
        super().__init__(rule, lateness, emit)
        self.keys: dict[tuple[Any, ...], deque[tuple[float, Any, Any]]] = {}
        self.next_sweep = -math.inf

    def on_event(self, e: dict[str, Any], step: int, out: list[Hit]) -> None:
        key = self.key(e)
        if key is None:
            return
        s = self.spec
        ts = e["_ts"]
        dq = self.keys.get(key)
        if dq is None:
            dq = self.keys[key] = deque()
        dq.append((ts, _value(s, e, self.value_getter), e.get("event_id")))
        horizon = ts - s.duration
        while dq and dq[0][0] <= horizon:
            dq.popleft()
        while len(dq) > s.max_events:
            dq.popleft()
            self.overflow += 1
        if len(dq) < s.min_count:
            return
        value = self._value(dq)
        if value is not None and self.test(value, s.value):
            first = min(item[0] for item in dq)
            ids = [item[2] for item in dq][-MAX_IDS:]
            count = len(dq)
            dq.clear()
            self.fire(e, key, value, count, ids, ts, first, out)

    def _value(self, dq: deque[tuple[float, Any, Any]]) -> float | None:
        s = self.spec
        if s.agg == "count":
            return len(dq)
        values = [item[1] for item in dq if item[1] is not None]
        if s.agg == "distinct":
            return len(set(values))
        if not values:
            return None
        if s.agg == "sum":
            return float(sum(values))
        if s.agg == "avg":
            return float(sum(values)) / len(values)
        return float(min(values) if s.agg == "min" else max(values))

    def advance(self, watermark: float, out: list[Hit]) -> None:
        if watermark < self.next_sweep:
            return
        horizon = watermark - self.spec.duration - self.lateness
        for key in [k for k, dq in self.keys.items() if not dq or max(i[0] for i in dq) <= horizon]:
            del self.keys[key]
        self.next_sweep = watermark + self.spec.duration

    def size(self) -> int:
        return len(self.keys)

    def dump(self) -> Any:
        return [[list(k), [list(i) for i in dq]] for k, dq in self.keys.items()]

    def load(self, data: Any) -> None:
        self.keys = {tuple(k): deque(tuple(i) for i in items) for k, items in data}
