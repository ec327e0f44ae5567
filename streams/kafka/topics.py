"""The topics of DESIGN.md, created with explicit partitions and configs.

Topic names come from ``Settings.topic(name)`` (``overseer.<name>.v1``).
Creation is idempotent: an existing topic is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    name: str  # short name: events, deadletter, ...
    purpose: str
    compacted: bool = False
    partitions: int | None = None  # None = Settings.topic_partitions
    configs: dict[str, str] = field(default_factory=dict)


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("events", "input: events or producer-side batches, keyed by agent run / conversation / deployment",
              configs={"retention.ms": str(7 * 24 * 3600 * 1000), "max.message.bytes": "8388608"}),
    TopicSpec("deadletter", "invalid input: original bytes + reason + source offset; never lost",
              configs={"retention.ms": str(30 * 24 * 3600 * 1000), "max.message.bytes": "16777216"}),
    TopicSpec("metrics", "partial aggregates pre-aggregated per batch, keyed by metric key (fleet statistics)"),
    TopicSpec("health", "producer sequence summaries per batch, keyed by producer_id (loss detection)"),
    TopicSpec("state", "checkpoints of per-partition detection state, in the source partition's number "
                       "(compacted: latest snapshot per component and partition)", compacted=True),
    TopicSpec("detections", "rule and detector hits with evidence, keyed by policy scope"),
    TopicSpec("alerts", "alert state changes, keyed by alert group"),
    TopicSpec("killswitch", "signed kill-switch commands, keyed by scope (compacted: latest per scope)",
              compacted=True, partitions=1),
    TopicSpec("heartbeat", "signed monitor heartbeats for the enforcers' dead-man's switch",
              compacted=True, partitions=1),
)


def topic_configs(spec: TopicSpec, settings: Settings) -> dict[str, str]:
    configs = {"min.insync.replicas": str(min(settings.topic_min_insync, settings.topic_replication))}
    if spec.compacted:
        configs.update({"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1",
                        "segment.ms": str(3600 * 1000)})
    configs.update(spec.configs)
    return configs


async def ensure_topics(bootstrap: str, settings: Settings, *, changelogs: dict[str, int] | None = None,
                        **client_kwargs: object) -> list[str]:
    """Create the missing topics; return the names that were created.

    ``changelogs`` (name -> partitions) are the Faust tables' changelog topics.
    Faust would create them itself with CreateTopics v1, which Kafka 4.0
    removed (KIP-896), so they are created here, compacted, through aiokafka's
    admin client, which negotiates a supported version.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_kwargs)  # type: ignore[arg-type]
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(settings.topic(spec.name), spec.partitions or settings.topic_partitions,
                     settings.topic_replication, topic_configs=topic_configs(spec, settings))
            for spec in TOPICS if settings.topic(spec.name) not in existing
        ]
        compacted = {"cleanup.policy": "compact",
                     "min.insync.replicas": str(min(settings.topic_min_insync, settings.topic_replication))}
        wanted += [NewTopic(name, partitions, settings.topic_replication, topic_configs=compacted)
                   for name, partitions in (changelogs or {}).items() if name not in existing]
        if not wanted:
            return []
        try:
            await admin.create_topics(wanted)
        except TopicAlreadyExistsError:
            pass
        return [t.name for t in wanted]
    finally:
        await admin.close()
