"""The monitor's heartbeat: the enforcer's dead-man's switch listens for it.

:class:`HeartbeatPublisher` signs a small :class:`schemas.killswitch.Heartbeat`
every ``interval_s`` and publishes it with an aiokafka producer. Enforcers
verify it against their key ring and fail closed when the newest one is too
old — so a crashed or partitioned monitor cannot silently stop containment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from schemas.killswitch import Heartbeat
from streams.killswitch.signing import Signer

log = logging.getLogger(__name__)


class HeartbeatPublisher:
    """Publishes signed heartbeats until stopped. ``producer`` is a started ``AIOKafkaProducer``."""

    def __init__(self, producer: Any, topic: str, signer: Signer, interval_s: float = 5.0,
                 monitor_id: str = "overseer") -> None:
        self.producer = producer
        self.topic = topic
        self.signer = signer
        self.interval_s = interval_s
        self.monitor_id = monitor_id
        self.seq = 0
        self.stats = {"published": 0, "failed": 0}
        self._task: asyncio.Task[None] | None = None

    def build(self, now: datetime | None = None) -> Heartbeat:
        hb = Heartbeat(monitor_id=self.monitor_id, seq=self.seq, ts=now or datetime.now(UTC),
                       key_id=self.signer.key_id)
        self.seq += 1
        return self.signer.sign_heartbeat(hb)

    async def publish_once(self) -> Heartbeat:
        hb = self.build()
        await self.producer.send_and_wait(self.topic, hb.model_dump_json().encode(),
                                          key=self.monitor_id.encode())
        self.stats["published"] += 1
        return hb

    async def _run(self) -> None:
        while True:
            try:
                await self.publish_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a broker hiccup must not end the heartbeat loop
                self.stats["failed"] += 1
                log.exception("heartbeat publish failed; retrying in %.1fs", self.interval_s)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="overseer-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
