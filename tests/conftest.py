"""Shared fixtures.

``kafka_cluster`` starts a real single-node Apache Kafka (KRaft) through the
project's own launcher once per test session, on free loopback ports in a
temporary home, and stops it at the end. Tests that need a three-node
cluster start their own with ``LocalKafka(...).up(brokers=3)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.kafka.launcher import Cluster, LocalKafka

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("OVERSEER_CACHE_DIR", REPO / ".cache"))


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("kafka-home")
    launcher = LocalKafka(home, CACHE, base_port=None)
    cluster = launcher.up(brokers=1)
    try:
        yield cluster
    finally:
        launcher.down()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_cluster: Cluster) -> str:
    return kafka_cluster.bootstrap


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded ClickHouse (chdb) store of this test process.

    chdb opens exactly one path per process, for the life of the process, and
    one process per path: tests isolate themselves with a database each
    (see ``chdb_database``); subprocess workers get their own path.
    """
    return tmp_path_factory.mktemp("chdb") / "store"


@pytest.fixture()
def chdb_database(chdb_path: Path, request: pytest.FixtureRequest) -> tuple[str, str]:
    """(dsn, database): a fresh, empty database in this process's chdb store."""
    import re
    import uuid

    import clickhouse_connect

    dsn = f"chdb:///{chdb_path}"
    name = re.sub(r"[^a-zA-Z0-9_]", "_", request.node.name)[:40] + "_" + uuid.uuid4().hex[:6]
    clickhouse_connect.get_client(dsn=dsn).command(f"CREATE DATABASE IF NOT EXISTS {name}")
    return dsn, name
