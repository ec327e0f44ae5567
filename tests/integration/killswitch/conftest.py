"""Fixtures for the kill-switch tests on the real broker: fresh topics per test, a signer."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.killswitch.signing import Signer, load_or_create_signing_key
from streams.killswitch.topic import ensure_compacted_topic


async def _create(bootstrap: str, ks: str, hb: str) -> None:
    await ensure_compacted_topic(bootstrap, ks)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(hb, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()


@pytest.fixture()
def topics(kafka_bootstrap: str) -> tuple[str, str]:
    """(kill-switch topic, heartbeat topic), both new and compacted."""
    suffix = uuid.uuid4().hex[:8]
    ks, hb = f"test.killswitch.{suffix}", f"test.heartbeat.{suffix}"
    asyncio.run(_create(kafka_bootstrap, ks, hb))
    return ks, hb


@pytest.fixture()
def signer(tmp_path: Path) -> Signer:
    return load_or_create_signing_key(tmp_path / "keys" / "ks.pem", "key-1")


async def eventually(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Wait for a condition that the broker makes true asynchronously (not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
