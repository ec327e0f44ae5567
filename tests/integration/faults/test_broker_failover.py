"""Broker failover: a three-broker KRaft cluster (RF 3, min.insync.replicas 2), one broker stopped
mid-stream and restarted; the pipeline continues throughout and nothing is lost or doubled.

Producers (the test's and the worker's) are idempotent with acks=all. While node 1 is down the
worker keeps storing what is sent; after it returns, every event sent — before, during and after
the outage — is in ClickHouse exactly once, the breach sent during the outage is detected, and its
pause command is on the kill-switch topic exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from streams.kafka.launcher import LocalKafka
from tests.conftest import CACHE
from tests.integration.faults.common import (
    assert_breach_detected_and_paused,
    assert_events_exactly_once,
    assert_one_command_per_key,
    breach,
    killswitch_commands,
    now_minus,
    send,
    traffic,
)
from tests.integration.workerproc import WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    launcher = LocalKafka(tmp_path_factory.mktemp("kafka3"), CACHE, base_port=None)
    launcher.up(brokers=3)
    try:
        yield launcher
    finally:
        launcher.down(timeout=8)


async def replication(bootstrap: str, topic: str) -> tuple[int, str]:
    """(replicas per partition, min.insync.replicas) of a topic, as the brokers report them."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (desc,) = await admin.describe_topics([topic])
        replicas = {len(p["replicas"]) for p in desc["partitions"]}
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        entries = {c[0]: c[1] for c in configs[0].resources[0][4]}
    finally:
        await admin.close()
    assert len(replicas) == 1
    return replicas.pop(), entries["min.insync.replicas"]


def test_one_broker_down_mid_stream_pipeline_continues_nothing_lost(cluster3: LocalKafka, tmp_path: Path) -> None:
    cluster = cluster3.load()
    assert cluster is not None and len(cluster.nodes) == 3
    bootstrap = cluster.bootstrap
    worker = WorkerProcess(tmp_path / "home", bootstrap, env={
        "OVERSEER_TOPIC_REPLICATION": "3", "OVERSEER_TOPIC_MIN_INSYNC": "2", "OVERSEER_KAFKA_SESSION_TIMEOUT_S": "10"})
    worker.start()
    try:
        t0 = now_minus(30)
        before, during, after = traffic(150, t0, tag="a"), traffic(150, t0, tag="b"), traffic(150, t0, tag="c")
        exfil = breach(t0 + timedelta(minutes=5))
        assert asyncio.run(replication(bootstrap, worker.topic("events"))) == (3, "2")
        asyncio.run(send(bootstrap, worker.topic("events"), before))
        assert_events_exactly_once(worker, before)

        victim = cluster.nodes[0].node_id
        cluster3.stop_node(victim)
        live = ",".join(n.bootstrap for n in cluster.nodes if n.node_id != victim)
        asyncio.run(send(live, worker.topic("events"), during, keep_together=exfil))
        assert_events_exactly_once(worker, before + during + exfil)  # the pipeline continued on two brokers
        assert_breach_detected_and_paused(worker)

        cluster3.start_node(victim)
        asyncio.run(send(bootstrap, worker.topic("events"), after))
        sent = before + during + exfil + after
        assert_events_exactly_once(worker, sent)
        per_key = assert_one_command_per_key(killswitch_commands(worker))
        stats = worker.get("/overseer/stats")
        assert stats["stored"]["events"] == len(sent)
        print(f"broker failover: node {victim} stopped then restarted; sent {len(sent)}, stored "
              f"{stats['stored']['events']}, commands {dict(per_key)}, sink retries {stats['sink']['retries']}")
    finally:
        worker.stop()
