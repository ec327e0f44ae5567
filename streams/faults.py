"""Deterministic crash points, for the fault tests.

``OVERSEER_FAULT_CRASH_AT=before_sink:3`` makes the worker kill itself with
SIGKILL — no cleanup, no flush, exactly like ``kill -9`` — the third time it
reaches the ``before_sink`` point. Unset (the default) it costs one
attribute check per point. Points, in the order a batch passes them:

- ``before_sink``            decoded and evaluated, nothing written yet
- ``after_sink``             ClickHouse acknowledged, nothing published
- ``before_ack``             published to Kafka, offsets not yet committed
- ``before_command``         a policy decided, the command is not yet published
- ``after_command``          the command is on the topic, not yet recorded as issued
"""

from __future__ import annotations

import os
import signal

POINTS = ("before_sink", "after_sink", "before_ack", "before_command", "after_command")


class Faults:
    def __init__(self, spec: str | None) -> None:
        self.point_name: str | None = None
        self.nth = 1
        self.seen = 0
        if spec:
            name, _, nth = spec.partition(":")
            if name not in POINTS:
                raise ValueError(f"unknown fault point {name!r}; one of {', '.join(POINTS)}")
            self.point_name, self.nth = name, int(nth or 1)

    def point(self, name: str) -> None:
        if self.point_name != name:
            return
        self.seen += 1
        if self.seen >= self.nth:
            os.kill(os.getpid(), signal.SIGKILL)
