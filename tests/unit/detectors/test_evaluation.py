"""The evaluation harness itself: labels, scoring rules and determinism."""

from __future__ import annotations

import pytest

from rules.detectors import create
from rules.detectors.evaluation import LENGTH, SCENARIOS, Score, Series, dataset, evaluate, score_series, summary


def test_scoring_rules_detection_false_alarms_and_neutral_zone() -> None:
    series = Series([0.0] * 100, windows=[(10, 20), (50, 50)], periods=[(10, 40), (50, 50)])
    score = Score()
    score_series([5, 12, 15, 30, 60], series, score)
    # 12 detects the first event (delay 2); 15 and 30 are inside its anomalous period;
    # the second event is missed; 5 and 60 are false alarms
    assert (score.events, score.detected, score.false_alarms, score.delays) == (2, 1, 2, [2])
    assert (score.precision, score.recall, score.delay) == (pytest.approx(1 / 3), 0.5, 2.0)
    assert score.false_per_1000 == 20.0


def test_datasets_are_deterministic_and_labelled_inside_the_series() -> None:
    for scenario in SCENARIOS:
        first, again = dataset(scenario, n=3), dataset(scenario, n=3)
        assert first == again
        for series in first:
            assert len(series.values) == LENGTH
            assert all(0 <= s <= e < LENGTH + 24 for s, e in series.windows)
            assert (series.windows == []) == (scenario == "control")


def test_spike_scenario_raises_the_point_it_labels() -> None:
    for series in dataset("spike", n=3):
        (t0, _), = series.windows
        assert series.values[t0] > max(series.values[:t0]) + 2


def test_recommended_default_detects_every_generic_anomaly_type() -> None:
    scores = evaluate(lambda: create("cusum"), scenarios=("spike", "level_shift", "variance_change", "control"), n=4)
    assert all(scores[s].recall == 1.0 for s in ("spike", "level_shift", "variance_change"))
    assert scores["control"].false_per_1000 < 1.0
    assert summary(scores)["f1"] > 0.7
