"""Deterministic fault injection, for the fault tests.

``OVERSEER_FAULT_CRASH_AT=before_sink:3`` makes the worker kill itself with
SIGKILL — no cleanup, no flush, exactly like ``kill -9`` — the third time it
reaches the ``before_sink`` point. Unset (the default) it costs one
attribute check per point. Points, in the order a batch passes them:

- ``before_sink``            decoded and evaluated, nothing written yet
- ``after_sink``             ClickHouse acknowledged, nothing published
- ``before_ack``             published to Kafka, offsets not yet committed
- ``before_command``         a policy decided, the command is not yet published
- ``after_command``          the command is on the topic, not yet recorded as issued

``OVERSEER_FAULT_CLICKHOUSE_DOWN=START:DURATION`` makes every ClickHouse call
of the sink fail as a refused connection would, from START seconds after the
sink was created, for DURATION seconds (see :class:`Outage`).

>>> o = Outage("5:10", clock=lambda: 100.0)
>>> o.active(now=104.0), o.active(now=106.0), o.active(now=116.0)
(False, True, False)
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

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


class InjectedConnectionError(ConnectionRefusedError):
    """What the sink sees while an injected ClickHouse outage lasts."""


class Outage:
    """A window of time, relative to creation, during which ClickHouse is 'down'."""

    def __init__(self, spec: str | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.start: float | None = None
        self.end: float | None = None
        if spec:
            start, _, duration = spec.partition(":")
            try:
                t0, d = float(start), float(duration)
            except ValueError:
                raise ValueError(f"OVERSEER_FAULT_CLICKHOUSE_DOWN={spec!r}: expected START:DURATION in seconds") from None
            if t0 < 0 or d <= 0:
                raise ValueError(f"OVERSEER_FAULT_CLICKHOUSE_DOWN={spec!r}: START >= 0 and DURATION > 0")
            base = clock()
            self.start, self.end = base + t0, base + t0 + d

    def active(self, now: float | None = None) -> bool:
        if self.start is None or self.end is None:
            return False
        now = self._clock() if now is None else now
        return self.start <= now < self.end

    def check(self) -> None:
        """Raise as a refused connection would, while the outage lasts."""
        if self.active():
            raise InjectedConnectionError(111, "Connection refused (injected ClickHouse outage, "
                                               "OVERSEER_FAULT_CLICKHOUSE_DOWN)")
