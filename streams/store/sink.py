"""The ClickHouse sink: batched, idempotent, and never losing a write.

Delivery guarantee, visible in the interface: ``await sink.write(...)``
returns only after ClickHouse acknowledged the insert. It retries with
exponential backoff *forever* (the caller's consumption is paused meanwhile:
that is the backpressure), counting every retry, because the alternative —
giving up — would lose data or commit offsets for rows that were never
stored. Inserts carry an ``insert_deduplication_token`` derived from the
source offsets, and the tables collapse replays by their sorting key, so a
retry after an ambiguous failure stores nothing twice.

Exactly once, physically: after a crash the replayed batch may be cut at
other offsets than the one already stored, so its dedup token differs and
the rows would sit twice until a merge. :meth:`ClickHouseSink.unstored_events`
is the replay fence: the first time a partition is seen (start-up,
rebalance, any jump in offsets) it asks ClickHouse for the highest source
offset stored for it, and drops the events of a replayed offset range that
are already there. In steady state it costs nothing.

All ClickHouse calls run on one dedicated thread: the embedded engine is
not re-entrant and the event loop must never block on I/O.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DataError

from streams.faults import Outage

log = logging.getLogger(__name__)
T = TypeVar("T")
Spans = dict[tuple[str, int], tuple[int, int]]


# raised while clickhouse-connect encodes a block (a number out of the column's range, JSON too deep to
# serialise): retrying cannot help, the rows themselves are the problem
DATA_ERRORS = (DataError, TypeError, ValueError, OverflowError, RecursionError)


# ClickHouse's own verdicts on the rows of a text-format insert (CANNOT_PARSE_*, INCORRECT_DATA, TYPE_MISMATCH,
# VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE, …): the same rows fail the same way on every retry
INPUT_ERROR_CODES = frozenset({6, 25, 26, 27, 32, 38, 41, 53, 69, 70, 72, 117, 130, 131, 321, 467})
_CODE = re.compile(r"Code: (\d+)\.")


def is_input_error(exc: BaseException) -> bool:
    """Whether ClickHouse rejected the data itself (not an outage).

    >>> is_input_error(RuntimeError("Code: 27. DB::Exception: Cannot parse input: expected '{'"))
    True
    >>> is_input_error(RuntimeError("Code: 210. DB::NetException: Connection refused"))
    False
    """
    match = _CODE.search(str(exc)[:2000])
    return match is not None and int(match.group(1)) in INPUT_ERROR_CODES


class UnstorableData(Exception):
    """The rows cannot be stored as they are (see ``DATA_ERRORS``); the caller must split them."""


@dataclass
class SinkStats:
    rows: dict[str, int] = field(default_factory=dict)
    inserts: int = 0
    retries: int = 0
    replayed_skipped: int = 0
    failing_since: float | None = None
    last_error: str | None = None
    busy_s: float = 0.0  # time the ClickHouse thread spent working: near the wall time = the store is the bottleneck

    @property
    def failing_for_s(self) -> float:
        return (time.monotonic() - self.failing_since) if self.failing_since is not None else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"rows": dict(self.rows), "inserts": self.inserts, "retries": self.retries,
                "replayed_skipped": self.replayed_skipped, "failing_for_s": self.failing_for_s,
                "last_error": self.last_error, "busy_s": round(self.busy_s, 3)}


class ClickHouseSink:
    def __init__(self, client_factory: Callable[[], Client], *, max_backoff_s: float = 30.0,
                 outage: Outage | None = None, on_retry: Callable[[str], None] | None = None) -> None:
        self._factory = client_factory
        self._client: Client | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self.max_backoff_s = max_backoff_s
        self.outage = outage or Outage(None)
        self.on_retry = on_retry
        self.stats = SinkStats()
        self._next_offset: dict[tuple[str, int], int] = {}
        self._stored_high: dict[tuple[str, int], int] = {}

    # -- sync, on the ClickHouse thread -----------------------------------------
    def _get(self) -> Client:
        self.outage.check()
        if self._client is None:
            self._client = self._factory()
        return self._client

    def _insert(self, table: str, data: Sequence[Sequence[Any]], columns: Sequence[str], token: str | None,
                column_oriented: bool) -> None:
        settings = {"insert_deduplication_token": token} if token else None
        self._get().insert(table, data, column_names=list(columns), column_oriented=column_oriented,
                           settings=settings)

    def _insert_json(self, table: str, document: bytes, token: str | None, settings: dict[str, Any]) -> None:
        merged = {**settings, "insert_deduplication_token": token} if token else settings
        try:
            self._get().raw_insert(table, None, document, settings=merged, fmt="JSONEachRow")
        except Exception as exc:
            if is_input_error(exc):
                raise UnstorableData(f"ClickHouse rejected the rows: {str(exc)[:400]}") from exc
            raise

    def _timed(self, fn: Callable[[], T]) -> Callable[[], T]:
        def timed() -> T:
            t = time.perf_counter()
            try:
                return fn()
            finally:
                self.stats.busy_s += time.perf_counter() - t
        return timed

    def call(self, fn: Callable[[Client], Any]) -> Any:
        """Run ``fn(client)`` on the ClickHouse thread (blocking caller)."""
        return self._executor.submit(self._timed(lambda: fn(self._get()))).result()

    async def run(self, fn: Callable[[Client], Any]) -> Any:
        """Run ``fn(client)`` on the ClickHouse thread without blocking the loop (once, no retry)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._timed(lambda: fn(self._get())))

    # -- async API --------------------------------------------------------------
    async def _retrying(self, what: str, fn: Callable[[], T], *, data_errors_raise: bool = False) -> T:
        """Run ``fn`` on the ClickHouse thread until it succeeds, backing off exponentially (never gives up).

        With ``data_errors_raise``, an error in the data itself raises :class:`UnstorableData` at once."""
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                result = await loop.run_in_executor(self._executor, self._timed(fn))
                break
            except Exception as exc:  # ClickHouse down, network, server errors: retry, never drop
                if data_errors_raise and isinstance(exc, UnstorableData):
                    raise
                if data_errors_raise and isinstance(exc, DATA_ERRORS):
                    raise UnstorableData(f"{type(exc).__name__}: {exc}"[:500]) from exc
                attempt += 1
                self.stats.retries += 1
                self.stats.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                if self.stats.failing_since is None:
                    self.stats.failing_since = time.monotonic()
                if self.on_retry is not None:
                    self.on_retry(what)
                delay = min(self.max_backoff_s, 0.1 * 2 ** min(attempt, 10)) * (0.5 + random.random() / 2)
                log.warning("ClickHouse %s failed (attempt %d), retrying in %.1fs: %s",
                            what, attempt, delay, self.stats.last_error)
                if attempt % 3 == 0:
                    self._client = None  # reconnect now and then
                await asyncio.sleep(delay)
        self.stats.failing_since = None
        return result

    async def write(self, table: str, data: Sequence[Sequence[Any]], columns: Sequence[str], *,
                    token: str | None = None, column_oriented: bool = False, data_errors_raise: bool = False) -> None:
        """Insert and wait for ClickHouse's acknowledgement, retrying failures forever.

        ``data_errors_raise=True``: rows ClickHouse can never take raise :class:`UnstorableData` instead of
        being retried (which would stall the pipeline on one poison event); the caller splits the batch."""
        n = len(data[0]) if column_oriented and data else len(data)
        if n == 0:
            return
        await self._retrying(f"insert into {table}",
                             lambda: self._insert(table, data, columns, token, column_oriented),
                             data_errors_raise=data_errors_raise)
        self.stats.inserts += 1
        self.stats.rows[table] = self.stats.rows.get(table, 0) + n

    async def write_json(self, table: str, document: bytes, rows: int, *, settings: dict[str, Any],
                         token: str | None = None, data_errors_raise: bool = False) -> None:
        """Insert a JSONEachRow ``document`` of ``rows`` rows, with :meth:`write`'s guarantees.

        ClickHouse parses it in C++ (on the sink thread, mostly without the GIL); rows it rejects
        (``is_input_error``) raise :class:`UnstorableData` with ``data_errors_raise``, else are retried."""
        if rows == 0:
            return
        await self._retrying(f"insert into {table}", lambda: self._insert_json(table, document, token, settings),
                             data_errors_raise=data_errors_raise)
        self.stats.inserts += 1
        self.stats.rows[table] = self.stats.rows.get(table, 0) + rows

    async def unstored_events(self, events: list[dict[str, Any]], spans: Spans,
                              table: str = "events") -> tuple[list[dict[str, Any]], bool]:
        """The replay fence: ``(events not yet in ClickHouse, whether any were dropped)``.

        ``spans`` are the batch's offset ranges per (topic, partition); events carry their
        source in ``_src``. Only offsets at or below the highest one already stored for their
        partition are looked up, so a batch that continues where the last one ended costs nothing.
        """
        suspects: Spans = {}
        for key, (lo, hi) in spans.items():
            if self._next_offset.get(key) != lo:
                self._stored_high[key] = await self._retrying(
                    f"replay check on {table}", lambda key=key: self._high_offset(table, key))  # type: ignore[misc]
            self._next_offset[key] = hi + 1
            high = self._stored_high.get(key, -1)
            if lo <= high:
                suspects[key] = (lo, min(hi, high))
        if not suspects or not events:
            return events, False
        stored = await self._retrying(f"replay check on {table}", lambda: self._stored_ids(table, suspects))
        if not stored:
            return events, False
        kept = [e for e in events if e["event_id"] not in stored]
        skipped = len(events) - len(kept)
        self.stats.replayed_skipped += skipped
        if skipped:
            log.info("replay fence: %d of %d events of a replayed batch were already stored", skipped, len(events))
        return kept, skipped > 0

    def _high_offset(self, table: str, key: tuple[str, int]) -> int:
        rows = self._get().query(
            f"SELECT count(), max(src_offset) FROM {table} WHERE src_topic = %(t)s AND src_partition = %(p)s",
            parameters={"t": key[0], "p": key[1]}).result_rows
        return int(rows[0][1]) if rows and rows[0][0] else -1

    def _stored_ids(self, table: str, spans: Spans) -> set[str]:
        ids: set[str] = set()
        for (topic, partition), (lo, hi) in spans.items():
            result = self._get().query(
                f"SELECT DISTINCT event_id FROM {table} WHERE src_topic = %(t)s AND src_partition = %(p)s "
                "AND src_offset BETWEEN %(lo)s AND %(hi)s",
                parameters={"t": topic, "p": partition, "lo": lo, "hi": hi})
            ids.update(r[0] for r in result.result_rows)
        return ids

    def close(self) -> None:
        if self._client is not None:
            try:
                self.call(lambda c: c.close())
            except Exception:  # noqa: BLE001, S110 - closing is best effort
                pass
        self._executor.shutdown(wait=True)


def refine_token(token: str, kept: list[dict[str, Any]]) -> str:
    """A dedup token for what is left of a batch after the replay fence.

    The original token may already be registered for a *partial* earlier insert (a crash between the
    parts of a multi-partition insert), so the remainder must not reuse it."""
    digest = hashlib.sha256("\n".join(sorted(e["event_id"] for e in kept)).encode()).hexdigest()[:16]
    return f"{token}#{digest}"
