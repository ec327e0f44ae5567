"""Sequence rules: ordered steps joined by fields within a maxspan; absence as the last step.

State per join key is one partial match, kept row by row in columns (arrays
of numbers; freed rows are reused): the next step, start and last times,
the absence deadline, the event ids (a lone id kept bare) and, once an
absence is armed, the context the hit needs as a tuple of values. A partial
that has seen only step 0 (the common case) is one bytes object instead of a
row: the start time, then the event id. A sequence joined by one field is
keyed by the bare value. The snapshot format is unchanged (see ``dump``). Semantics, chosen
to be predictable:

- a step-0 match starts a partial; while only step 0 has been seen, a newer
  step-0 match restarts it (the latest start gives the best chance to finish
  within ``maxspan``);
- step *i* advances only the partial waiting for step *i*, and only with an
  event no older than the previous step;
- the last positive step completing within ``maxspan`` of the start fires;
- an absence step (``absent: B, within: 5m``) arms a deadline when the step
  before it matches: a ``B`` before the deadline cancels the partial; event
  time reaching ``deadline + allowed lateness`` (via ``Engine.advance`` or a
  later batch of *any* key) fires the rule — no later event of the same key
  is needed;
- partials older than ``maxspan + allowed lateness`` are dropped.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Callable, Iterator
from math import isnan
from typing import Any

from rules.base import Hit
from rules.hits import compact_context, expand_context, group_dict, make_hit
from rules.rule import RuleDef
from rules.template import getter
from rules.windows import hashable_key

Emit = Callable[[Hit, dict[str, Any], list[Hit]], None]
NEXT, START, LAST, IDS, CTX, DEADLINE = range(6)  # slots of a partial in snapshots (version 1)
_PACK_TS, _UNPACK_TS = struct.Struct("<d").pack, struct.Struct("<d").unpack_from


def _lone_id(h: bytes) -> str:
    return h[8:].decode("utf-8", "surrogatepass")


class Sequence:
    def __init__(self, rule: RuleDef, lateness: float, emit: Emit) -> None:
        assert rule.sequence is not None
        self.rule, self.spec, self.lateness, self.emit = rule, rule.sequence, lateness, emit
        self.getters = tuple(getter(f) for f in self.spec.by)
        self.single = self.getters[0] if len(self.getters) == 1 else None  # keyed by the bare value
        self.n = len(self.spec.steps)
        self.absent_last = self.spec.steps[-1].absent
        # partials row by row (free rows reused): key -> row of next step, start, last, ids, context, deadline;
        # a partial that saw only step 0 (no absence armed, a string id) is one bytes object instead: the
        # start time's 8 bytes, then the id in UTF-8 (next step 1, last time = start)
        self.partials: dict[Any, Any] = {}
        # one step-0 partial can stay bytes: when step 1 is not an absence (arming one needs a row)
        self.lone = self.n > 1 and not self.spec.steps[1].absent
        self.free: list[int] = []
        self.nxt: list[int] = []
        self.start = array("d")
        self.last = array("d")
        self.deadline = array("d")  # NaN: no absence armed
        self.ids: list[Any] = []  # one bare id, or a list
        self.ctx: list[tuple[Any, ...] | None] = []
        self.next_due = math.inf

    def on_event(self, e: dict[str, Any], step: int, out: list[Hit]) -> None:
        if self.single is not None:
            key = self.single(e)
            if key is None:
                return
            try:
                hash(key)
            except TypeError:
                return
        else:
            key = hashable_key(tuple(g(e) for g in self.getters))
            if key is None or None in key:
                return
        ts = e["_ts"]
        i = self.partials.get(key)
        if type(i) is bytes:  # only step 0 seen
            start = _UNPACK_TS(i)[0]
            if ts - start > self.spec.maxspan:
                del self.partials[key]
            elif step == 0:
                self._start(key, e, ts, None)
                return
            elif step == 1 and ts >= start:  # it advances: a row from here on
                h, i = i, self._row(key, None)
                self.nxt[i], self.start[i], self.last[i], self.deadline[i] = 1, start, start, math.nan
                self.ids[i] = _lone_id(h)
            else:
                return
            if type(i) is bytes:
                i = None
        if i is not None:
            deadline = self.deadline[i]
            if not isnan(deadline):  # an absence is armed
                if ts > deadline:  # this key's own time passed the deadline: the absence is proven
                    self._fire(self._context(i), key, i, deadline, absent=True, out=out)
                    self._drop(key, i)
                    i = None
            elif ts - self.start[i] > self.spec.maxspan:
                self._drop(key, i)
                i = None
        if step == 0:
            if i is None or self.nxt[i] == 1:
                self._start(key, e, ts, i)
            return
        if i is None or self.nxt[i] != step or ts < self.last[i]:
            return
        if self.spec.steps[step].absent:
            if ts <= self.deadline[i]:
                self._drop(key, i)  # the awaited-against event happened: no alert
            return
        if ts - self.start[i] > self.spec.maxspan:
            return
        self.nxt[i] += 1
        self.last[i] = ts
        ids = self.ids[i]
        if type(ids) is list:
            ids.append(e.get("event_id"))
        else:
            self.ids[i] = [ids, e.get("event_id")]
        if self.nxt[i] == self.n:
            self._fire(e, key, i, ts, absent=False, out=out)
            self._drop(key, i)
        elif self.spec.steps[self.nxt[i]].absent:
            self._arm(i, e, ts)

    def _row(self, key: Any, i: int | None) -> int:
        """The row of ``key``: its current one (a restart), a free one, or a new one."""
        if i is None:
            if self.free:
                i = self.free.pop()
            else:
                i = len(self.nxt)
                self.nxt.append(0)
                self.start.append(0.0)
                self.last.append(0.0)
                self.deadline.append(math.nan)
                self.ids.append(None)
                self.ctx.append(None)
            self.partials[key] = i
        return i

    def _drop(self, key: Any, i: int) -> None:
        del self.partials[key]
        self.ids[i] = self.ctx[i] = None
        self.free.append(i)

    def _start(self, key: Any, e: dict[str, Any], ts: float, i: int | None) -> None:
        eid = e.get("event_id")
        if self.lone and type(eid) is str:
            if i is not None:  # free the row; the key keeps its place in ``partials`` (advance's order)
                self.ids[i] = self.ctx[i] = None
                self.free.append(i)
            self.partials[key] = _PACK_TS(ts) + eid.encode("utf-8", "surrogatepass")
            self.next_due = min(self.next_due, ts + self.spec.maxspan + self.lateness)
            return
        i = self._row(key, i)
        self.nxt[i], self.start[i], self.last[i], self.deadline[i] = 1, ts, ts, math.nan
        self.ids[i] = eid if type(eid) is str else [eid]
        self.ctx[i] = None
        if self.spec.steps[1].absent:
            self._arm(i, e, ts)
        self.next_due = min(self.next_due, ts + self.spec.maxspan + self.lateness)

    def _arm(self, i: int, e: dict[str, Any], ts: float) -> None:
        self.deadline[i] = deadline = ts + self.spec.steps[self.nxt[i]].within
        self.ctx[i] = compact_context(e, self.rule.context_fields)
        self.next_due = min(self.next_due, deadline + self.lateness)

    def _context(self, i: int) -> dict[str, Any]:
        ctx = self.ctx[i]
        return expand_context(ctx, self.rule.context_fields) if ctx is not None else {}

    def _ids(self, i: int) -> list[Any]:
        ids = self.ids[i]
        return ids if type(ids) is list else [ids]

    def _fire(self, e: dict[str, Any], key: Any, i: int, ts: float, absent: bool, out: list[Hit]) -> None:
        start = self.start[i]
        span = ts - start
        ids = self._ids(i)
        extra = {"sequence.steps": len(ids), "sequence.span_s": span, "sequence.absent": absent}
        evidence = {"steps": len(ids), "span_s": span, "maxspan_s": self.spec.maxspan, "absent": absent,
                    "started": start}
        group = group_dict(self.spec.by, (key,) if self.single is not None else key)
        self.emit(make_hit(self.rule, e, ts, list(ids), group, evidence, extra), e, out)

    def advance(self, watermark: float, out: list[Hit]) -> None:
        if watermark < self.next_due:
            return
        due = math.inf
        lateness, maxspan = self.lateness, self.spec.maxspan
        for key, i in list(self.partials.items()):
            if type(i) is bytes:
                start = _UNPACK_TS(i)[0]
                if start + maxspan + lateness <= watermark:
                    del self.partials[key]
                else:
                    due = min(due, start + maxspan + lateness)
                continue
            deadline = self.deadline[i]
            if not isnan(deadline):
                if deadline + lateness <= watermark:
                    self._fire(self._context(i), key, i, deadline, absent=True, out=out)
                    self._drop(key, i)
                    continue
                due = min(due, deadline + lateness)
            elif self.start[i] + maxspan + lateness <= watermark:
                self._drop(key, i)
            else:
                due = min(due, self.start[i] + maxspan + lateness)
        self.next_due = due

    def size(self) -> int:
        return len(self.partials)

    def dump(self) -> Any:
        """Version 1 format: ``[key, [next, start, last, ids, reduced event or None, deadline or None]]``."""
        return list(self.rows())

    def rows(self) -> Iterator[Any]:
        """The rows of :meth:`dump` one by one (a snapshot serializes them in chunks)."""
        for k, i in self.partials.items():
            if type(i) is bytes:
                start = _UNPACK_TS(i)[0]
                yield [[k] if self.single is not None else list(k), [1, start, start, [_lone_id(i)], None, None]]
                continue
            deadline = self.deadline[i]
            yield [[k] if self.single is not None else list(k),
                   [self.nxt[i], self.start[i], self.last[i], list(self._ids(i)),
                    self._context(i) if self.ctx[i] is not None else None, None if isnan(deadline) else deadline]]

    def load(self, data: Any) -> None:
        fields = self.rule.context_fields
        self.partials, self.free, self.nxt, self.ids, self.ctx = {}, [], [], [], []
        self.start, self.last, self.deadline = array("d"), array("d"), array("d")
        for k, p in data:
            key = k[0] if self.single is not None else tuple(k)
            ids = list(p[IDS])
            if (self.lone and p[NEXT] == 1 and p[START] == p[LAST] and p[DEADLINE] is None and p[CTX] is None
                    and len(ids) == 1 and type(ids[0]) is str):
                self.partials[key] = _PACK_TS(p[START]) + ids[0].encode("utf-8", "surrogatepass")
                continue
            i = self._row(key, None)
            self.nxt[i], self.start[i], self.last[i] = p[NEXT], p[START], p[LAST]
            self.deadline[i] = math.nan if p[DEADLINE] is None else p[DEADLINE]
            self.ids[i] = ids[0] if len(ids) == 1 and type(ids[0]) is str else ids
            self.ctx[i] = compact_context(p[CTX], fields) if p[CTX] is not None else None
        self.next_due = -math.inf  # recompute on the next advance
