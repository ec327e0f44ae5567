"""Page-Hinkley: cumulative deviation from the running mean, against its extreme."""

from __future__ import annotations

from typing import Any

from rules.detectors._moments import Moments
from rules.detectors.base import Detector


class PageHinkley(Detector):
    """The Page-Hinkley test on standardised observations.

    With ``mean_t`` and ``std_t`` the exact running mean and standard deviation
    since the last reset (including ``x_t``), each observation adds
    ``u = (x_t - mean_t) / std_t`` to two cumulative sums::

        m_up   += u - delta      PH_up   = m_up - min(m_up)
        m_down += u + delta      PH_down = max(m_down) - m_down

    ``delta`` (in standard deviations) is the magnitude of change tolerated.
    Unlike CUSUM the reference mean keeps adapting, so slow drifts are measured
    against the whole history since the last reset. Crossing ``threshold``
    resets the test (a new warm-up).

    Parameters: ``delta`` (0.5), ``threshold`` (8.0), ``warmup`` (10),
    ``direction`` (both), ``min_std`` (1e-9), ``fire_at`` (0.5).

    >>> d = PageHinkley(warmup=4)
    >>> [d.update(x) for x in (1.0, 2.0, 1.0, 2.0)]
    [None, None, None, None]
    >>> [round(d.update(x), 2) for x in (1.5, 9.0)]
    [0.0, 0.14]
    """

    name = "page_hinkley"

    def __init__(self, *, delta: float = 0.5, threshold: float = 8.0, warmup: int = 10,
                 direction: str = "both", min_std: float = 1e-9, fire_at: float = 0.5) -> None:
        super().__init__(delta=delta, threshold=threshold, warmup=warmup, direction=direction,
                         min_std=min_std, fire_at=fire_at)
        self.delta = float(delta)
        self.warmup = max(int(warmup), 2)
        self.min_std = float(min_std)
        self._reset()

    def _reset(self) -> None:
        self._m = Moments()
        self._up = self._up_min = 0.0
        self._down = self._down_max = 0.0

    @property
    def warmed_up(self) -> bool:
        return self._m.n >= self.warmup

    def _step(self, x: float) -> tuple[Moments, float, float, float, float]:
        m = Moments()
        m.n, m.mean, m.var = self._m.n, self._m.mean, self._m.var
        m.add(x)
        u = (x - m.mean) / max(m.std, self.min_std)
        up = self._up + u - self.delta
        down = self._down + u + self.delta
        return m, up, min(self._up_min, up), down, max(self._down_max, down)

    def _deviation(self, x: Any, ts: float | None) -> float | None:
        if not self.warmed_up:
            return None
        _, up, up_min, down, down_max = self._step(float(x))
        ph_up = up - up_min if self.direction != "down" else 0.0
        ph_down = down_max - down if self.direction != "up" else 0.0
        return ph_up if ph_up >= ph_down else -ph_down

    def _learn(self, x: Any, ts: float | None) -> None:
        warm = self.warmed_up
        self._m, up, up_min, down, down_max = self._step(float(x))
        if not warm:
            return  # the sums start once the reference is warm
        self._up, self._up_min, self._down, self._down_max = up, up_min, down, down_max
        ph = max(up - up_min if self.direction != "down" else 0.0,
                 down_max - down if self.direction != "up" else 0.0)
        if ph >= self.threshold:
            self._reset()

    def _baseline(self) -> dict[str, Any]:
        return {"baseline": self._m.mean, "spread": self._m.std, "n": self._m.n,
                "ph_up": self._up - self._up_min, "ph_down": self._down_max - self._down}

    def _state(self) -> dict[str, Any]:
        return {"m": self._m.to_list(), "u": [self._up, self._up_min, self._down, self._down_max]}

    def _load(self, state: dict[str, Any]) -> None:
        self._m.load(state["m"])
        self._up, self._up_min, self._down, self._down_max = (float(v) for v in state["u"])
