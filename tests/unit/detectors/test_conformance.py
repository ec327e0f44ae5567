"""Every detector in the registry, checked against the shared contract.

A new detector is tested the moment it is registered: state round-trips
through JSON (Faust tables store it), clones are fresh, scores are
deterministic and in [0, 1], warm-up is explicit, and the default parameters
fire on an obvious spike but stay quiet on flat noise.
"""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from rules.detectors import REGISTRY, Detector
from tests.unit.detectors.series import flat, run, spiked, times

DETECTORS = sorted(REGISTRY)


@pytest.fixture(params=DETECTORS)
def cls(request: pytest.FixtureRequest) -> type[Detector]:
    return REGISTRY[request.param]


def test_registry_names_match_classes(cls: type[Detector]) -> None:
    assert REGISTRY[cls.name] is cls
    assert cls().name == cls.name


def test_snapshot_restore_continues_identically(cls: type[Detector]) -> None:
    xs = spiked(cls, n=200)
    ts = times(len(xs))
    live = cls()
    for x, t in zip(xs[:120], ts[:120], strict=True):
        live.update(x, ts=t)
    blob = orjson.dumps(live.snapshot())
    restored = Detector.restore(orjson.loads(blob))
    assert type(restored) is cls
    assert restored.params == live.params
    assert restored.warmed_up == live.warmed_up
    assert restored.explain() == live.explain()
    after_live = [live.update(x, ts=t) for x, t in zip(xs[120:], ts[120:], strict=True)]
    after_restored = [restored.update(x, ts=t) for x, t in zip(xs[120:], ts[120:], strict=True)]
    assert after_live == after_restored
    assert orjson.dumps(live.snapshot()) == orjson.dumps(restored.snapshot())


def test_restore_refuses_another_detectors_state(cls: type[Detector]) -> None:
    other = next(c for name, c in REGISTRY.items() if name != cls.name)
    with pytest.raises(ValueError, match="cannot restore"):
        other.restore(cls().snapshot())


def test_clone_is_fresh_with_same_params(cls: type[Detector]) -> None:
    trained = cls()
    run(trained, flat(cls, n=100))
    fresh = trained.clone()
    assert fresh.params == trained.params
    assert not fresh.warmed_up
    xs = spiked(cls, n=60)
    assert run(fresh, xs) == run(cls(), xs)


def test_deterministic(cls: type[Detector]) -> None:
    xs = spiked(cls)
    assert run(cls(), xs) == run(cls(), xs)


def test_warmup_returns_none_then_scores(cls: type[Detector]) -> None:
    det = cls()
    scores = run(det, flat(cls, n=300))
    assert scores[0] is None
    first = next(i for i, s in enumerate(scores) if s is not None)
    assert all(s is None for s in scores[:first])
    assert det.warmed_up
    assert all(s is not None for s in scores[first:])


def test_scores_within_unit_interval_on_heavy_tails(cls: type[Detector]) -> None:
    rng = np.random.default_rng(3)
    if cls.observation == "hashable":
        xs = [str(v) for v in rng.zipf(1.5, 400)]
    else:
        xs = [float(v) for v in rng.standard_cauchy(400) * 100]
    scores = [s for s in run(cls(), xs) if s is not None]
    assert scores
    assert all(0.0 <= s <= 1.0 and not math.isnan(s) for s in scores)


def test_default_params_fire_on_obvious_spike_not_on_flat_noise(cls: type[Detector]) -> None:
    det = cls()
    scores = run(det, spiked(cls))
    assert not any(det.fires(s) for s in scores[:-1])
    assert det.fires(scores[-1])


def test_score_does_not_learn(cls: type[Detector]) -> None:
    det = cls()
    xs = spiked(cls)
    ts = times(len(xs))
    run(det, xs[:-1])
    before = orjson.dumps(det.snapshot())
    peek = det.score(xs[-1], ts=ts[-1])
    assert orjson.dumps(det.snapshot()) == before
    assert det.update(xs[-1], ts=ts[-1]) == peek


def test_explain_is_json_and_says_why(cls: type[Detector]) -> None:
    det = cls()
    run(det, spiked(cls))
    why = orjson.loads(orjson.dumps(det.explain()))
    assert {"detector", "baseline", "spread", "deviation", "last_observed", "params", "warmed_up"} <= set(why)
    assert why["params"] == det.params
    assert why["deviation"] is not None and why["deviation"] > 0  # the spike was above normal


def test_unknown_parameter_is_rejected(cls: type[Detector]) -> None:
    with pytest.raises(TypeError):
        cls(no_such_param=1)


def test_bad_observation_is_rejected(cls: type[Detector]) -> None:
    bad = [1, 2] if cls.observation == "hashable" else float("nan")
    with pytest.raises(ValueError):
        cls().update(bad, ts=times(1)[0])


def test_snapshot_stays_small(cls: type[Detector]) -> None:
    """Bytes per key, after a long history (the bound the runtime's key cap relies on)."""
    det = cls()
    run(det, flat(cls, n=5000))
    size = len(orjson.dumps(det.snapshot()))
    assert size < 8192, f"{cls.name}: {size} bytes per key"
