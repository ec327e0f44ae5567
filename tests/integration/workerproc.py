"""A real `overseer worker` subprocess for integration and fault tests.

Each test gets its own home (embedded ClickHouse, keys), topic prefix and
consumer group, so tests sharing one broker never see each other's data.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streams.kafka.launcher import free_port


class WorkerProcess:
    def __init__(self, home: Path, bootstrap: str, *, prefix: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.home = home
        self.bootstrap = bootstrap
        self.prefix = prefix or f"t{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home / "worker.log"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "OVERSEER_HOME": str(self.home), "OVERSEER_KAFKA_BOOTSTRAP": self.bootstrap,
                "OVERSEER_TOPIC_PREFIX": self.prefix, "OVERSEER_APP_ID": f"{self.prefix}-app",
                "OVERSEER_WORKER_WEB_PORT": str(self.port), "OVERSEER_TOPIC_PARTITIONS": "2",
                **self.extra_env}

    def topic(self, name: str) -> str:
        return f"{self.prefix}.{name}.v1"

    def start(self, timeout: float = 120.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.get("/overseer/stats")
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return json.loads(r.read())

    def sql(self, query: str) -> list[list[Any]]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/overseer/sql",
                                     data=json.dumps({"sql": query}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["rows"]

    def wait_for(self, query: str, predicate: Any, timeout: float = 60.0) -> list[list[Any]]:
        deadline = time.monotonic() + timeout
        rows: list[list[Any]] = []
        while time.monotonic() < deadline:
            rows = self.sql(query)
            if predicate(rows):
                return rows
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting on {query!r}; last rows {rows}\n{self.log_tail()}")

    def wait_counter(self, name: str, at_least: int, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until ``/overseer/stats`` counter ``name`` reaches ``at_least``; returns the counters."""
        deadline = time.monotonic() + timeout
        while (counters := self.get("/overseer/stats")["counters"]).get(name, 0) < at_least:
            assert time.monotonic() < deadline, f"counter {name} stayed below {at_least}\n{self.log_tail()}"
            time.sleep(0.3)
        return counters

    def send(self, events: list[dict[str, Any]]) -> None:
        """Each event as its own message on the events topic, keyed by agent run, acks=all."""
        async def main() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all")
            await producer.start()
            try:
                for e in events:
                    await producer.send_and_wait(self.topic("events"), key=e["agent_run_id"].encode(),
                                                 value=orjson.dumps(e))
            finally:
                await producer.stop()

        asyncio.run(main())

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
