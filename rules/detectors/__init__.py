"""Streaming statistical detectors: one algorithm per module, one interface.

Every detector speaks the verbs of :class:`rules.detectors.base.Detector`
(``update``, ``score``, ``explain``, ``snapshot``/``restore``, ``clone``);
:mod:`rules.detectors.registry` maps the names used in rule files to classes.
"""

from rules.detectors.base import Detector
from rules.detectors.registry import REGISTRY, create, get

__all__ = ["REGISTRY", "Detector", "create", "get"]
