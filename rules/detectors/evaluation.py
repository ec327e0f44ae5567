"""Evaluate the detectors on labelled synthetic series with injected anomalies.

Run ``python -m rules.detectors.evaluation`` for the table in
docs/detectors.md (``--grid`` also sweeps each detector's threshold). Every
series is generated from a seeded RNG, so the numbers are reproducible.

Scenarios (five weeks of hourly points, N(0, 1) noise around a level of 50;
the anomaly starts at a random index ``t0`` after at least three weeks; the
*detection window* is where a first alarm counts as a detection, the
*anomalous period* is where alarms are not false):

===================  ==========================================  ==============  =================
scenario             injected                                    detection       anomalous period
===================  ==========================================  ==============  =================
spike                one point +8 sigma                          t0              t0
level_shift          +3 sigma from t0 on                         t0 .. t0+24     t0 .. end
trend_drift          +0.05 sigma per step from t0 on             t0 .. t0+100    t0 .. end
variance_change      noise x5 from t0 on                         t0 .. t0+24     t0 .. end
broken_seasonality   daily cycle (amplitude 8 sigma) inverted    t0 .. t0+24     t0 .. t0+24
                     for one day
count_burst          Poisson(20) counts; one bucket +40          t0              t0
control              nothing (false alarms only)                 —               —
===================  ==========================================  ==============  =================

Scoring, per detector and scenario: an event is *detected* when an alarm
(``score >= fire_at``) falls in its detection window; alarms outside every
anomalous period are false alarms; other alarms inside an anomalous period
count neither way. Precision = detected / (detected + false alarms), recall =
detected / events, delay = mean of (first alarm in window - t0) over detected
events, in points.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from rules.detectors.base import Detector
from rules.detectors.registry import REGISTRY, create

STEP = 3600.0
T_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
LENGTH = 24 * 7 * 5  # five weeks of hourly points
SERIES_PER_SCENARIO = 30
LEVEL = 50.0

Window = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Series:
    values: list[float]
    windows: list[Window]  # inclusive detection windows; empty for controls
    periods: list[Window]  # inclusive anomalous periods: alarms there are not false


def _daily(n: int, amplitude: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    hours = np.arange(n) % 24
    return np.asarray(amplitude * np.sin(2 * np.pi * hours / 24.0), dtype=np.float64)


def _inject(kind: str, rng: np.random.Generator) -> Series:
    noise = rng.normal(0.0, 1.0, LENGTH)
    seasonal = kind == "broken_seasonality"
    base = LEVEL + (_daily(LENGTH, 8.0) if seasonal else np.zeros(LENGTH))
    t0 = int(rng.integers(24 * 7 * 3, LENGTH - 110))
    values = base + noise
    end = LENGTH - 1
    if kind == "spike":
        values[t0] += 8.0
        return Series(values.tolist(), [(t0, t0)], [(t0, t0)])
    if kind == "level_shift":
        values[t0:] += 3.0
        return Series(values.tolist(), [(t0, t0 + 24)], [(t0, end)])
    if kind == "trend_drift":
        values[t0:] += 0.05 * np.arange(LENGTH - t0)
        return Series(values.tolist(), [(t0, t0 + 100)], [(t0, end)])
    if kind == "variance_change":
        values[t0:] = base[t0:] + noise[t0:] * 5.0
        return Series(values.tolist(), [(t0, t0 + 24)], [(t0, end)])
    if kind == "broken_seasonality":
        t0 -= t0 % 24  # a whole day, midnight to midnight, with the cycle inverted
        values[t0:t0 + 24] = LEVEL - _daily(24, 8.0) + noise[t0:t0 + 24]
        return Series(values.tolist(), [(t0, t0 + 24)], [(t0, t0 + 24)])
    if kind == "count_burst":
        counts = rng.poisson(20.0, LENGTH).astype(float)
        counts[t0] += 40.0
        return Series(counts.tolist(), [(t0, t0)], [(t0, t0)])
    if kind == "control":
        return Series(values.tolist(), [], [])
    raise ValueError(f"unknown scenario {kind!r}")


SCENARIOS = ("spike", "level_shift", "trend_drift", "variance_change", "broken_seasonality", "count_burst",
             "control")


def dataset(scenario: str, n: int = SERIES_PER_SCENARIO, seed: int = 2026) -> list[Series]:
    """``n`` labelled series of one scenario (deterministic for a given seed)."""
    rng = np.random.default_rng([seed, SCENARIOS.index(scenario)])
    return [_inject(scenario, rng) for _ in range(n)]


@dataclass
class Score:
    events: int = 0
    detected: int = 0
    false_alarms: int = 0
    delays: list[int] | None = None
    points: int = 0

    @property
    def precision(self) -> float | None:
        total = self.detected + self.false_alarms
        return self.detected / total if total else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.events if self.events else None

    @property
    def delay(self) -> float | None:
        return float(np.mean(self.delays)) if self.delays else None

    @property
    def false_per_1000(self) -> float:
        return 1000.0 * self.false_alarms / self.points if self.points else 0.0


def alarms(det: Detector, values: list[float]) -> list[int]:
    """Indices where the detector fires."""
    return [i for i, x in enumerate(values) if det.fires(det.update(x, ts=T_START + i * STEP))]


def score_series(fired: list[int], series: Series, into: Score) -> None:
    """Add one series' alarms to ``into`` (see the module docstring for the rules)."""
    into.points += len(series.values)
    into.delays = into.delays if into.delays is not None else []
    for start, end in series.windows:
        into.events += 1
        hits = [i for i in fired if start <= i <= end]
        if hits:
            into.detected += 1
            into.delays.append(hits[0] - start)
    into.false_alarms += sum(1 for i in fired if not any(s <= i <= e for s, e in series.periods))


def evaluate(factory: Callable[[], Detector], scenarios: tuple[str, ...] = SCENARIOS,
             n: int = SERIES_PER_SCENARIO) -> dict[str, Score]:
    """Scores of a detector (built fresh per series by ``factory``) per scenario."""
    out = {}
    for scenario in scenarios:
        score = Score()
        for series in dataset(scenario, n):
            score_series(alarms(factory(), series.values), series, score)
        out[scenario] = score
    return out


def summary(scores: dict[str, Score]) -> dict[str, Any]:
    """Precision, recall and delay pooled over the anomaly scenarios, plus controls' false alarms."""
    anomalous = [s for k, s in scores.items() if k != "control"]
    pooled = Score(events=sum(s.events for s in anomalous), detected=sum(s.detected for s in anomalous),
                   false_alarms=sum(s.false_alarms for s in scores.values()),
                   delays=[d for s in anomalous for d in (s.delays or [])])
    p, r = pooled.precision or 0.0, pooled.recall or 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "delay": pooled.delay,
            "false_per_1000_control": scores["control"].false_per_1000 if "control" in scores else None}


NUMERIC = tuple(name for name, cls in sorted(REGISTRY.items()) if cls.observation == "float")
GRID = {"ewma_zscore": [3.5, 4.5, 5.5], "cusum": [6.0, 8.0, 10.0], "page_hinkley": [5.0, 8.0, 12.0],
        "mad": [4.0, 5.0, 7.0], "quantile": [1.0, 1.5, 2.5], "seasonal": [4.0, 5.0, 6.0],
        "distinct_spike": [3.0, 4.0, 5.0]}


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table(names: tuple[str, ...] = NUMERIC, n: int = SERIES_PER_SCENARIO) -> str:
    """Markdown: per detector (default params) and scenario, precision / recall / delay."""
    head = "| detector | " + " | ".join(SCENARIOS[:-1]) + " | false alarms /1000 (control) | pooled P / R / F1 |"
    lines = [head, "|" + "---|" * (len(SCENARIOS) + 2)]
    for name in names:
        scores = evaluate(partial(create, name), n=n)
        cells = [f"{_fmt(s.precision)} / {_fmt(s.recall)} / {_fmt(s.delay, 1)}"
                 for k, s in scores.items() if k != "control"]
        pooled = summary(scores)
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {pooled['false_per_1000_control']:.2f} | "
                     f"{pooled['precision']:.2f} / {pooled['recall']:.2f} / {pooled['f1']:.2f} |")
    return "\n".join(lines)


def grid(n: int = SERIES_PER_SCENARIO) -> str:
    """Markdown: pooled precision / recall / F1 / delay for each detector over a threshold grid."""
    lines = ["| detector | threshold | precision | recall | F1 | mean delay | false alarms /1000 (control) |",
             "|---|---|---|---|---|---|---|"]
    for name, thresholds in GRID.items():
        for threshold in thresholds:
            pooled = summary(evaluate(partial(create, name, threshold=threshold), n=n))
            default = " (default)" if REGISTRY[name]().threshold == threshold else ""
            lines.append(f"| `{name}` | {threshold:g}{default} | {pooled['precision']:.2f} | {pooled['recall']:.2f} "
                         f"| {pooled['f1']:.2f} | {_fmt(pooled['delay'], 1)} | "
                         f"{pooled['false_per_1000_control']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", action="store_true", help="also sweep each detector's threshold")
    parser.add_argument("-n", type=int, default=SERIES_PER_SCENARIO, help="series per scenario")
    args = parser.parse_args(argv)
    print(f"Series per scenario: {args.n}; length {LENGTH} hourly points; precision / recall / mean delay (points)\n")
    print(table(n=args.n))
    if args.grid:
        print("\nThreshold sweep (pooled over the anomaly scenarios):\n")
        print(grid(n=args.n))


if __name__ == "__main__":
    main()
