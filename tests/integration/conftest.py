"""Fixtures of the integration tests (the broker fixtures live in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.workerproc import WorkerProcess


@pytest.fixture()
def worker(tmp_path: Path, kafka_bootstrap: str) -> Iterator[WorkerProcess]:
    """A real worker with its own home, topics and group, stopped after the test."""
    w = WorkerProcess(tmp_path / "home", kafka_bootstrap)
    w.start()
    try:
        yield w
    finally:
        w.stop()
