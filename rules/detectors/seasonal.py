"""Seasonal baseline: one EW mean and variance per hour of the week."""

from __future__ import annotations

import math
from typing import Any

from rules.detectors._moments import Moments
from rules.detectors.base import Detector

WEEK = 7 * 24 * 3600.0


class Seasonal(Detector):
    """Z-score of ``x`` against the baseline of its own slot of the season.

    The period (default one week, ``period=604800`` seconds) is cut into
    ``slots`` equal slots (default 168: hour of week, anchored at the Unix
    epoch, i.e. UTC). Each slot keeps its own EW mean and variance, so Monday
    9:00 is compared with previous Mondays 9:00 — busy hours do not fire, and a
    quiet hour that suddenly looks like a busy one does. Needs ``ts``.

    Warm-up is per slot: a slot scores once it has ``warmup`` observations;
    ``warmed_up`` reports the slot of the most recent observation.

    Parameters: ``period`` (604800), ``slots`` (168), ``alpha`` (0.1),
    ``threshold`` (4.0), ``warmup`` (3), ``direction`` (both), ``min_std``
    (1e-9), ``fire_at`` (0.5).

    >>> d = Seasonal(period=4.0, slots=2, warmup=2)     # slots: [0, 2) and [2, 4)
    >>> scores = [d.update(x, ts=t) for t, x in enumerate([1.0, 1.2, 9.0, 9.4, 1.1, 1.0, 9.2, 9.1])]
    >>> scores[:4], [round(s, 2) for s in scores[4:]]
    ([None, None, None, None], [0.0, 0.19, 0.0, 0.1])
    >>> round(d.update(9.0, ts=8.0), 3)  # a busy-hour value in the quiet slot
    1.0
    """

    name = "seasonal"

    def __init__(self, *, period: float = WEEK, slots: int = 168, alpha: float = 0.1, threshold: float = 4.0,
                 warmup: int = 3, direction: str = "both", min_std: float = 1e-9, fire_at: float = 0.5) -> None:
        super().__init__(period=period, slots=slots, alpha=alpha, threshold=threshold, warmup=warmup,
                         direction=direction, min_std=min_std, fire_at=fire_at)
        self.period = float(period)
        self.slots = int(slots)
        self.alpha = float(alpha)
        self.warmup = max(int(warmup), 2)
        self.min_std = float(min_std)
        self._slot_stats: dict[int, Moments] = {}
        self._last_slot: int | None = None

    def slot_of(self, ts: float | None) -> int:
        if ts is None or not math.isfinite(ts):
            raise ValueError("the seasonal detector needs the observation's timestamp (ts)")
        return int((ts % self.period) // (self.period / self.slots))

    @property
    def warmed_up(self) -> bool:
        stats = self._slot_stats.get(self._last_slot) if self._last_slot is not None else None
        return stats is not None and stats.n >= self.warmup

    def _deviation(self, x: Any, ts: float | None) -> float | None:
        stats = self._slot_stats.get(self.slot_of(ts))
        if stats is None or stats.n < self.warmup:
            return None
        return (float(x) - stats.mean) / max(stats.std, self.min_std)

    def _learn(self, x: Any, ts: float | None) -> None:
        slot = self.slot_of(ts)
        self._slot_stats.setdefault(slot, Moments(self.alpha)).add(float(x))
        self._last_slot = slot

    def _baseline(self) -> dict[str, Any]:
        stats = self._slot_stats.get(self._last_slot) if self._last_slot is not None else None
        if stats is None:
            return {"baseline": None, "spread": None, "slot": None, "n": 0}
        return {"baseline": stats.mean, "spread": stats.std, "slot": self._last_slot, "n": stats.n}

    def _state(self) -> dict[str, Any]:
        return {"sl": {str(k): v.to_list() for k, v in sorted(self._slot_stats.items())}, "ls": self._last_slot}

    def _load(self, state: dict[str, Any]) -> None:
        self._slot_stats = {}
        for key, data in state["sl"].items():
            self._slot_stats[int(key)] = m = Moments(self.alpha)
            m.load(data)
        self._last_slot = state["ls"]
