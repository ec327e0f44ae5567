"""The writer's side of the hash chain: link rows, then write them, one table at a time.

The worker is the single writer of its store, so the chain is a plain
sequence per table. Its head (last ``chain_seq``, id and ``row_hash``) is
read back from ClickHouse before the first write, so a restarted worker
continues the chain instead of forking it.

At-least-once delivery replays batches; a replayed detection or command has
the same deterministic id as the row already chained, so rows whose id is
already in the chain are skipped (checked in ClickHouse, not in memory,
because the replay usually follows a restart). The head only moves after the
sink acknowledged the insert.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

from streams.audit.canonical import row_hash
from streams.audit.tables import CHAIN_COLUMNS, SPECS, ChainSpec
from streams.store.sink import ClickHouseSink


@dataclass
class Head:
    seq: int = 0
    row_id: str = ""
    row_hash: str = ""


def read_head(client: Client, spec: ChainSpec) -> Head:
    rows = client.query(f"SELECT chain_seq, {spec.id_column}, row_hash FROM {spec.table} "
                        "WHERE chain_seq > 0 ORDER BY chain_seq DESC LIMIT 1").result_rows
    return Head(int(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else Head()


def chained_ids(client: Client, spec: ChainSpec, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = client.query(f"SELECT DISTINCT {spec.id_column} FROM {spec.table} "
                        f"WHERE chain_seq > 0 AND {spec.id_column} IN {{ids:Array(String)}}",
                        parameters={"ids": ids}).result_rows
    return {str(r[0]) for r in rows}


def link(spec: ChainSpec, head: Head, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> tuple[list[list[Any]], Head]:
    """Rows with ``CHAIN_COLUMNS`` appended, and the head after them (pure: nothing is committed)."""
    try:
        index = [list(columns).index(c) for c in spec.columns]
    except ValueError as exc:
        raise ValueError(f"{spec.table}: every chained column must be written ({spec.columns})") from exc
    id_at = list(columns).index(spec.id_column)
    out: list[list[Any]] = []
    for row in rows:
        seq = head.seq + 1
        values = [row[i] for i in index]
        digest = row_hash(head.row_hash, [spec.table, seq, row[id_at], head.row_id], values)
        out.append([*row, seq, head.row_id, head.row_hash, digest])
        head = Head(seq, str(row[id_at]), digest)
    return out, head


class AuditChain:
    """Chains and writes the audit tables' rows; one instance per worker (per store)."""

    def __init__(self) -> None:
        self.heads: dict[str, Head] | None = None
        self.lock = asyncio.Lock()
        self.skipped_replays = 0

    def load(self, client: Client) -> None:
        self.heads = {name: read_head(client, spec) for name, spec in SPECS.items()}

    async def write(self, sink: ClickHouseSink, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str],
                    *, token: str | None = None) -> int:
        """Link and insert ``rows`` (awaits the ack); returns how many were new to the chain."""
        spec = SPECS[table]
        id_at = list(columns).index(spec.id_column)
        unique = list({str(r[id_at]): r for r in rows}.values())
        if not unique:
            return 0
        async with self.lock:
            if self.heads is None:
                await sink.run(self.load)
            assert self.heads is not None
            known = await sink.run(lambda c: chained_ids(c, spec, [str(r[id_at]) for r in unique]))
            fresh = [r for r in unique if str(r[id_at]) not in known]
            self.skipped_replays += len(unique) - len(fresh)
            if not fresh:
                return 0
            linked, head = link(spec, self.heads[table], fresh, columns)
            # the token names exactly these rows: a replay that chains a different subset is not swallowed
            ids = hashlib.sha256(",".join(str(r[id_at]) for r in fresh).encode()).hexdigest()[:16]
            await sink.write(table, linked, [*columns, *CHAIN_COLUMNS],
                             token=f"{token}|{ids}" if token else None)
            self.heads[table] = head
            return len(fresh)

    def describe(self) -> dict[str, Any]:
        heads = self.heads or {}
        return {"heads": {t: {"seq": h.seq, "row_hash": h.row_hash} for t, h in heads.items()},
                "skipped_replays": self.skipped_replays}
