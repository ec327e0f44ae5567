"""EWMA z-score: distance from an exponentially weighted mean, in EW standard deviations."""

from __future__ import annotations

import math
from typing import Any

from rules.detectors._binomial import binomial_z
from rules.detectors._moments import Moments
from rules.detectors.base import Detector

PHI_PRIOR = 10.0  # pseudo-observations of phi = 1 (pure binomial noise) behind the over-dispersion estimate


class EWMAZScore(Detector):
    """Scores ``z = (x - mean) / max(std, min_std)`` against an EW mean and variance.

    The baseline forgets with weight ``alpha`` per observation (exact running
    moments for the first ``1/alpha`` observations). ``min_std`` floors the
    spread so that a perfectly flat baseline does not turn noise into infinite
    z-scores; ``warmup`` observations are learned before scoring.

    ``binomial=True`` is for rates (a share of ``n`` events, ``n`` passed to
    :meth:`update`): the deviation is the exact binomial surprise of the
    bucket's count at the baseline rate, as a z-score
    (:func:`rules.detectors._binomial.binomial_z`), divided by a learned
    over-dispersion factor ``sqrt(phi)`` (``phi``: slow EW mean of those
    squared z-scores, shrunk towards 1 while few back it). A quiet hour with
    12 tool calls is judged by the noise of 12 calls, a collapse to 0 of 100
    at 15 % is recognised as the one-in-ten-million event it is, and a noisy
    quiet hour does not blunt the next busy one. ``min_std`` and the EW
    standard deviation are then only used for observations without ``n``.

    Parameters: ``alpha`` (0.05), ``threshold`` (4.5, in standard deviations),
    ``warmup`` (8), ``direction`` (both), ``min_std`` (1e-9), ``binomial``
    (false), ``fire_at`` (0.5).

    >>> d = EWMAZScore(warmup=3)
    >>> [d.update(x) for x in (10.0, 12.0, 11.0)]
    [None, None, None]
    >>> d.update(11.0)
    0.0
    >>> round(d.update(20.0), 3)
    0.859
    >>> d.explain()["baseline"]
    12.8

    A rate of 0.25 against a 0.10 baseline: alarming over 1000 events, noise over 20.

    >>> r = EWMAZScore(warmup=3, binomial=True)
    >>> [r.update(x, n=1000) for x in (0.10, 0.11, 0.09)]
    [None, None, None]
    >>> round(r.score(0.25, n=1000), 2), round(r.score(0.25, n=20), 2)
    (0.88, 0.29)
    """

    name = "ewma_zscore"

    def __init__(self, *, alpha: float = 0.05, threshold: float = 4.5, warmup: int = 8,
                 direction: str = "both", min_std: float = 1e-9, binomial: bool = False,
                 fire_at: float = 0.5) -> None:
        super().__init__(alpha=alpha, threshold=threshold, warmup=warmup, direction=direction,
                         min_std=min_std, binomial=binomial, fire_at=fire_at)
        self.warmup = int(warmup)
        self.min_std = float(min_std)
        self.binomial = bool(binomial)
        self._m = Moments(alpha)
        self._phi = Moments(alpha / 4)  # binomial: slow EW mean of squared standardised residuals

    @property
    def warmed_up(self) -> bool:
        return self._m.n >= self.warmup

    def _deviation(self, x: Any, ts: float | None) -> float | None:
        if not self.warmed_up or self._m.n == 0:
            return None
        n = self._n
        if self.binomial and n:
            return self._binomial_z(float(x), n) / math.sqrt(self._dispersion())
        return (float(x) - self._m.mean) / self._spread()

    def _binomial_z(self, x: float, n: int) -> float:
        return binomial_z(round(min(max(x, 0.0), 1.0) * n), n, self._m.mean)

    def _sampling_sd(self, n: int) -> float:
        p = min(max(self._m.mean, 0.5 / n), 1.0 - 0.5 / n)
        return math.sqrt(p * (1.0 - p) / n)

    def _spread(self) -> float:
        n = self._n
        if not (self.binomial and n):
            return max(self._m.std, self.min_std)
        return max(self._sampling_sd(n) * math.sqrt(self._dispersion()), self.min_std)

    def _dispersion(self) -> float:
        """Over-dispersion factor, shrunk towards 1 (pure binomial) while few residuals back it."""
        weight = min(self._phi.n, 1.0 / self._phi.alpha if self._phi.alpha else self._phi.n)
        shrunk = (PHI_PRIOR + weight * self._phi.mean) / (PHI_PRIOR + weight)
        return max(shrunk, 1.0)

    def _learn(self, x: Any, ts: float | None) -> None:
        n = self._n
        if self.binomial and n and self._m.n:
            residual = self._binomial_z(float(x), n)
            # the baseline mean is itself an estimate from ~k buckets: E[residual^2] = phi (1 + 1/k)
            alpha = self._m.alpha
            k = min(self._m.n, (2.0 - alpha) / alpha) if alpha > 0 else self._m.n
            self._phi.add(residual * residual / (1.0 + 1.0 / k))
        self._m.add(float(x))

    def _baseline(self) -> dict[str, Any]:
        out = {"baseline": self._m.mean, "spread": self._spread(), "n": self._m.n}
        if self.binomial:
            out["overdispersion"] = self._dispersion()
        return out

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"m": self._m.to_list()}
        if self.binomial:
            state["phi"] = self._phi.to_list()
        return state

    def _load(self, state: dict[str, Any]) -> None:
        self._m.load(state["m"])
        if "phi" in state:
            self._phi.load(state["phi"])
