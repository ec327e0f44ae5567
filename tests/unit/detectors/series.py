"""Seeded series for the detector tests: flat noise, and the same noise with one obvious spike."""

from __future__ import annotations

from typing import Any

import numpy as np

from rules.detectors.base import Detector

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a Thursday
STEP = 60.0


def flat(detector: type[Detector] | Detector, n: int = 300, seed: int = 7) -> list[Any]:
    """Observations of a stable process, of the kind the detector observes."""
    rng = np.random.default_rng(seed)
    if detector.observation == "hashable":
        return [str(v) for v in rng.choice(["bash", "python", "read_file", "search"], n)]
    return [float(v) for v in rng.normal(10.0, 1.0, n)]


def spiked(detector: type[Detector] | Detector, n: int = 300, seed: int = 7) -> list[Any]:
    """``flat`` followed by one observation no sane baseline would accept."""
    extreme = "curl-to-unknown-host" if detector.observation == "hashable" else 40.0
    return [*flat(detector, n, seed), extreme]


def times(n: int) -> list[float]:
    return [T0 + i * STEP for i in range(n)]


def run(det: Detector, xs: list[Any]) -> list[float | None]:
    return [det.update(x, ts=t) for x, t in zip(xs, times(len(xs)), strict=True)]
