"""Threshold rules over event-time windows: count, sum, avg, min, max, distinct.

State is compact and bounded (see ``benchmarks/rules_bench.py --memory``).
A *tumbling* window keeps its keys column by column, per window start (see
:class:`_Bucket`): per key one dict entry to a row of arrays holding the
count, the newest event time, the event ids (the last 10; a lone id is kept
bare, and an eager window forgets them once it fired), only the numbers its
aggregation needs (sum and number of values; or the extreme; a set only for
``distinct``) and — only for thresholds judged at close — the last event's
context as a tuple of the values the hit needs (the event itself until the
end of its batch). A
*sliding* window keeps per group key one flat list ``ts, [value,] event_id,
...`` (no value for ``count``; a count window's key holding one event is a
single bytes object instead: the time's 8 bytes, then the id), at most
``max_events`` entries long (older entries beyond it are evicted and counted
in ``overflow``); a ``distinct``
set holds at most ``max_events`` values (the count saturates there, also
counted). A window grouped by one field is keyed by the bare value. The
snapshot format is unchanged (see ``dump``).

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
import struct
from array import array
from collections.abc import Callable, Iterator
from typing import Any

from rules.base import Hit
from rules.hits import (
    compact_context,
    expand_context,
    group_dict,
    make_hit,
    reduce_event,
)
from rules.rule import RuleDef, WindowSpec
from rules.template import getter

Emit = Callable[[Hit, dict[str, Any], list[Hit]], None]
MAX_IDS = 10
_CMP: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, "=": lambda a, b: a == b, "!=": lambda a, b: a != b}
# accumulator slots of a tumbling window in snapshots (version 1 format)
COUNT, SUM, NVALS, MIN, MAX, DISTINCT, FIRED, IDS, LAST_TS, CTX = range(10)
_SUM, _MIN, _MAX, _DISTINCT = 1, 2, 3, 4  # aggregation codes of the hot path
_PACK_TS, _UNPACK_TS = struct.Struct("<d").pack, struct.Struct("<d").unpack_from


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
        # one flat group field: the bare value is the key (no tuple per key)
        self.single = self.spec.group_by[0] if flat and len(self.spec.group_by) == 1 else None
        self.value_getter = getter(self.spec.field) if self.spec.field else None
        self.test = _CMP[self.spec.op]
        self.overflow = 0

    def key(self, e: dict[str, Any]) -> Any:
        """The state key of an event (None: not countable); the bare value when grouped by one field."""
        if self.single is not None:
            v = e.get(self.single)
            if v is None:
                return None
            try:
                hash(v)
            except TypeError:
                return None
            return v
        fields = self.group_fields
        key = tuple(map(e.get, fields)) if fields is not None else tuple(g(e) for g in self.group_getters)
        return None if None in key else hashable_key(key)

    def key_tuple(self, key: Any) -> tuple[Any, ...]:
        return (key,) if self.single is not None else key

    def from_tuple(self, key: list[Any] | tuple[Any, ...]) -> Any:
        return key[0] if self.single is not None else tuple(key)

    def fire(self, e: dict[str, Any], key: Any, value: float, count: int, ids: list[str],
             ts: float, start: float, out: list[Hit]) -> None:
        s = self.spec
        extra = {"window.value": value, "window.threshold": s.value, "window.agg": s.agg, "window.count": count,
                 "window.duration": s.duration, "window.field": s.field}
        evidence = {"agg": s.agg, "field": s.field, "value": value, "op": s.op, "threshold": s.value,
                    "count": count, "window_type": s.type, "window_start": start, "window_end": start + s.duration}
        self.emit(make_hit(self.rule, e, ts, list(ids), group_dict(s.group_by, self.key_tuple(key)), evidence,
                           extra), e, out)


def _ids(ids: Any) -> list[Any]:
    """The id list of an accumulator's ids slot (a list, or one bare id)."""
    return ids if type(ids) is list else [ids]


class _Bucket:
    """The keys of one tumbling window, column by column: per key one dict entry and a few array slots.

    Columns: ``n`` count (array), ``last`` newest event time (array), ``ids`` (one bare id, a list of the
    last ids, or True once an eager window fired), ``a``/``b`` the aggregation's numbers (sum and number
    of values in arrays; the extreme or the ``distinct`` set in a list), ``ctx`` the context of a window
    judged at close (the event itself until its batch ends, then a tuple of values).
    """

    __slots__ = ("a", "b", "ctx", "ids", "index", "last", "n")

    def __init__(self, agg: str, eager: bool) -> None:
        self.index: dict[Any, int] = {}
        self.n = array("q")
        self.last = array("d")
        self.ids: list[Any] = []
        self.a: Any = array("d") if agg in ("sum", "avg") else ([] if agg != "count" else None)
        self.b: Any = array("q") if agg in ("sum", "avg") else None
        self.ctx: list[Any] | None = None if eager else []

    def add(self, key: Any, ts: float, eid: Any) -> int:
        i = len(self.n)
        self.index[key] = i
        self.n.append(1)
        self.last.append(ts)
        self.ids.append(eid if type(eid) is str else [eid])
        a = self.a
        if a is not None:
            if self.b is not None:
                a.append(0.0)
                self.b.append(0)
            else:
                a.append(None)
        if self.ctx is not None:
            self.ctx.append(None)
        return i


class TumblingWindow(_WindowBase):
    def __init__(self, rule: RuleDef, lateness: float, emit: Emit) -> None:
        super().__init__(rule, lateness, emit)
        self.buckets: dict[float, _Bucket] = {}
        self.eager = self.spec.eager
        self.agg = self.spec.agg
        self.pending: set[tuple[_Bucket, int]] = set()  # contexts holding a whole event until the batch ends
        # the hot path reads these instead of the spec
        spec = self.spec
        self.agg_code = {"count": 0, "sum": _SUM, "avg": _SUM, "min": _MIN, "max": _MAX, "distinct": _DISTINCT}[spec.agg]
        self.value_field = spec.field if spec.field and "." not in spec.field else None
        self.duration, self.min_count, self.threshold, self.max_events = (spec.duration, spec.min_count, spec.value,
                                                                          spec.max_events)
        self.last_start: float | None = None
        self.last_bucket: _Bucket | None = None

    def on_event(self, e: dict[str, Any], step: int, out: list[Hit]) -> None:
        single = self.single
        if single is not None:
            key = e.get(single)
            if key is None:
                return
        else:
            key = self.key(e)
            if key is None:
                return
        ts = e["_ts"]
        d = self.duration
        start = math.floor(ts / d) * d
        b = self.last_bucket
        if b is None or start != self.last_start:  # consecutive events mostly fall in the same window
            b = self.buckets.get(start)
            if b is None:
                b = self.buckets[start] = _Bucket(self.agg, self.eager)
            self.last_start, self.last_bucket = start, b
        try:
            i = b.index.get(key)
        except TypeError:  # a malformed event put a list or map in the group field: not countable
            return
        eid = e.get("event_id")
        if i is None:
            i = b.add(key, ts, eid)
        else:
            b.n[i] += 1
            if ts > b.last[i]:  # noqa: PLR1730 - a comparison is cheaper than a call on the hot path
                b.last[i] = ts
            ids = b.ids[i]
            if type(ids) is list:
                ids.append(eid)
                if len(ids) > MAX_IDS:
                    del ids[0]
            elif ids is not True:  # True: an eager window that fired no longer needs its ids
                b.ids[i] = [ids, eid]
        agg = self.agg_code
        if agg:
            field = self.value_field
            v = e.get(field) if field is not None else self.value_getter(e)  # type: ignore[misc]
            if v is not None:
                a = b.a
                if agg == _DISTINCT:
                    v = str(v)
                    seen = a[i]
                    if seen is None:
                        a[i] = {v}
                    elif len(seen) < self.max_events:
                        seen.add(v)
                    elif v not in seen:
                        self.overflow += 1  # the set is full: the count saturates at max_events
                elif type(v) is float or type(v) is int:
                    if agg == _SUM:
                        a[i] += v
                        b.b[i] += 1
                    elif agg == _MIN:
                        if a[i] is None or v < a[i]:
                            a[i] = v
                    elif a[i] is None or v > a[i]:
                        a[i] = v
        if not self.eager:
            b.ctx[i] = e  # type: ignore[index] # reduced to a context tuple when the batch ends (see flush)
            self.pending.add((b, i))
        elif b.ids[i] is not True:
            value = self._value(b, i)
            if value is not None and b.n[i] >= self.min_count and self.test(value, self.threshold):
                ids = _ids(b.ids[i])
                b.ids[i] = True
                self.fire(e, key, value, b.n[i], ids, ts, start, out)

    def _value(self, b: _Bucket, i: int) -> float | None:
        agg = self.agg
        if agg == "count":
            return b.n[i]
        if agg == "distinct":
            return len(b.a[i]) if b.a[i] is not None else 0
        if agg == "sum" or agg == "avg":
            if not b.b[i]:
                return None
            return b.a[i] if agg == "sum" else b.a[i] / b.b[i]
        return b.a[i]  # type: ignore[no-any-return]

    def flush(self) -> None:
        """Reduce the events the last batch left in windows judged at close to their context tuples."""
        if self.pending:
            fields = self.rule.context_fields
            for b, i in self.pending:
                ctx = b.ctx[i]  # type: ignore[index]
                if type(ctx) is dict:
                    b.ctx[i] = compact_context(ctx, fields)  # type: ignore[index]
            self.pending.clear()

    def _context(self, b: _Bucket, i: int) -> dict[str, Any]:
        ctx = b.ctx[i]  # type: ignore[index]
        if ctx is None:
            return {}
        return ctx if type(ctx) is dict else expand_context(ctx, self.rule.context_fields)

    def advance(self, watermark: float, out: list[Hit]) -> None:
        self.flush()
        s = self.spec
        for start in sorted(b for b in self.buckets if b + s.duration + self.lateness <= watermark):
            b = self.buckets.pop(start)
            self.last_start, self.last_bucket = None, None
            if self.eager:
                continue
            for key, i in b.index.items():
                value = self._value(b, i)
                if value is not None and b.n[i] >= s.min_count and self.test(value, s.value):
                    self.fire(self._context(b, i), key, value, b.n[i], _ids(b.ids[i]), b.last[i], start, out)

    def size(self) -> int:
        return sum(len(b.index) for b in self.buckets.values())

    def dump(self) -> Any:
        """Version 1 format: ``[start, key, [count, sum, nvals, min, max, distinct, fired, ids, last_ts, ctx]]``."""
        return list(self.rows())

    def rows(self) -> Iterator[Any]:
        """The rows of :meth:`dump` one by one (a snapshot serializes them in chunks)."""
        agg, fields = self.agg, self.rule.context_fields
        for start, b in self.buckets.items():
            for key, i in b.index.items():
                total, nvals, lo, hi, distinct = 0.0, 0, None, None, None
                if agg in ("sum", "avg"):
                    total, nvals = b.a[i], b.b[i]
                elif agg in ("min", "max") and b.a[i] is not None:
                    nvals, lo, hi = 1, b.a[i], b.a[i]
                elif agg == "distinct":
                    distinct = sorted(b.a[i]) if b.a[i] is not None else []
                fired = b.ids[i] is True
                ctx = None if b.ctx is None else b.ctx[i]
                if ctx is not None:
                    ctx = reduce_event(ctx, fields) if type(ctx) is dict else expand_context(ctx, fields)
                yield [start, list(self.key_tuple(key)), [b.n[i], total, nvals, lo, hi, distinct, fired,
                                                           [] if fired else list(_ids(b.ids[i])),
                                                           b.last[i], ctx or None]]

    def load(self, data: Any) -> None:
        self.buckets = {}
        self.last_start, self.last_bucket = None, None
        self.pending.clear()
        agg, fields = self.agg, self.rule.context_fields
        for start, key, old in data:
            b = self.buckets.get(start)
            if b is None:
                b = self.buckets[start] = _Bucket(agg, self.eager)
            i = b.add(self.from_tuple(key), old[LAST_TS], None)
            b.n[i] = old[COUNT]
            ids = list(old[IDS])[-MAX_IDS:]
            b.ids[i] = True if old[FIRED] and self.eager else (ids[0] if len(ids) == 1 and type(ids[0]) is str
                                                               else ids)
            if agg in ("sum", "avg"):
                b.a[i], b.b[i] = old[SUM], old[NVALS]
            elif agg in ("min", "max"):
                b.a[i] = old[MIN] if agg == "min" else old[MAX]
            elif agg == "distinct":
                b.a[i] = set(old[DISTINCT]) if old[DISTINCT] else None
            if b.ctx is not None and old[CTX]:
                b.ctx[i] = compact_context(old[CTX], fields)


def _one(ts: float, eid: Any) -> Any:
    """A count window's key holding one event: its time and id packed into one bytes object
    (8 bytes of the time, then the id in UTF-8); a list ``[ts, event_id]`` when the id is not a string."""
    if type(eid) is str:
        return _PACK_TS(ts) + eid.encode("utf-8", "surrogatepass")
    return [ts, eid]


def _one_ts(h: bytes) -> float:
    return _UNPACK_TS(h)[0]  # type: ignore[no-any-return]


def _one_id(h: bytes) -> str:
    return h[8:].decode("utf-8", "surrogatepass")


class SlidingWindow(_WindowBase):
    def __init__(self, rule: RuleDef, lateness: float, emit: Emit) -> None:
        super().__init__(rule, lateness, emit)
        # key -> flat history: ts, event_id, ts, event_id, ... (count) or ts, value, event_id, ... (others);
        # a count window's key with one event (the common case) is one bytes object instead (see _one)
        self.keys: dict[Any, Any] = {}  # a list, or bytes
        self.next_sweep = -math.inf
        self.stride = 2 if self.spec.agg == "count" else 3
        self.fires_at_one = self.spec.min_count <= 1 and self.test(1, self.spec.value)

    def on_event(self, e: dict[str, Any], step: int, out: list[Hit]) -> None:
        key = self.key(e)
        if key is None:
            return
        s = self.spec
        ts = e["_ts"]
        stride = self.stride
        h: Any = self.keys.get(key)
        if h is None:
            if stride == 2:
                if not self.fires_at_one:  # one event decides nothing: one bytes object, no list
                    self.keys[key] = _one(ts, e.get("event_id"))
                    return
                h = self.keys[key] = [ts, e.get("event_id")]
            else:
                h = self.keys[key] = [ts, _value(s, e, self.value_getter), e.get("event_id")]
        else:
            if type(h) is bytes:  # the key's second event: its packed first event becomes a list
                h = self.keys[key] = [_one_ts(h), _one_id(h)]
            if stride == 2:
                h += (ts, e.get("event_id"))
            else:
                h += (ts, _value(s, e, self.value_getter), e.get("event_id"))
            horizon = ts - s.duration
            if h[0] <= horizon:
                i, n = stride, len(h)
                while i < n and h[i] <= horizon:
                    i += stride
                del h[:i]
            over = len(h) // stride - s.max_events
            if over > 0:
                del h[:over * stride]
                self.overflow += over
        count = len(h) // stride
        if count < s.min_count:
            return
        value = self._value(h, count)
        if value is not None and self.test(value, s.value):
            first = min(h[::stride])
            ids = h[stride - 1::stride][-MAX_IDS:]
            h.clear()
            self.fire(e, key, value, count, ids, ts, first, out)

    def _value(self, h: list[Any], count: int) -> float | None:
        s = self.spec
        if s.agg == "count":
            return count
        values = [v for v in h[1::3] if v is not None]
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
        stride = self.stride
        for key in [k for k, h in self.keys.items()
                    if (_UNPACK_TS(h)[0] <= horizon if type(h) is bytes else not h or max(h[::stride]) <= horizon)]:
            del self.keys[key]
        self.next_sweep = watermark + self.spec.duration

    def size(self) -> int:
        return len(self.keys)

    def dump(self) -> Any:
        """Version 1 format: ``[key, [[ts, value, event_id], ...]]``."""
        return list(self.rows())

    def rows(self) -> Iterator[Any]:
        """The rows of :meth:`dump` one by one (a snapshot serializes them in chunks)."""
        for k, h in self.keys.items():
            if type(h) is bytes:
                items = [[_one_ts(h), None, _one_id(h)]]
            elif self.stride == 2:
                items = [[h[i], None, h[i + 1]] for i in range(0, len(h), 2)]
            else:
                items = [h[i:i + 3] for i in range(0, len(h), 3)]
            yield [list(self.key_tuple(k)), items]

    def load(self, data: Any) -> None:
        self.keys = {}
        for k, items in data:
            if self.stride == 2 and len(items) == 1:
                self.keys[self.from_tuple(k)] = _one(items[0][0], items[0][2])
                continue
            h: list[Any] = []
            for ts, v, eid in items:
                h += (ts, eid) if self.stride == 2 else (ts, v, eid)
            self.keys[self.from_tuple(k)] = h
