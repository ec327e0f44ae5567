"""The auditor's side of Overseer: a tamper-evident trail, named queries, reports and backtests.

- `chain`     — the worker links detections, kill-switch commands and operator actions in a hash chain;
- `verify`    — recomputes the chains and names changed, inserted and deleted rows;
- `queries`   — named auditor queries, run directly or through a worker's HTTP API (`access`);
- `report`    — a self-contained HTML report per model and period;
- `backtest`  — replays stored events through candidate rules on the live code path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from streams.audit.chain import AuditChain

__all__ = ["prepare"]


def prepare(client: Client, chain: AuditChain, retention_days: int) -> None:
    """At worker start-up, on the ClickHouse thread: read the chain heads, apply the content retention."""
    from streams.audit.retention import apply_retention

    chain.load(client)
    apply_retention(client, retention_days)
