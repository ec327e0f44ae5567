"""Garbage-collector settings for a worker process.

Why: the hot path allocates tens of container objects per event (the decoded
dicts, their tuples, the rule hits), so CPython's default first-generation
threshold (700 allocations) runs a collection every dozen events, and every
tenth of those scans the older generations too — which in a worker hold the
whole start-up heap (Faust, aiokafka, pydantic schemas, the compiled rules) and
all rule state. Measured in-process over 100,000 bench events (the decode,
rules, partials and storage encoding stages; docs/performance.md, "What the
profile showed"): 40,000 events/s with the defaults, 50,500 with a threshold of
100,000, 54,700 with the collector off. Reference counting frees almost every
object of a batch anyway; the collector is only needed for cycles, which the
hot path does not create at a rate that matters.

``tune(threshold)`` raises the first-generation threshold, and ``freeze()``
moves everything alive at the end of start-up into the permanent generation,
so full collections no longer walk it.

>>> import gc
>>> before = gc.get_threshold()
>>> tune(50_000)
(50000, 20, 10)
>>> gc.get_threshold()[0]
50000
>>> tune(0) == (50000, 20, 10)  # 0 keeps what is set
True
>>> gc.set_threshold(*before)
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def tune(gen0_threshold: int) -> tuple[int, int, int]:
    """Set the first-generation threshold (0: leave the interpreter's setting); returns the thresholds in force."""
    if gen0_threshold > 0:
        gc.set_threshold(gen0_threshold, 20, 10)
    return gc.get_threshold()


def freeze() -> int:
    """Collect once, then exempt every object alive now from future collections; returns how many were frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("gc: %d start-up objects frozen, thresholds %s", frozen, gc.get_threshold())
    return frozen
