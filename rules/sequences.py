"""Sequence rules: ordered steps joined by fields within a maxspan; absence as the last step.

State per join key is one partial match: ``[next step, start ts, last ts,
event ids, context, absence deadline]`` — a few numbers, the event ids (a
lone id kept bare) and, once an absence is armed, the context the hit needs
as a tuple of values. A sequence joined by one field is keyed by the bare
value. Semantics, chosen to be predictable:

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
from collections.abc import Callable
from typing import Any

from rules.base import Hit
from rules.hits import compact_context, expand_context, group_dict, make_hit
from rules.rule import RuleDef
from rules.template import getter
from rules.windows import hashable_key

Emit = Callable[[Hit, dict[str, Any], list[Hit]], None]
NEXT, START, LAST, IDS, CTX, DEADLINE = range(6)


class Sequence:
    def __init__(self, rule: RuleDef, lateness: float, emit: Emit) -> None:
        assert rule.sequence is not None
        self.rule, self.spec, self.lateness, self.emit = rule, rule.sequence, lateness, emit
        self.getters = tuple(getter(f) for f in self.spec.by)
        self.single = self.getters[0] if len(self.getters) == 1 else None  # keyed by the bare value
        self.n = len(self.spec.steps)
        self.absent_last = self.spec.steps[-1].absent
        self.partials: dict[tuple[Any, ...], list[Any]] = {}
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
        p = self.partials.get(key)
        if p is not None and p[DEADLINE] is not None and ts > p[DEADLINE]:
            del self.partials[key]  # this key's own time passed the deadline: the absence is proven
            self._fire(self._context(p), key, p, p[DEADLINE], absent=True, out=out)
            p = None
        elif p is not None and ts - p[START] > self.spec.maxspan and p[DEADLINE] is None:
            del self.partials[key]
            p = None
        if step == 0:
            if p is None or p[NEXT] == 1:
                self._start(key, e, ts)
            return
        if p is None or p[NEXT] != step or ts < p[LAST]:
            return
        if self.spec.steps[step].absent:
            if ts <= p[DEADLINE]:
                del self.partials[key]  # the awaited-against event happened: no alert
            return
        if ts - p[START] > self.spec.maxspan:
            return
        p[NEXT] += 1
        p[LAST] = ts
        ids = p[IDS]
        if type(ids) is list:
            ids.append(e.get("event_id"))
        else:
            p[IDS] = [ids, e.get("event_id")]
        if p[NEXT] == self.n:
            del self.partials[key]
            self._fire(e, key, p, ts, absent=False, out=out)
        elif self.spec.steps[p[NEXT]].absent:
            self._arm(p, e, ts)

    def _start(self, key: tuple[Any, ...], e: dict[str, Any], ts: float) -> None:
        eid = e.get("event_id")
        p = [1, ts, ts, eid if type(eid) is str else [eid], None, None]
        self.partials[key] = p
        if self.spec.steps[1].absent:
            self._arm(p, e, ts)
        self.next_due = min(self.next_due, ts + self.spec.maxspan + self.lateness)

    def _arm(self, p: list[Any], e: dict[str, Any], ts: float) -> None:
        p[DEADLINE] = ts + self.spec.steps[p[NEXT]].within
        p[CTX] = compact_context(e, self.rule.context_fields)
        self.next_due = min(self.next_due, p[DEADLINE] + self.lateness)

    def _context(self, p: list[Any]) -> dict[str, Any]:
        return expand_context(p[CTX], self.rule.context_fields) if p[CTX] is not None else {}

    def _fire(self, e: dict[str, Any], key: Any, p: list[Any], ts: float, absent: bool,
              out: list[Hit]) -> None:
        span = ts - p[START]
        ids = p[IDS] if type(p[IDS]) is list else [p[IDS]]
        extra = {"sequence.steps": len(ids), "sequence.span_s": span, "sequence.absent": absent}
        evidence = {"steps": len(ids), "span_s": span, "maxspan_s": self.spec.maxspan, "absent": absent,
                    "started": p[START]}
        group = group_dict(self.spec.by, (key,) if self.single is not None else key)
        self.emit(make_hit(self.rule, e, ts, list(ids), group, evidence, extra), e, out)

    def advance(self, watermark: float, out: list[Hit]) -> None:
        if watermark < self.next_due:
            return
        due = math.inf
        for key, p in list(self.partials.items()):
            if p[DEADLINE] is not None:
                if p[DEADLINE] + self.lateness <= watermark:
                    del self.partials[key]
                    self._fire(self._context(p), key, p, p[DEADLINE], absent=True, out=out)
                    continue
                due = min(due, p[DEADLINE] + self.lateness)
            elif p[START] + self.spec.maxspan + self.lateness <= watermark:
                del self.partials[key]
            else:
                due = min(due, p[START] + self.spec.maxspan + self.lateness)
        self.next_due = due

    def size(self) -> int:
        return len(self.partials)

    def dump(self) -> Any:
        """Version 1 format: ``[key, [next, start, last, ids, reduced event or None, deadline]]``."""
        return [[[k] if self.single is not None else list(k),
                 [p[NEXT], p[START], p[LAST], p[IDS] if type(p[IDS]) is list else [p[IDS]],
                  self._context(p) if p[CTX] is not None else None, p[DEADLINE]]]
                for k, p in self.partials.items()]

    def load(self, data: Any) -> None:
        fields = self.rule.context_fields
        self.partials = {}
        for k, p in data:
            ids = list(p[IDS])
            p = [p[NEXT], p[START], p[LAST], ids[0] if len(ids) == 1 and type(ids[0]) is str else ids,
                 compact_context(p[CTX], fields) if p[CTX] is not None else None, p[DEADLINE]]
            self.partials[k[0] if self.single is not None else tuple(k)] = p
        self.next_due = -math.inf  # recompute on the next advance
