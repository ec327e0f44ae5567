"""Durations in rule files: ``500ms``, ``30s``, ``10m``, ``1h``, ``2d`` or a number of seconds.

>>> parse_duration("10m"), parse_duration("1h30m"), parse_duration(45), parse_duration("250ms")
(600.0, 5400.0, 45.0, 0.25)
>>> parse_duration("ten minutes") is None
True
"""

from __future__ import annotations

import re
from typing import Any

_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")


def parse_duration(value: Any) -> float | None:
    """Seconds as a float, or None when ``value`` is not a positive duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip().replace(" ", "")
    if not _WHOLE.fullmatch(text):
        return None
    total = sum(float(n) * _UNIT[u] for n, u in _PART.findall(text))
    return total if total > 0 else None
