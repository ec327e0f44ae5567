"""Detector names used in rule files (``algorithm:``) and on the CLI, mapped to classes.

>>> sorted(REGISTRY)[:3]
['cusum', 'distinct_spike', 'ewma_zscore']
>>> create("mad", window=30).params["window"]
30
"""

from __future__ import annotations

from typing import Any

from rules.detectors.base import Detector
from rules.detectors.cusum import CUSUM
from rules.detectors.distinct import DistinctSpike
from rules.detectors.ewma import EWMAZScore
from rules.detectors.mad import MAD
from rules.detectors.novelty import Novelty
from rules.detectors.page_hinkley import PageHinkley
from rules.detectors.quantile import QuantileThreshold
from rules.detectors.seasonal import Seasonal

REGISTRY: dict[str, type[Detector]] = {
    cls.name: cls for cls in (EWMAZScore, CUSUM, PageHinkley, MAD, QuantileThreshold, Seasonal, Novelty, DistinctSpike)
}

#: the recommended detector for a single numeric metric series (see docs/detectors.md)
DEFAULT_SERIES_DETECTOR = "cusum"


def get(name: str) -> type[Detector]:
    """The detector class called ``name``; a KeyError lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown detector {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def create(name: str, **params: Any) -> Detector:
    """A new detector ``name`` with ``params`` (unknown params raise TypeError)."""
    return get(name)(**params)
