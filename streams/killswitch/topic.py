"""Reading and writing the compacted kill-switch topic (used by the CLI and the worker).

Reading reuses the :class:`streams.enforcer.Enforcer`: the state of the
topic is exactly what an enforcer would enforce, verified the same way.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.killswitch import KillSwitchCommand
from streams.enforcer.enforcer import Enforcer
from streams.killswitch.signing import KeyRing

COMPACTED = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "segment.ms": str(3600 * 1000)}


async def ensure_compacted_topic(bootstrap: str, topic: str, replication: int = 1,
                                 client_options: dict[str, Any] | None = None) -> bool:
    """Create ``topic`` (one partition, compacted) unless it exists; True when created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(client_options or {}))
    await admin.start()
    try:
        if topic in set(await admin.list_topics()):
            return False
        try:
            await admin.create_topics([NewTopic(topic, 1, replication, topic_configs=dict(COMPACTED))])
        except TopicAlreadyExistsError:
            return False
        return True
    finally:
        await admin.close()


async def read_state(bootstrap: str, topic: str, keyring: KeyRing,
                     consumer_options: dict[str, Any] | None = None, timeout_s: float = 30.0) -> Enforcer:
    """Read the topic from the beginning to its end; return the (stopped) enforcer holding the state."""
    enforcer = Enforcer(bootstrap, keyring, topic=topic, heartbeat_topic=None, consumer_options=consumer_options)
    await enforcer.start(timeout_s=timeout_s)
    await enforcer.stop()
    return enforcer


async def publish_commands(bootstrap: str, topic: str, commands: list[KillSwitchCommand],
                           producer_options: dict[str, Any] | None = None) -> None:
    """Publish signed commands keyed by slot, waiting for every acknowledgement (acks=all)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                **(producer_options or {}))
    await producer.start()
    try:
        for cmd in commands:
            if not cmd.signature:
                raise ValueError(f"refusing to publish unsigned command {cmd.command_id}")
            await producer.send_and_wait(topic, cmd.model_dump_json().encode(), key=cmd.kafka_key())
    finally:
        await producer.stop()
