"""Two-sided CUSUM: accumulates standardised deviations from a learned reference."""

from __future__ import annotations

from typing import Any

from rules.detectors._moments import Moments
from rules.detectors.base import Detector


class CUSUM(Detector):
    """Page's two-sided cumulative sum over ``z = (x - mu0) / sigma0``.

    Self-starting: the reference ``mu0, sigma0`` is the exact running mean and
    standard deviation of every observation since the last reset; scoring
    starts after ``warmup`` of them, and each observation is standardised
    against the reference *before* it joins it. Each observation updates::

        S+ = max(0, S+ + z - k)        S- = max(0, S- - z - k)

    and the signed deviation is ``S+`` (or ``-S-`` when that side is larger),
    scored against ``threshold`` (the classic decision interval *h*). ``k`` is
    the allowance: half the shift, in standard deviations, worth detecting.
    Small persistent shifts add up, which is why CUSUM catches level shifts that
    a z-score misses. Once a sum crosses the threshold the detector *re-learns*
    its reference (a new warm-up), so a lasting shift fires once and becomes the
    new normal.

    Parameters: ``k`` (0.5), ``threshold`` (8.0), ``warmup`` (20), ``direction``
    (both), ``min_std`` (1e-9), ``fire_at`` (0.5).

    >>> d = CUSUM(warmup=4, threshold=5.0)
    >>> [d.update(x) for x in (1.0, 2.0, 1.0, 2.0)]
    [None, None, None, None]
    >>> [round(d.update(x), 2) for x in (1.5, 3.0, 3.0, 3.0)]
    [0.0, 0.33, 0.44, 0.5]
    >>> d.warmed_up  # the upper sum reached h: the reference is being re-learned
    False
    """

    name = "cusum"

    def __init__(self, *, k: float = 0.5, threshold: float = 8.0, warmup: int = 20,
                 direction: str = "both", min_std: float = 1e-9, fire_at: float = 0.5) -> None:
        super().__init__(k=k, threshold=threshold, warmup=warmup, direction=direction,
                         min_std=min_std, fire_at=fire_at)
        self.k = float(k)
        self.warmup = max(int(warmup), 2)
        self.min_std = float(min_std)
        self._ref = Moments()
        self._pos = 0.0
        self._neg = 0.0

    @property
    def warmed_up(self) -> bool:
        return self._ref.n >= self.warmup

    def _sums(self, x: float) -> tuple[float, float]:
        z = (x - self._ref.mean) / max(self._ref.std, self.min_std)
        return max(0.0, self._pos + z - self.k), max(0.0, self._neg - z - self.k)

    def _deviation(self, x: Any, ts: float | None) -> float | None:
        if not self.warmed_up:
            return None
        pos, neg = self._sums(float(x))
        watched_pos = pos if self.direction != "down" else 0.0
        watched_neg = neg if self.direction != "up" else 0.0
        return watched_pos if watched_pos >= watched_neg else -watched_neg

    def _learn(self, x: Any, ts: float | None) -> None:
        if not self.warmed_up:
            self._ref.add(float(x))
            return
        self._pos, self._neg = self._sums(float(x))
        self._ref.add(float(x))
        watched = max(self._pos if self.direction != "down" else 0.0,
                      self._neg if self.direction != "up" else 0.0)
        if watched >= self.threshold:
            self._ref = Moments()
            self._pos = self._neg = 0.0

    def _baseline(self) -> dict[str, Any]:
        return {"baseline": self._ref.mean, "spread": self._ref.std, "n": self._ref.n,
                "cusum_pos": self._pos, "cusum_neg": self._neg}

    def _state(self) -> dict[str, Any]:
        return {"r": self._ref.to_list(), "sp": self._pos, "sn": self._neg}

    def _load(self, state: dict[str, Any]) -> None:
        self._ref.load(state["r"])
        self._pos, self._neg = float(state["sp"]), float(state["sn"])
