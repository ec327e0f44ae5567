"""EWMA z-score: distance from an exponentially weighted mean, in EW standard deviations."""

from __future__ import annotations

from typing import Any

from rules.detectors._moments import Moments
from rules.detectors.base import Detector


class EWMAZScore(Detector):
    """Scores ``z = (x - mean) / max(std, min_std)`` against an EW mean and variance.

    The baseline forgets with weight ``alpha`` per observation (exact running
    moments for the first ``1/alpha`` observations). ``min_std`` floors the
    spread so that a perfectly flat baseline does not turn noise into infinite
    z-scores; ``warmup`` observations are learned before scoring.

    Parameters: ``alpha`` (0.05), ``threshold`` (4.5, in standard deviations),
    ``warmup`` (8), ``direction`` (both), ``min_std`` (1e-9), ``fire_at`` (0.5).

    >>> d = EWMAZScore(warmup=3)
    >>> [d.update(x) for x in (10.0, 12.0, 11.0)]
    [None, None, None]
    >>> d.update(11.0)
    0.0
    >>> round(d.update(20.0), 3)
    0.859
    >>> d.explain()["baseline"]
    12.8
    """

    name = "ewma_zscore"

    def __init__(self, *, alpha: float = 0.05, threshold: float = 4.5, warmup: int = 8,
                 direction: str = "both", min_std: float = 1e-9, fire_at: float = 0.5) -> None:
        super().__init__(alpha=alpha, threshold=threshold, warmup=warmup, direction=direction,
                         min_std=min_std, fire_at=fire_at)
        self.warmup = int(warmup)
        self.min_std = float(min_std)
        self._m = Moments(alpha)

    @property
    def warmed_up(self) -> bool:
        return self._m.n >= self.warmup

    def _deviation(self, x: Any, ts: float | None) -> float | None:
        if not self.warmed_up or self._m.n == 0:
            return None
        return (float(x) - self._m.mean) / max(self._m.std, self.min_std)

    def _learn(self, x: Any, ts: float | None) -> None:
        self._m.add(float(x))

    def _baseline(self) -> dict[str, Any]:
        return {"baseline": self._m.mean, "spread": self._m.std, "n": self._m.n}

    def _state(self) -> dict[str, Any]:
        return {"m": self._m.to_list()}

    def _load(self, state: dict[str, Any]) -> None:
        self._m.load(state["m"])
