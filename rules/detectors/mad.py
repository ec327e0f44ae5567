"""Robust z-score from the median and MAD of a bounded window."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from typing import Any

from rules.detectors.base import Detector

MAD_TO_STD = 1.4826  # MAD of a normal distribution times this is its standard deviation


def _median(ordered: list[float]) -> float:
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


class MAD(Detector):
    """Scores ``(x - median) / (1.4826 * MAD)`` over the last ``window`` observations.

    Median and MAD ignore outliers (breakdown point 50 %), so one spike neither
    inflates the spread nor hides the next one — the right choice for heavy
    tailed series such as latencies. The window is bounded (``window``
    values); a sorted copy is kept alongside it, so an update costs O(window).
    ``min_mad`` floors the spread (a window of identical values has MAD 0).

    Parameters: ``window`` (60), ``threshold`` (5.0, robust standard
    deviations), ``warmup`` (10), ``direction`` (both), ``min_mad`` (1e-9),
    ``fire_at`` (0.5).

    >>> d = MAD(warmup=5)
    >>> [d.update(x) for x in (10.0, 11.0, 9.0, 10.0, 50.0)]
    [None, None, None, None, None]
    >>> round(d.update(10.5), 3), round(d.update(30.0), 3)
    (0.046, 0.975)
    >>> d.explain()["baseline"]
    10.5
    """

    name = "mad"

    def __init__(self, *, window: int = 60, threshold: float = 5.0, warmup: int = 10,
                 direction: str = "both", min_mad: float = 1e-9, fire_at: float = 0.5) -> None:
        super().__init__(window=window, threshold=threshold, warmup=warmup, direction=direction,
                         min_mad=min_mad, fire_at=fire_at)
        self.window = int(window)
        if self.window < 3:
            raise ValueError(f"window must be >= 3, got {self.window}")
        self.warmup = min(int(warmup), self.window)
        self.min_mad = float(min_mad)
        self._values: deque[float] = deque()
        self._sorted: list[float] = []

    @property
    def warmed_up(self) -> bool:
        return len(self._values) >= self.warmup

    def median_mad(self) -> tuple[float, float]:
        """Median and (unscaled) median absolute deviation of the window."""
        med = _median(self._sorted)
        mad = _median(sorted(abs(v - med) for v in self._sorted))
        return med, mad

    def _deviation(self, x: Any, ts: float | None) -> float | None:
        if not self.warmed_up or not self._values:
            return None
        med, mad = self.median_mad()
        return (float(x) - med) / max(MAD_TO_STD * mad, self.min_mad)

    def _learn(self, x: Any, ts: float | None) -> None:
        value = float(x)
        self._values.append(value)
        insort(self._sorted, value)
        if len(self._values) > self.window:
            old = self._values.popleft()
            del self._sorted[bisect_left(self._sorted, old)]

    def _baseline(self) -> dict[str, Any]:
        if not self._values:
            return {"baseline": None, "spread": None, "n": 0}
        med, mad = self.median_mad()
        return {"baseline": med, "spread": MAD_TO_STD * mad, "n": len(self._values)}

    def _state(self) -> dict[str, Any]:
        return {"w": list(self._values)}

    def _load(self, state: dict[str, Any]) -> None:
        self._values = deque(float(v) for v in state["w"])
        self._sorted = sorted(self._values)
