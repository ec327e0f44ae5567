"""Detection state that lives where its key is partitioned.

Every stateful component — the rules engine (windows, sequences,
suppression), the metric runtime (open buckets, detector baselines), the
producer-sequence tracker and the policy engine — runs as one instance *per
source partition*. After each batch the instances it touched are
snapshotted to the compacted state topic (``overseer.state.v1``), **into the
same partition number as the source partition**, and the writes are awaited
(acks=all) before the batch's offsets may commit. When a worker starts
owning partition ``p`` (start-up, or a rebalance), it reads partition ``p`` of
the state topic (`streams.pipeline.state_store`) before the first record
from ``p`` is evaluated, and the instance is restored from it: a sequence
half-seen before a restart still fires after it, and baselines continue
instead of relearning.

Snapshots are compact JSON blobs written by each component; a batch that
changed nothing writes nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar


class Snapshottable(Protocol):
    def snapshot(self) -> bytes: ...

    def restore(self, blob: bytes) -> None: ...


T = TypeVar("T", bound=Snapshottable)


@dataclass
class PartitionedState(Generic[T]):
    """Lazily created per-partition instances, restored from the checkpoint table on first use."""

    name: str  # "rules", "metrics", "health", "policy"
    factory: Callable[[], T]
    checkpoints: Mapping[str, Any]  # key -> base64 snapshot, as read back from the state topic
    instances: dict[int, T] = field(default_factory=dict)
    dirty: set[int] = field(default_factory=set)
    restored: int = 0
    restore_failures: int = 0

    def key(self, partition: int) -> str:
        return f"{self.name}/{partition}"

    def get(self, partition: int) -> T:
        inst = self.instances.get(partition)
        if inst is None:
            inst = self.factory()
            blob = self.checkpoints.get(self.key(partition))
            if blob:
                try:
                    inst.restore(base64.b64decode(blob))
                    self.restored += 1
                except Exception:  # noqa: BLE001 - a corrupt or incompatible checkpoint must not stop detection
                    self.restore_failures += 1
                    inst = self.factory()
            self.instances[partition] = inst
        return inst

    def touch(self, partition: int) -> T:
        self.dirty.add(partition)
        return self.get(partition)

    def __iter__(self) -> Iterator[tuple[int, T]]:
        return iter(list(self.instances.items()))

    def drain(self) -> list[tuple[int, str, str]]:
        """(partition, table key, base64 snapshot) for every instance changed since the last drain."""
        out = [(p, self.key(p), base64.b64encode(self.instances[p].snapshot()).decode())
               for p in sorted(self.dirty) if p in self.instances]
        self.dirty.clear()
        return out

    def forget(self, partitions: set[int]) -> None:
        """Partitions revoked in a rebalance: drop their instances (the new owner restores them)."""
        for p in partitions:
            self.instances.pop(p, None)
            self.dirty.discard(p)
