"""Per-rule dedup: the first hit of a key returns at once; later ones in the period fold into it.

Folded hits are counted (``suppressed_count`` on the summary, and the
engine's ``suppressed`` stat), never dropped silently. When the period of a
key ends — event time passing ``first.ts + period``, or a new hit of the same
key arriving after it — a *summary hit* is emitted if anything was folded:
same rule and scope, ``suppressed_count`` = number folded, the folded event
ids (last 20) and the period in its evidence. A period with nothing folded
ends quietly.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from rules.base import Hit
from rules.rule import RuleDef

MAX_FOLDED_IDS = 20


class Suppressor:
    def __init__(self, rule: RuleDef) -> None:
        assert rule.dedup_key is not None
        self.rule, self.key, self.period = rule, rule.dedup_key, rule.dedup_period
        # key -> [first hit as dict, folded count, last ts, folded event ids]
        self.open: dict[str, list[Any]] = {}
        self.suppressed = 0
        self.next_due = math.inf  # earliest period end: advance() is free until then

    def admit(self, hit: Hit, e: dict[str, Any], out: list[Hit]) -> None:
        key = self.key.render(e)
        hit.dedup_key = key
        state = self.open.get(key)
        if state is not None and hit.ts >= state[0]["ts"] + self.period:
            self._close(key, out)
            state = None
        if state is None:
            self.open[key] = [dataclasses.asdict(hit), 0, hit.ts, []]
            self.next_due = min(self.next_due, hit.ts + self.period)
            out.append(hit)
            return
        state[1] += 1
        state[2] = max(state[2], hit.ts)
        state[3] = (state[3] + hit.event_ids)[-MAX_FOLDED_IDS:]
        self.suppressed += 1

    def advance(self, watermark: float, out: list[Hit]) -> None:
        if watermark < self.next_due:
            return
        for key in [k for k, s in self.open.items() if s[0]["ts"] + self.period <= watermark]:
            self._close(key, out)
        self.next_due = min((s[0]["ts"] + self.period for s in self.open.values()), default=math.inf)

    def _close(self, key: str, out: list[Hit]) -> None:
        first, count, last_ts, ids = self.open.pop(key)
        if not count:
            return
        summary = Hit(**{**first, "sources": [tuple(s) for s in first["sources"]]})
        summary.output = f"{first['output']} (+{count} more suppressed within {self.period:g}s)"
        summary.ts = last_ts
        summary.event_ids = list(ids)
        summary.suppressed_count = count
        summary.evidence = {**first["evidence"], "suppressed_count": count, "period_start": first["ts"],
                            "period_end": first["ts"] + self.period, "first_event_ids": first["event_ids"]}
        out.append(summary)

    def dump(self) -> Any:
        return self.open

    def load(self, data: Any) -> None:
        self.open = {k: list(v) for k, v in data.items()}
        self.next_due = -math.inf
