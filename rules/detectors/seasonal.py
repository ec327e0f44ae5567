"""Seasonal baseline: one EW mean and variance per hour of the week."""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

from rules.detectors._moments import Moments
from rules.detectors.base import Detector

WEEK = 7 * 24 * 3600.0
POOLED_WARMUP = 10  # residuals needed before the pooled spread is trusted


class Seasonal(Detector):
    """Z-score of ``x`` against the mean of its own slot of the season.

    The period (default one week, ``period=604800`` seconds) is cut into
    ``slots`` equal slots (default 168: hour of week, anchored at the Unix
    epoch, i.e. UTC). Each slot keeps its own EW mean, so Monday 9:00 is
    compared with previous Mondays 9:00 — busy hours do not fire, and a quiet
    hour that suddenly looks like a busy one does. Needs ``ts``.

    The spread is *pooled*: one EW variance of the residuals ``x - slot mean``
    over all slots. A slot sees few observations (one a week with hourly
    buckets), far too few for its own variance, but the residual noise is
    usually similar across slots.

    Warm-up: the detector scores once it has seen 10 observations (and 10
    residuals for the pooled spread, i.e. some slot seen twice). A slot with
    fewer than ``warmup`` observations of its own borrows the global baseline
    (EW mean and standard deviation of all observations); ``explain()`` says
    which one was used (``baseline_source``).

    Parameters: ``period`` (604800), ``slots`` (168), ``alpha`` (0.1),
    ``threshold`` (5.0), ``warmup`` (2), ``direction`` (both), ``min_std``
    (1e-9), ``fire_at`` (0.5).

    >>> d = Seasonal(period=4.0, slots=2)     # slots: t % 4 in [0, 2) quiet, [2, 4) busy
    >>> noise = [0.1, -0.2, 0.0, 0.2, -0.1]
    >>> xs = [(1.0 if t % 4 < 2 else 9.0) + noise[t % 5] for t in range(24)]
    >>> scores = [d.update(x, ts=t) for t, x in enumerate(xs)]
    >>> scores.index(None, 11), round(max(scores[12:]), 2)   # warm from t=12 on, quiet since
    (11, 0.16)
    >>> round(d.score(9.0, ts=24.0), 3), round(d.score(9.0, ts=26.0), 3)  # busy value: quiet vs busy slot
    (0.999, 0.017)
    """

    name = "seasonal"

    def __init__(self, *, period: float = WEEK, slots: int = 168, alpha: float = 0.1, threshold: float = 5.0,
                 warmup: int = 2, direction: str = "both", min_std: float = 1e-9, fire_at: float = 0.5) -> None:
        super().__init__(period=period, slots=slots, alpha=alpha, threshold=threshold, warmup=warmup,
                         direction=direction, min_std=min_std, fire_at=fire_at)
        self.period = float(period)
        self.slots = int(slots)
        self.alpha = float(alpha)
        self.warmup = max(int(warmup), 1)
        self.min_std = float(min_std)
        self._slot_stats: dict[int, Moments] = {}
        self._resid = Moments(self.alpha)
        self._global = Moments(self.alpha)
        self._last_slot: int | None = None

    def slot_of(self, ts: float | None) -> int:
        if ts is None or not math.isfinite(ts):
            raise ValueError("the seasonal detector needs the observation's timestamp (ts)")
        return int((ts % self.period) // (self.period / self.slots))

    @property
    def warmed_up(self) -> bool:
        return self._global.n >= POOLED_WARMUP and self._resid.n >= POOLED_WARMUP

    def _spread(self) -> float:
        return max(self._resid.std, self.min_std)

    def _reference(self, slot: int | None) -> tuple[str, float, float]:
        """(source, mean, spread) used to score an observation in ``slot``."""
        stats = self._slot_stats.get(slot) if slot is not None else None
        if stats is not None and stats.n >= self.warmup:
            return "slot", stats.mean, self._spread()
        return "global", self._global.mean, max(self._global.std, self.min_std)

    def _deviation(self, x: Any, ts: float | None) -> float | None:
        slot = self.slot_of(ts)
        if not self.warmed_up:
            return None
        _, mean, spread = self._reference(slot)
        return (float(x) - mean) / spread

    def _learn(self, x: Any, ts: float | None) -> None:
        slot = self.slot_of(ts)
        stats = self._slot_stats.get(slot)
        if stats is None:
            stats = self._slot_stats[slot] = Moments(self.alpha)
        elif stats.n >= 1:
            # residual against the slot mean before x; the pooled mean of residuals is ~0
            self._resid.add(float(x) - stats.mean)
        stats.add(float(x))
        self._global.add(float(x))
        self._last_slot = slot

    def _baseline(self) -> dict[str, Any]:
        if self._last_slot is None:
            return {"baseline": None, "spread": None, "slot": None, "n": 0}
        source, mean, spread = self._reference(self._last_slot)
        return {"baseline": mean, "spread": spread, "baseline_source": source, "slot": self._last_slot,
                "n": self._slot_stats[self._last_slot].n}

    def _state(self) -> dict[str, Any]:
        # 168 slots x (n, mean, var): little-endian float64, base64 — smaller than JSON text, and exact
        slots = sorted(self._slot_stats.items())
        flat = [v for _, m in slots for v in m.to_list()]
        packed = struct.pack(f"<{len(flat)}d", *flat)
        return {"sk": [k for k, _ in slots], "sv": base64.b64encode(packed).decode(), "ls": self._last_slot,
                "r": self._resid.to_list(), "g": self._global.to_list()}

    def _load(self, state: dict[str, Any]) -> None:
        raw = base64.b64decode(state["sv"])
        values = struct.unpack(f"<{len(raw) // 8}d", raw)
        self._slot_stats = {}
        for i, key in enumerate(state["sk"]):
            self._slot_stats[int(key)] = m = Moments(self.alpha)
            m.load(list(values[3 * i:3 * i + 3]))
        self._last_slot = state["ls"]
        self._resid.load(state["r"])
        self._global.load(state["g"])
