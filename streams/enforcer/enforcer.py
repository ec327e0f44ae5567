"""The gateway-side enforcer: follows the kill-switch topic, verifies, and answers ``check``.

It reads the compacted ``overseer.killswitch.v1`` from the beginning on every
start (no consumer group, no committed offsets — the topic *is* the state),
verifies every command against its :class:`KeyRing`, keeps the active set,
and follows ``overseer.heartbeat.v1`` from its newest message for the
dead-man's switch. :meth:`Enforcer.check` never does I/O.

Imports aiokafka, cryptography and `schemas` only — never Faust.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.enforcer.check import Checker
from streams.enforcer.decision import Decision, FailClosedAction
from streams.killswitch.signing import KeyRing
from streams.killswitch.state import ActiveSet

log = logging.getLogger(__name__)


class EnforcerError(RuntimeError):
    """The enforcer could not start (topic missing, broker unreachable); the message says what to do."""


class Enforcer:
    """Embed one per gateway process; call :meth:`check` on every request.

    ``consumer_options`` go to ``AIOKafkaConsumer`` (TLS/SASL settings).
    ``clock`` returns epoch seconds (injectable for tests).
    """

    def __init__(self, bootstrap: str, keyring: KeyRing, topic: str = "overseer.killswitch.v1",
                 heartbeat_topic: str | None = "overseer.heartbeat.v1", max_heartbeat_age_s: float = 30.0,
                 fail_closed_action: FailClosedAction = "no_new_runs",
                 consumer_options: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.bootstrap = bootstrap
        self.keyring = keyring
        self.topic = topic
        self.heartbeat_topic = heartbeat_topic
        self.consumer_options = dict(consumer_options or {})
        self.clock = clock
        self.checker = Checker(max_heartbeat_age_s, fail_closed_action, started_at=clock())
        self.stats: dict[str, int] = {
            "received": 0, "accepted": 0, "released": 0, "duplicate": 0,
            "rejected_bad_signature": 0, "rejected_unknown_key": 0, "rejected_malformed": 0,
            "rejected_expired": 0, "heartbeats": 0, "heartbeats_rejected": 0, "expired_leases": 0, "consume_errors": 0}
        self.ready = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    # -- the hot path -----------------------------------------------------------
    def check(self, model: str | None = None, deployment: str | None = None, tenant: str | None = None,
              agent_run: str | None = None, session: str | None = None, tool: str | None = None,
              new_run: bool = False) -> Decision:
        """May this request go ahead? Microseconds; no I/O."""
        return self.checker.check(model, deployment, tenant, agent_run, session, tool, new_run, self.clock())

    @property
    def active(self) -> ActiveSet:
        """The verified, applied commands (for inspection and `overseer killswitch list`)."""
        return self.checker.active

    # -- feeding ----------------------------------------------------------------
    def apply_message(self, value: bytes | None) -> str:
        """Verify and apply one kill-switch message; return what happened (also counted in ``stats``)."""
        self.stats["received"] += 1
        if value is None:  # a compaction tombstone: nothing to apply
            self.stats["duplicate"] += 1
            return "duplicate"
        result = self.keyring.verify(value)
        if not result.ok or result.command is None:
            self.stats[f"rejected_{result.reason}"] += 1
            log.warning("kill-switch command rejected (%s): %s", result.reason, result.detail)
            return f"rejected_{result.reason}"
        outcome = self.checker.active.apply(result.command, self.clock())
        key = {"applied": "accepted", "expired": "rejected_expired"}.get(outcome, outcome)
        self.stats[key] += 1
        return key

    def apply_heartbeat(self, value: bytes | None) -> bool:
        """Verify one heartbeat; a valid one resets the dead-man's switch."""
        if value is None:
            return False
        reason, hb = self.keyring.verify_heartbeat(value)
        if reason != "ok" or hb is None:
            self.stats["heartbeats_rejected"] += 1
            return False
        self.stats["heartbeats"] += 1
        # the signed time, but never later than now: a future-stamped heartbeat must not buy extra life
        self.checker.heartbeat(min(hb.ts.timestamp(), self.clock()))
        return True

    # -- lifecycle --------------------------------------------------------------
    async def start(self, timeout_s: float = 30.0) -> None:
        """Connect, read the kill-switch topic to its end, then keep following it in the background."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", **self.consumer_options)
        await consumer.start()
        self._consumer = consumer
        try:
            ks_parts = await self._partitions(self.topic, required=True)
            hb_parts = await self._partitions(self.heartbeat_topic, required=False) if self.heartbeat_topic else []
            consumer.assign(ks_parts + hb_parts)
            await consumer.seek_to_beginning(*ks_parts)
            if hb_parts:
                ends = await consumer.end_offsets(hb_parts)
                for tp in hb_parts:
                    consumer.seek(tp, max(ends[tp] - 1, 0))
            targets = await consumer.end_offsets(ks_parts)
            self.checker.started_at = self.clock()
            self._task = asyncio.get_running_loop().create_task(self._run(targets), name="overseer-enforcer")
            await asyncio.wait_for(self.ready.wait(), timeout_s)
        except BaseException:
            await self.stop()
            raise

    async def _partitions(self, topic: str | None, required: bool, wait_s: float = 5.0) -> list[TopicPartition]:
        """The topic's partitions, waiting briefly for metadata of a topic that was just created."""
        assert self._consumer is not None and topic is not None
        deadline = time.monotonic() + wait_s
        while True:
            # aiokafka's own `topics()` does the same call; we need the partitions, not only the names
            cluster = await self._consumer._client.fetch_all_metadata()  # noqa: SLF001
            parts = cluster.partitions_for_topic(topic)
            if parts or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        if not parts:
            if required:
                raise EnforcerError(f"topic {topic!r} does not exist on {self.bootstrap}: "
                                    "start the monitor (it creates its topics) or create it compacted")
            log.warning("heartbeat topic %r does not exist: the dead-man's switch will fire after %.0fs",
                        topic, self.checker.max_heartbeat_age_s)
            return []
        return [TopicPartition(topic, p) for p in sorted(parts)]

    async def _run(self, targets: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        pending = {tp: end for tp, end in targets.items() if end > 0}
        if not pending:
            self.ready.set()
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep following: the active set stays, leases keep expiring, heartbeats age
                self.stats["consume_errors"] += 1
                log.exception("reading %s failed; retrying", self.topic)
                await asyncio.sleep(1.0)
                continue
            for tp, records in batches.items():
                if tp.topic == self.topic:
                    for record in records:
                        self.apply_message(record.value)
                else:
                    for record in records:
                        self.apply_heartbeat(record.value)
            if pending:
                for tp in list(pending):
                    if await self._consumer.position(tp) >= pending[tp]:
                        del pending[tp]
                if not pending:
                    self.ready.set()
            self.stats["expired_leases"] += len(self.checker.active.expire(self.clock()))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def __aenter__(self) -> Enforcer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
