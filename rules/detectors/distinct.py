"""Distinct-count spikes, and the HLL helpers (Apache DataSketches) behind distinct counts.

The metric layer counts distinct values per bucket with HLL sketches that
merge across workers (:func:`hll_of`, :func:`hll_merge`); this detector scores
the resulting per-bucket counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import datasketches  # type: ignore[import-untyped]

from rules.detectors._moments import Moments
from rules.detectors.base import Detector

HLL_LG_K = 10  # 1024 registers: ~3 % relative error; compact list mode while small
HLL_TYPE = datasketches.tgt_hll_type.HLL_8


def hll_of(values: Iterable[str], lg_k: int = HLL_LG_K) -> datasketches.hll_sketch:
    """An HLL sketch of ``values`` (strings)."""
    sketch = datasketches.hll_sketch(lg_k, HLL_TYPE)
    for value in values:
        sketch.update(value)
    return sketch


def hll_merge(blobs: Iterable[bytes], lg_k: int = HLL_LG_K) -> datasketches.hll_sketch:
    """Union of serialised HLL sketches."""
    union = datasketches.hll_union(lg_k)
    for blob in blobs:
        union.update(datasketches.hll_sketch.deserialize(blob))
    return union.get_result(HLL_TYPE)


class DistinctSpike(Detector):
    """Fires when a distinct count jumps above its baseline (e.g. new destinations).

    Distinct counts behave like counts: their noise grows with their level. The
    spread is therefore ``sqrt(max(ew_variance, ew_mean, 1))`` — at least the
    Poisson spread of the baseline — so a deployment that normally talks to two
    hosts does not fire on three, but does fire on thirty. Default direction is
    ``up``: a sudden *increase* in distinct destinations or tools is the risk.

    Parameters: ``alpha`` (0.1), ``threshold`` (4.0), ``warmup`` (5),
    ``direction`` (up), ``fire_at`` (0.5).

    >>> d = DistinctSpike(warmup=3)
    >>> [d.update(x) for x in (2.0, 3.0, 2.0)]
    [None, None, None]
    >>> round(d.update(3.0), 3), round(d.update(30.0), 3)
    (0.073, 0.951)
    """

    name = "distinct_spike"

    def __init__(self, *, alpha: float = 0.1, threshold: float = 4.0, warmup: int = 5,
                 direction: str = "up", fire_at: float = 0.5) -> None:
        super().__init__(alpha=alpha, threshold=threshold, warmup=warmup, direction=direction, fire_at=fire_at)
        self.warmup = int(warmup)
        self._m = Moments(alpha)

    @property
    def warmed_up(self) -> bool:
        return self._m.n >= max(self.warmup, 1)

    def _spread(self) -> float:
        return math.sqrt(max(self._m.var, self._m.mean, 1.0))

    def _deviation(self, x: Any, ts: float | None) -> float | None:
        if not self.warmed_up:
            return None
        return (float(x) - self._m.mean) / self._spread()

    def _learn(self, x: Any, ts: float | None) -> None:
        self._m.add(float(x))

    def _baseline(self) -> dict[str, Any]:
        return {"baseline": self._m.mean, "spread": self._spread(), "n": self._m.n}

    def _state(self) -> dict[str, Any]:
        return {"m": self._m.to_list()}

    def _load(self, state: dict[str, Any]) -> None:
        self._m.load(state["m"])
