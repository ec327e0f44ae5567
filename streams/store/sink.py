"""The ClickHouse sink: batched, idempotent, and never losing a write.

Delivery guarantee, visible in the interface: ``await sink.write(...)``
returns only after ClickHouse acknowledged the insert. It retries with
exponential backoff *forever* (the caller's consumption is paused meanwhile:
that is the backpressure), counting every retry, because the alternative —
giving up — would lose data or commit offsets for rows that were never
stored. Inserts carry an ``insert_deduplication_token`` derived from the
source offsets, and the tables collapse replays by their sorting key, so a
retry after an ambiguous failure stores nothing twice.

All ClickHouse calls run on one dedicated thread: the embedded engine is
not re-entrant and the event loop must never block on I/O.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)


@dataclass
class SinkStats:
    rows: dict[str, int] = field(default_factory=dict)
    inserts: int = 0
    retries: int = 0
    failing_since: float | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"rows": dict(self.rows), "inserts": self.inserts, "retries": self.retries,
                "failing_for_s": (time.monotonic() - self.failing_since) if self.failing_since else 0.0,
                "last_error": self.last_error}


class ClickHouseSink:
    def __init__(self, client_factory: Callable[[], Client], *, max_backoff_s: float = 30.0) -> None:
        self._factory = client_factory
        self._client: Client | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self.max_backoff_s = max_backoff_s
        self.stats = SinkStats()

    # -- sync, on the ClickHouse thread -----------------------------------------
    def _get(self) -> Client:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def _insert(self, table: str, data: Sequence[Sequence[Any]], columns: Sequence[str], token: str | None,
                column_oriented: bool) -> None:
        settings = {"insert_deduplication_token": token} if token else None
        self._get().insert(table, data, column_names=list(columns), column_oriented=column_oriented,
                           settings=settings)

    def call(self, fn: Callable[[Client], Any]) -> Any:
        """Run ``fn(client)`` on the ClickHouse thread (blocking caller)."""
        return self._executor.submit(lambda: fn(self._get())).result()

    async def run(self, fn: Callable[[Client], Any]) -> Any:
        """Run ``fn(client)`` on the ClickHouse thread without blocking the loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._get()))

    # -- async API --------------------------------------------------------------
    async def write(self, table: str, data: Sequence[Sequence[Any]], columns: Sequence[str], *,
                    token: str | None = None, column_oriented: bool = False) -> None:
        n = len(data[0]) if column_oriented and data else len(data)
        if n == 0:
            return
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                await loop.run_in_executor(self._executor, self._insert, table, data, columns, token,
                                           column_oriented)
                break
            except Exception as exc:  # ClickHouse down, network, server errors: retry, never drop
                attempt += 1
                self.stats.retries += 1
                self.stats.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                if self.stats.failing_since is None:
                    self.stats.failing_since = time.monotonic()
                delay = min(self.max_backoff_s, 0.1 * 2 ** min(attempt, 10)) * (0.5 + random.random() / 2)
                log.warning("ClickHouse insert into %s failed (attempt %d), retrying in %.1fs: %s",
                            table, attempt, delay, self.stats.last_error)
                self._client = None if attempt % 3 == 0 else self._client  # reconnect now and then
                await asyncio.sleep(delay)
        self.stats.failing_since = None
        self.stats.inserts += 1
        self.stats.rows[table] = self.stats.rows.get(table, 0) + n

    def close(self) -> None:
        if self._client is not None:
            try:
                self.call(lambda c: c.close())
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        self._executor.shutdown(wait=True)
