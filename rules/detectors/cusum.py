"""Two-sided CUSUM with a Shewhart limit: small persistent shifts and single large spikes."""

from __future__ import annotations

from typing import Any

from rules.detectors._moments import Moments
from rules.detectors.base import Detector


class CUSUM(Detector):
    """Page's two-sided cumulative sum, combined with a Shewhart (single point) limit.

    Self-starting: the reference ``mu0, sigma0`` is the exact running mean and
    standard deviation of the observations since the last reset; scoring
    starts after ``warmup`` of them. Each observation is standardised against
    the reference *before* it, ``z = (x - mu0) / sigma0``, then::

        S+ = max(0, S+ + min(z, clip) - k)       S- = max(0, S- - max(z, -clip) - k)

    ``k`` is the allowance (half the shift worth detecting, in standard
    deviations) and ``threshold`` the decision interval *h*. Small persistent
    shifts add up, which is why CUSUM catches level shifts and drifts that a
    z-score misses. Clipping ``z`` at ``clip`` keeps one outlier from filling
    the sum on its own.

    A sum catches shifts, not spikes, so a single observation also counts with
    deviation ``z * threshold / shewhart``: a point ``shewhart`` standard
    deviations out scores like a full CUSUM (the combined Shewhart-CUSUM of
    Lucas, 1982). Such outliers do not join the reference. ``shewhart=0``
    turns the limit off.

    When a *sum* crosses the threshold the detector re-learns its reference (a
    new warm-up, during which it returns None), so a lasting shift fires once
    and becomes the new normal.

    Parameters: ``k`` (0.5), ``threshold`` (8.0), ``warmup`` (20),
    ``shewhart`` (6.0), ``clip`` (4.0), ``direction`` (both), ``min_std``
    (1e-9), ``fire_at`` (0.5).

    >>> d = CUSUM(warmup=4, threshold=5.0)
    >>> [d.update(x) for x in (1.0, 2.0, 1.0, 2.0)]
    [None, None, None, None]
    >>> [round(d.update(x), 2) for x in (1.5, 3.0, 3.0, 3.0)]
    [0.0, 0.33, 0.44, 0.5]
    >>> d.warmed_up  # the upper sum reached h: the reference is being re-learned
    False
    """

    name = "cusum"

    def __init__(self, *, k: float = 0.5, threshold: float = 8.0, warmup: int = 20, shewhart: float = 6.0,
                 clip: float = 4.0, direction: str = "both", min_std: float = 1e-9, fire_at: float = 0.5) -> None:
        super().__init__(k=k, threshold=threshold, warmup=warmup, shewhart=shewhart, clip=clip,
                         direction=direction, min_std=min_std, fire_at=fire_at)
        self.k = float(k)
        self.warmup = max(int(warmup), 2)
        self.shewhart = float(shewhart)
        self.clip = float(clip)
        if self.shewhart < 0 or self.clip <= 0:
            raise ValueError("shewhart must be >= 0 and clip > 0")
        self.min_std = float(min_std)
        self._ref = Moments()
        self._pos = 0.0
        self._neg = 0.0

    @property
    def warmed_up(self) -> bool:
        return self._ref.n >= self.warmup

    def _z(self, x: float) -> float:
        return (x - self._ref.mean) / max(self._ref.std, self.min_std)

    def _sums(self, z: float) -> tuple[float, float]:
        zc = min(max(z, -self.clip), self.clip)
        return max(0.0, self._pos + zc - self.k), max(0.0, self._neg - zc - self.k)

    def _watched(self, pos: float, neg: float) -> float:
        return max(pos if self.direction != "down" else 0.0, neg if self.direction != "up" else 0.0)

    def _deviation(self, x: Any, ts: float | None) -> float | None:
        if not self.warmed_up:
            return None
        z = self._z(float(x))
        pos, neg = self._sums(z)
        candidates = [pos if self.direction != "down" else 0.0, -neg if self.direction != "up" else 0.0]
        if self.shewhart > 0:
            candidates.append(z * self.threshold / self.shewhart)
        return max(candidates, key=lambda d: (abs(d) if self._counts(d) else -1.0))

    def _counts(self, signed: float) -> bool:
        return self.direction == "both" or (signed >= 0) == (self.direction == "up")

    def _learn(self, x: Any, ts: float | None) -> None:
        value = float(x)
        if not self.warmed_up:
            self._ref.add(value)
            return
        z = self._z(value)
        self._pos, self._neg = self._sums(z)
        if self._watched(self._pos, self._neg) >= self.threshold:
            self._ref = Moments()
            self._pos = self._neg = 0.0
        elif self.shewhart <= 0 or abs(z) < self.shewhart:
            self._ref.add(value)

    def _baseline(self) -> dict[str, Any]:
        return {"baseline": self._ref.mean, "spread": self._ref.std, "n": self._ref.n,
                "cusum_pos": self._pos, "cusum_neg": self._neg}

    def _state(self) -> dict[str, Any]:
        return {"r": self._ref.to_list(), "sp": self._pos, "sn": self._neg}

    def _load(self, state: dict[str, Any]) -> None:
        self._ref.load(state["r"])
        self._pos, self._neg = float(state["sp"]), float(state["sn"])
