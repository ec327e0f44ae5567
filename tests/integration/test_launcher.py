"""The local launcher starts real Apache Kafka (KRaft) nodes: one, or a three-node quorum."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.kafka.launcher import LocalKafka
from tests.conftest import CACHE


async def _roundtrip(bootstrap: str, topic: str, n: int, rf: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 3, rf, topic_configs={"min.insync.replicas": str(min(2, rf))})])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    for i in range(n):
        await producer.send_and_wait(topic, key=str(i).encode(), value=b"v")
    await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=f"g-{topic}")
    await consumer.start()
    seen = 0
    try:
        while seen < n:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            seen += sum(len(v) for v in batch.values())
    finally:
        await consumer.stop()
    return seen


def test_three_node_cluster_survives_losing_a_node(tmp_path: Path) -> None:
    launcher = LocalKafka(tmp_path, CACHE, base_port=None)
    cluster = launcher.up(brokers=3)
    try:
        status = launcher.status()
        assert status["running"] and len(status["nodes"]) == 3
        assert all(n["alive"] and n["listening"] for n in status["nodes"])
        assert asyncio.run(_roundtrip(cluster.bootstrap, "before", 50, rf=3)) == 50
        launcher.stop_node(2)
        assert [n["alive"] for n in launcher.status()["nodes"]] == [True, False, True]
        # acks=all with min.insync.replicas=2 still succeeds with one node down
        survivors = ",".join(n.bootstrap for n in cluster.nodes if n.node_id != 2)
        assert asyncio.run(_roundtrip(survivors, "after", 50, rf=3)) == 50
        launcher.start_node(2)
        assert all(n["alive"] for n in launcher.status()["nodes"])
    finally:
        launcher.down()
    assert launcher.status() == {"running": False, "nodes": []}


async def _plain_roundtrip(bootstrap: str, topic: str, n: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)  # Tansu rejects idempotent producers
    await producer.start()
    for i in range(n):
        await producer.send_and_wait(topic, value=str(i).encode())
    await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    values: list[bytes] = []
    try:
        while len(values) < n:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            values += [m.value for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
    return len(values)


def test_without_java_the_launcher_falls_back_to_tansu_and_warns(tmp_path: Path, monkeypatch,
                                                                  caplog) -> None:
    import shutil

    import streams.kafka.launcher as launcher_module

    real_which = shutil.which
    monkeypatch.setattr(launcher_module.shutil, "which", lambda name: None if name == "java" else real_which(name))
    launcher = LocalKafka(tmp_path, CACHE, base_port=None)
    with caplog.at_level("WARNING"):
        cluster = launcher.up(brokers=1)
    try:
        assert cluster.kind == "tansu"
        assert "MEMORY ONLY" in caplog.text and "No Java runtime" in caplog.text
        assert asyncio.run(_plain_roundtrip(cluster.bootstrap, "fallback", 20)) == 20
    finally:
        launcher.down()
    assert not launcher.status()["running"]
