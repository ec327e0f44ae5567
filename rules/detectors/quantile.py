"""Quantile threshold from a sketch of the history, and the KLL helpers of the metric partials.

Two sketches from Apache DataSketches, each where it fits:

- the metric partials (``rules.metrics``) carry **KLL** sketches: mergeable
  across workers, with a rank-error guarantee; :func:`kll_of` and
  :func:`kll_load` build them with one ``k`` everywhere;
- the detector's own history is a **t-digest** (``tdigest_double``), because
  a detector must be deterministic — a restored snapshot has to produce the
  very same scores — and KLL compaction draws random bits whose seed the
  Python binding does not expose. The t-digest is compressed after every
  update, which makes its state canonical (serialise → deserialise is a fixed
  point), and it is most accurate exactly where thresholds live: the tails.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

import datasketches  # type: ignore[import-untyped]
import numpy as np

from rules.detectors.base import Detector

DEFAULT_K = 200  # KLL: exact up to 200 values per partial, ~1.3 % normalised rank error beyond
TDIGEST_K = 100  # t-digest compression of a detector's history: < 2 KB per key


def kll_of(values: Iterable[float], k: int = DEFAULT_K) -> datasketches.kll_doubles_sketch:
    """A KLL sketch holding ``values``."""
    sketch = datasketches.kll_doubles_sketch(k)
    arr = np.fromiter(values, dtype=np.float64)
    if arr.size:
        sketch.update(arr)
    return sketch


def kll_load(blob: bytes) -> datasketches.kll_doubles_sketch:
    return datasketches.kll_doubles_sketch.deserialize(blob)


class QuantileThreshold(Detector):
    """Fires when ``x`` lies beyond the ``q`` quantile of everything seen so far.

    History is summarised by a t-digest (bounded: about ``k`` centroids), so
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

    >>> d = QuantileThreshold(warmup=10, q=0.9)
    >>> [d.update(float(x)) for x in range(10)][-1] is None
    True
    >>> d.update(5.0), round(d.update(30.0), 3)
    (0.0, 0.979)
    >>> d.explain()["upper"]
    9.0
    """

    name = "quantile"

    def __init__(self, *, q: float = 0.99, threshold: float = 1.5, warmup: int = 20, k: int = TDIGEST_K,
                 direction: str = "up", min_gap: float = 1e-9, fire_at: float = 0.5) -> None:
        super().__init__(q=q, threshold=threshold, warmup=warmup, k=k, direction=direction,
                         min_gap=min_gap, fire_at=fire_at)
        if not 0.5 < q < 1.0:
            raise ValueError(f"q must be in (0.5, 1), got {q}")
        self.q = float(q)
        self.warmup = int(warmup)
        self.min_gap = float(min_gap)
        self._sketch = datasketches.tdigest_double(int(k))
        self._cache: tuple[float, float, float] | None = None

    @property
    def warmed_up(self) -> bool:
        return bool(self._sketch.get_total_weight() >= max(self.warmup, 1))

    def _quantiles(self) -> tuple[float, float, float]:
        if self._cache is None:
            get = self._sketch.get_quantile
            self._cache = (get(1.0 - self.q), get(0.5), get(self.q))
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
        self._sketch.compress()  # canonical state: snapshots restore to the very same digest
        self._cache = None

    def _baseline(self) -> dict[str, Any]:
        if self._sketch.is_empty():
            return {"baseline": None, "spread": None, "n": 0}
        lo, med, hi = self._quantiles()
        return {"baseline": med, "spread": hi - med, "lower": lo, "upper": hi,
                "n": int(self._sketch.get_total_weight())}

    def _state(self) -> dict[str, Any]:
        return {"td": base64.b64encode(self._sketch.serialize()).decode()}

    def _load(self, state: dict[str, Any]) -> None:
        self._sketch = datasketches.tdigest_double.deserialize(base64.b64decode(state["td"]))
        self._cache = None
