"""Faust's table recovery, minus a race that silently dropped stream records after a restore.

faust-streaming 0.15.3, when a table has changelog data to restore at start-up or after a
rebalance (here: ``alert-state`` once any alert was raised, ``killswitch-issued`` once a command
was issued):

1. pauses every assigned partition, resumes the changelog partitions, resumes the flow and starts
   the Fetcher, which reads the changelogs;
2. "Done reading": pauses the changelog partitions again — the Fetcher keeps running;
3. ``Recovery.on_recovery_completed``: resumes the stream partitions, seeks them to their committed
   offsets, then resumes flow control, which **clears every agent's channel queue**.

The Fetcher's fetch in flight in the consumer thread filters by ``Consumer._active_partitions``
*by reference* (and aiokafka reads an empty set as "every partition"). So in step 2–3 it can
return records of the events topic — advancing aiokafka's positions — that are then cleared from
the detect agent's queue a few milliseconds later or filtered out. The seek does not bring them
back: aiokafka's ``seek_to_committed`` does nothing for a partition that has no committed offset
(a group that had not committed yet, e.g. a worker killed before its first commit), and Faust
drops re-fetched offsets below its read offset. The agent processes the batch it had already
taken, then waits for records that never come: partitions assigned and not paused, flow active,
recovery finished, consumer lag constant (docs/operations.md, "A worker that stopped after its
first batch"). Nothing is committed past the lost records, so a restart recovers them.

:class:`StreamSafeRecovery` closes it in ``on_recovery_completed``, before Faust resumes the stream
partitions: it stops the consumer's flow (the next fetch waits for the flow to resume, i.e. after
the seek and the cleared queues), leaves the fetch in flight, if any, with a set that matches no
partition, and puts every stream partition where a fresh consumer would start: its committed
offset, or the beginning of the partition when the group has none (the app uses
``consumer_auto_offset_reset="earliest"``). Faust's own ``on_recovery_completed`` then runs
unchanged. ``app.conf.TableManager = StreamSafeTableManager`` installs it.
"""

from __future__ import annotations

from typing import Any, cast

from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.types import TP

#: non-empty (aiokafka reads an empty set as "all partitions") and matching no partition
NO_PARTITION = TP("overseer.no-partition", -1)


class StreamSafeRecovery(Recovery):
    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        consumer = cast(Consumer, self.app.consumer)
        consumer.stop_flow()
        in_flight = consumer._get_active_partitions()  # the set a fetch in flight filters by
        consumer._active_partitions = set(in_flight)  # the next fetch gets a set of its own
        in_flight.clear()
        in_flight.add(NO_PARTITION)
        streams = {tp for tp in consumer.assignment() if not self._is_changelog_tp(tp)}
        if streams:
            await self._wait(rewind(consumer, streams), timeout=self.app.conf.broker_request_timeout)
        await super().on_recovery_completed(generation_id)


async def rewind(consumer: Any, streams: set[TP]) -> None:
    """Seek stream partitions to their committed offsets, and those without one to their beginning."""
    committed = await consumer.seek_to_committed()
    uncommitted = [tp for tp in streams if not committed.get(tp)]
    if uncommitted:
        await consumer.seek_wait(dict(await consumer.earliest_offsets(*uncommitted)))


class StreamSafeTableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = StreamSafeRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
