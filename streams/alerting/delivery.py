"""HTTP delivery with retries and exponential backoff; every attempt is reported.

A delivery is one POST of one body to one receiver. It is retried on
connection errors, timeouts, 429 and 5xx, up to ``attempts`` times with
``backoff * 2**n`` (capped) between tries; 4xx other than 429 is final (the
body will not get better). Each attempt is passed to ``record`` (the worker
writes them to ``alert_deliveries``), so a failure is never silent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from streams.alerting.routing import Delivery, Receiver


@dataclass(frozen=True)
class Attempt:
    delivery_id: str
    attempt: int
    ts: datetime
    receiver: str
    kind: str
    url: str
    group_key: str
    alert_ids: list[str]
    status: str  # ok | retry | failed
    http_status: int
    error: str
    payload: str

    def row(self) -> list[Any]:
        return [self.delivery_id, self.attempt, self.ts, self.receiver, self.kind, self.url, self.group_key,
                self.alert_ids, self.status, self.http_status, self.error, self.payload]


ATTEMPT_COLUMNS = ("delivery_id", "attempt", "ts", "receiver", "kind", "url", "group_key", "alert_ids", "status",
                   "http_status", "error", "payload")
Recorder = Callable[[Attempt], Awaitable[None]]


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


async def deliver(session: aiohttp.ClientSession, receiver: Receiver, body: dict[str, Any], policy: Delivery, *,
                  delivery_id: str, group_key: str, alert_ids: list[str], record: Recorder) -> bool:
    """POST ``body``; True once a 2xx came back, False after the last failed attempt."""
    data = orjson.dumps(body)
    headers = {"Content-Type": "application/json", **receiver.headers}
    for n in range(1, policy.attempts + 1):
        status, error = 0, ""
        try:
            async with session.post(receiver.url, data=data, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=policy.timeout_s)) as resp:
                status = resp.status
                if status >= 300:
                    error = (await resp.text())[:500]
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        ok = 200 <= status < 300
        final = ok or n == policy.attempts or (status and not _retryable(status))
        outcome = "ok" if ok else ("failed" if final else "retry")
        await record(Attempt(delivery_id, n, datetime.now(UTC), receiver.name, receiver.kind, receiver.url,
                             group_key, alert_ids, outcome, status, error, data.decode()[:20000]))
        if final:
            return ok
        await asyncio.sleep(min(policy.max_backoff_s, policy.backoff_s * 2 ** (n - 1)))
    return False
