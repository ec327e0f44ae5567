"""The worker's garbage-collector settings (streams/gc_tuning.py): applied, and the doc example runs."""

from __future__ import annotations

import doctest
import gc

from streams import gc_tuning
from streams.settings import Settings


def test_doctests() -> None:
    result = doctest.testmod(gc_tuning)
    assert result.attempted > 0 and result.failed == 0


def test_the_default_threshold_is_far_above_cpythons() -> None:
    before = gc.get_threshold()
    try:
        assert gc_tuning.tune(Settings().gc_gen0_threshold)[0] >= 10_000 > before[0]
    finally:
        gc.set_threshold(*before)


def test_freeze_exempts_what_is_alive_from_collections() -> None:
    try:
        survivor = [[i] for i in range(1000)]  # tracked containers, alive at "start-up"
        assert gc_tuning.freeze() >= len(survivor)
        assert not any(gc.is_tracked(x) and x in gc.get_objects(generation=2) for x in survivor[:3])
    finally:
        gc.unfreeze()
