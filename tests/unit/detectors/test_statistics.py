"""Streaming statistics inside the detectors, compared with numpy after every update."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import rules.detectors
import rules.metrics
from rules.detectors._moments import Moments
from rules.detectors.cusum import CUSUM
from rules.detectors.distinct import hll_merge, hll_of
from rules.detectors.ewma import EWMAZScore
from rules.detectors.mad import MAD
from rules.detectors.quantile import QuantileThreshold, kll_load, kll_of
from rules.detectors.seasonal import Seasonal

RNG = np.random.default_rng(11)
XS = [float(v) for v in RNG.lognormal(3.0, 0.7, 400)]


def _modules() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(rules.detectors.__path__, "rules.detectors.")]
    return [*names, "rules.detectors", "rules.metrics"]


@pytest.mark.parametrize("module", _modules())
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0


def test_exact_moments_match_numpy_after_every_update() -> None:
    m = Moments(alpha=0.0)
    for i, x in enumerate(XS, start=1):
        m.add(x)
        assert m.mean == pytest.approx(np.mean(XS[:i]), rel=1e-12)
        assert m.var == pytest.approx(np.var(XS[:i]), rel=1e-9, abs=1e-9)


def test_ew_moments_match_numpy_weights() -> None:
    """After the exact start, the mean is the numpy-weighted EW average of the history."""
    alpha = 0.1
    m = Moments(alpha)
    start = int(1 / alpha)
    for i, x in enumerate(XS, start=1):
        m.add(x)
        if i >= start:
            head = np.mean(XS[:start])
            tail = np.array(XS[start:i])
            decay = (1 - alpha) ** np.arange(len(tail) - 1, -1, -1)
            expected = (1 - alpha) ** len(tail) * head + alpha * float(np.sum(decay * tail))
            assert m.mean == pytest.approx(expected, rel=1e-9)


def test_ewma_baseline_is_numpy_mean_during_exact_phase() -> None:
    det = EWMAZScore(alpha=0.05, warmup=5)
    for i, x in enumerate(XS[:20], start=1):
        det.update(x)
        why = det.explain()
        assert why["baseline"] == pytest.approx(np.mean(XS[:i]))
        assert why["spread"] == pytest.approx(max(np.std(XS[:i]), det.min_std))


def test_mad_matches_numpy_over_the_window_after_every_update() -> None:
    det = MAD(window=25, warmup=5)
    for i, x in enumerate(XS, start=1):
        det.update(x)
        window = np.array(XS[max(0, i - 25):i])
        med, mad = det.median_mad()
        assert med == pytest.approx(np.median(window))
        assert mad == pytest.approx(np.median(np.abs(window - np.median(window))))


def test_mad_ignores_a_single_outlier_in_its_baseline() -> None:
    det = MAD(window=30, warmup=10)
    for x in [10.0, 11.0, 9.0, 10.0, 10.5, 9.5] * 3:
        det.update(x)
    det.update(1000.0)
    assert det.explain()["baseline"] == pytest.approx(10.0)
    assert det.score(10.5) < 0.5


def test_cusum_reference_is_running_mean_and_std() -> None:
    det = CUSUM(warmup=10, threshold=50.0)
    xs = [float(v) for v in RNG.normal(5.0, 2.0, 60)]
    for i, x in enumerate(xs, start=1):
        det.update(x)
        assert det.explain()["baseline"] == pytest.approx(np.mean(xs[:i]))
        assert det.explain()["spread"] == pytest.approx(np.std(xs[:i]))


def test_cusum_accumulates_a_small_shift_a_zscore_misses() -> None:
    base = [float(v) for v in RNG.normal(0.0, 1.0, 100)]
    shifted = [float(v) + 1.5 for v in RNG.normal(0.0, 1.0, 30)]
    cusum, ewma = CUSUM(), EWMAZScore()
    cusum_fired = [cusum.fires(cusum.update(x)) for x in base + shifted]
    ewma_fired = [ewma.fires(ewma.update(x)) for x in base + shifted]
    assert not any(cusum_fired[:100])
    assert any(cusum_fired[100:])
    assert not any(ewma_fired)


def test_direction_up_ignores_drops() -> None:
    both, up = EWMAZScore(warmup=5), EWMAZScore(warmup=5, direction="up")
    for x in [10.0, 11.0, 9.0, 10.0, 10.5, 9.5]:
        both.update(x)
        up.update(x)
    assert both.fires(both.score(0.0))
    assert up.score(0.0) == 0.0
    assert up.fires(up.score(20.0))


def test_quantile_detector_tracks_numpy_quantiles() -> None:
    det = QuantileThreshold(q=0.9, warmup=5)
    for x in XS:
        det.update(x)
    why = det.explain()
    data = np.array(XS)
    for name, q in (("lower", 0.1), ("baseline", 0.5), ("upper", 0.9)):
        rank = float(np.mean(data <= why[name]))
        assert abs(rank - q) <= 0.02, (name, rank)


def test_kll_partials_are_exact_when_small_and_merge_within_rank_error() -> None:
    small = XS[:150]
    sketch = kll_load(kll_of(small).serialize())
    assert sketch.get_quantile(0.5) in small
    left, right = kll_of(XS[:200]), kll_of(XS[200:])
    left.merge(right)
    estimate = left.get_quantile(0.99)
    rank = float(np.mean(np.array(XS) <= estimate))
    assert abs(rank - 0.99) <= 0.02


def test_hll_merge_counts_distinct_values_like_numpy() -> None:
    values = [f"host-{int(v)}" for v in RNG.integers(0, 3000, 20_000)]
    parts = [hll_of(values[i::4]).serialize_compact() for i in range(4)]
    estimate = hll_merge(parts).get_estimate()
    assert estimate == pytest.approx(len(np.unique(values)), rel=0.05)


def test_seasonal_compares_each_hour_with_itself() -> None:
    det = Seasonal(period=24 * 3600.0, slots=24)
    busy = {9, 10, 11, 14, 15}
    for day in range(10):
        for hour in range(24):
            ts = day * 86400.0 + hour * 3600.0
            level = 100.0 if hour in busy else 10.0
            score = det.update(level + float(RNG.normal(0, 2)), ts=ts)
            if day >= 2:
                assert not det.fires(score), (day, hour)
    night = 10 * 86400.0 + 3 * 3600.0
    assert det.fires(det.score(100.0, ts=night))
    assert det.explain()["baseline_source"] == "slot"


@pytest.mark.parametrize(("k", "n", "p"), [(0, 100, 0.15), (3, 200, 0.15), (40, 100, 0.15), (0, 12, 0.1),
                                           (9, 12, 0.1), (980, 1000, 0.9), (0, 1000, 0.01), (30, 1000, 0.01)])
def test_binomial_z_matches_the_exact_mid_p_tail(k: int, n: int, p: float) -> None:
    from math import comb
    from statistics import NormalDist

    from rules.detectors._binomial import binomial_z

    pmf = [comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(n + 1)]
    mean, sd = n * p, (n * p * (1 - p)) ** 0.5
    if abs(k - mean) < 3 * sd:
        expected = (k - mean) / sd
    elif k < mean:
        expected = NormalDist().inv_cdf(sum(pmf[:k]) + pmf[k] / 2)
    else:
        expected = -NormalDist().inv_cdf(sum(pmf[k + 1:]) + pmf[k] / 2)
    assert binomial_z(k, n, p) == pytest.approx(expected, rel=1e-6)


def test_binomial_mode_state_survives_restore() -> None:
    import orjson

    from rules.detectors import Detector

    rng = np.random.default_rng(8)
    ns = [int(v) for v in rng.integers(10, 400, 120)]
    xs = [float(rng.binomial(n, 0.12)) / n for n in ns]
    live = EWMAZScore(alpha=0.1, warmup=5, binomial=True)
    for x, n in zip(xs[:60], ns[:60], strict=True):
        live.update(x, n=n)
    twin = Detector.restore(orjson.loads(orjson.dumps(live.snapshot())))
    assert twin.explain()["overdispersion"] == live.explain()["overdispersion"]
    ahead = [live.update(x, n=n) for x, n in zip(xs[60:], ns[60:], strict=True)]
    assert [twin.update(x, n=n) for x, n in zip(xs[60:], ns[60:], strict=True)] == ahead
    assert not any(live.fires(s) for s in ahead)  # pure binomial noise at varying volume stays quiet
    assert live.explain()["overdispersion"] < 1.5
