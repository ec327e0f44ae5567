"""Quantile threshold from a KLL sketch (Apache DataSketches) of the history.

Also home of the small KLL helpers the metric partials use, so every KLL in
the project is built with the same parameters.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

import datasketches
import numpy as np

from rules.detectors.base import Detector

DEFAULT_K = 100  # KLL accuracy parameter: ~2.7 % normalised rank error, a few KB at most


def kll_of(values: Iterable[float], k: int = DEFAULT_K) -> datasketches.kll_doubles_sketch:
    """A KLL sketch holding ``values``."""
    sketch = datasketches.kll_doubles_sketch(k)
    arr = np.fromiter(values, dtype=np.float64)
    if arr.size:
        sketch.update(arr)
    return sketch


def kll_load(blob: bytes) -> datasketches.kll_doubles_sketch:
    return datasketches.kll_doubles_sketch.deserialize(blob)


class KLLQuantile(Detector):
    """Fires when ``x`` lies beyond the ``q`` quantile of everything seen so far.

    History is summarised by a KLL sketch (bounded: O(k log(n/k)) items), so
    the threshold is distribution-free — no normality assumption, good for
    skewed metrics like p99 latency or egress bytes. The signed deviation is
    measured in units of the gap between the median and the ``q`` quantile::

        d = (x - median) / (Q(q) - median)            (above the median)
        d = (median - x) / (median - Q(1 - q))        (below the median)

    so ``d = 1`` means "exactly at the q quantile", and with the default
    ``threshold`` 1.5 a detection needs x half a gap beyond it. The sketch never
    forgets: after a lasting level shift the new level becomes "normal" once it
    makes up more than ``1 - q`` of the history.

    Parameters: ``q`` (0.99), ``threshold`` (1.5), ``warmup`` (20), ``k``
    (100), ``direction`` (up), ``min_gap`` (1e-9), ``fire_at`` (0.5).

    >>> d = KLLQuantile(warmup=10, q=0.9)
    >>> [d.update(float(x)) for x in range(10)][-1] is None
    True
    >>> d.update(5.0), round(d.update(30.0), 3)
    (0.0, 0.979)
    >>> d.explain()["upper"]
    9.0
    """

    name = "kll_quantile"

    def __init__(self, *, q: float = 0.99, threshold: float = 1.5, warmup: int = 20, k: int = DEFAULT_K,
                 direction: str = "up", min_gap: float = 1e-9, fire_at: float = 0.5) -> None:
        super().__init__(q=q, threshold=threshold, warmup=warmup, k=k, direction=direction,
                         min_gap=min_gap, fire_at=fire_at)
        if not 0.5 < q < 1.0:
            raise ValueError(f"q must be in (0.5, 1), got {q}")
        self.q = float(q)
        self.warmup = int(warmup)
        self.min_gap = float(min_gap)
        self._sketch = datasketches.kll_doubles_sketch(int(k))
        self._cache: tuple[float, float, float] | None = None

    @property
    def warmed_up(self) -> bool:
        return self._sketch.n >= max(self.warmup, 1)

    def _quantiles(self) -> tuple[float, float, float]:
        if self._cache is None:
            lo, med, hi = self._sketch.get_quantiles([1.0 - self.q, 0.5, self.q])
            self._cache = (float(lo), float(med), float(hi))
        return self._cache

    def _deviation(self, x: Any, ts: float | None) -> float | None:
        if not self.warmed_up:
            return None
        lo, med, hi = self._quantiles()
        value = float(x)
        if value >= med:
            return (value - med) / max(hi - med, self.min_gap)
        return -(med - value) / max(med - lo, self.min_gap)

    def _learn(self, x: Any, ts: float | None) -> None:
        self._sketch.update(float(x))
        self._cache = None

    def _baseline(self) -> dict[str, Any]:
        if self._sketch.is_empty():
            return {"baseline": None, "spread": None, "n": 0}
        lo, med, hi = self._quantiles()
        return {"baseline": med, "spread": hi - med, "lower": lo, "upper": hi, "n": self._sketch.n}

    def _state(self) -> dict[str, Any]:
        return {"kll": base64.b64encode(self._sketch.serialize()).decode()}

    def _load(self, state: dict[str, Any]) -> None:
        self._sketch = kll_load(base64.b64decode(state["kll"]))
        self._cache = None
