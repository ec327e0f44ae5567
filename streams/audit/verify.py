"""Recompute every audit table's hash chain and name each row that does not fit.

A finding names the table, the ``chain_seq`` and the row id:

- ``changed``  — the row's content no longer hashes to its ``row_hash``
  (edited in place, e.g. ``ALTER TABLE ... UPDATE``), or its link to the
  previous row was rewritten;
- ``inserted`` — a row outside the chain (``chain_seq = 0``) or a second,
  different row claiming a position already taken;
- ``deleted``  — a position with no row; the id comes from the next row's
  ``prev_id``.

Rows are read without ``FINAL`` so a forged row can not hide behind the
ReplacingMergeTree collapsing it; byte-identical copies (a replayed insert)
are not findings. A chain is tamper-evident, not tamper-proof: someone who
rewrites every later row too, or cuts the tail, is caught only by comparing
the head with one recorded elsewhere (``--anchor``, docs/audit.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

from streams.audit.canonical import canonical, row_hash
from streams.audit.tables import SPECS, ChainSpec

PAGE = 50_000


@dataclass
class Finding:
    table: str
    kind: str
    chain_seq: int
    row_id: str
    detail: str


@dataclass
class TableResult:
    table: str
    rows: int = 0
    head_seq: int = 0
    head_hash: str = ""
    findings: list[Finding] = field(default_factory=list)
    anchored_hash: str | None = None  # the genuine row_hash at the anchor's position, when one was asked for


def _rows(client: Client, spec: ChainSpec) -> Iterator[tuple[Any, ...]]:
    """Every physical row (no FINAL) in chain order, a page of positions at a time: memory stays flat."""
    cols = ", ".join([spec.id_column, *spec.columns, "chain_seq", "prev_id", "prev_hash", "row_hash"])
    top = int(str(client.command(f"SELECT max(chain_seq) FROM {spec.table}") or 0))
    for lo in range(1, top + 1, PAGE):
        yield from client.query(f"SELECT {cols} FROM {spec.table} WHERE chain_seq >= {{lo:UInt64}} "
                                f"AND chain_seq < {{hi:UInt64}} ORDER BY chain_seq",
                                parameters={"lo": lo, "hi": lo + PAGE}).result_rows


def _positions(rows: Iterator[tuple[Any, ...]], n: int, res: TableResult) -> Iterator[tuple[int, list[tuple[Any, ...]]]]:
    """(chain_seq, the distinct rows claiming it), in order; byte-identical copies count once."""
    seq, bucket = 0, []
    for row in rows:
        res.rows += 1
        at = int(row[n + 1])
        if at != seq and bucket:
            yield seq, bucket
            bucket = []
        seq = at
        if all(canonical(list(row)) != canonical(list(other)) for other in bucket):
            bucket.append(tuple(row))
    if bucket:
        yield seq, bucket


def verify_table(client: Client, spec: ChainSpec, anchor_seq: int | None = None) -> TableResult:
    res = TableResult(spec.table)
    n = len(spec.columns)
    for row in client.query(f"SELECT {spec.id_column} FROM {spec.table} WHERE chain_seq = 0").result_rows:
        res.rows += 1
        res.findings.append(Finding(spec.table, "inserted", 0, str(row[0]), "row written outside the chain"))
    prev_hash, expected = "", 1
    for seq, candidates in _positions(_rows(client, spec), n, res):
        for missing in range(expected, seq):  # the row before this one names the last missing id
            row_id = str(candidates[0][n + 2]) if missing == seq - 1 else "?"
            res.findings.append(Finding(spec.table, "deleted", missing, row_id, "no row at this position"))
            prev_hash = ""
        good = [r for r in candidates if _valid(spec, seq, r, prev_hash if prev_hash else None)]
        genuine = good[0] if good else candidates[0]
        for r in candidates:
            if r is not genuine:
                res.findings.append(Finding(spec.table, "inserted", seq, str(r[0]),
                                            "a second row claims this position"))
        if not good:
            detail = ("content does not match its row_hash" if not _valid(spec, seq, genuine, None)
                      else "link to the previous row was rewritten")
            res.findings.append(Finding(spec.table, "changed", seq, str(genuine[0]), detail))
        prev_hash = str(genuine[n + 4])
        if seq == anchor_seq:
            res.anchored_hash = prev_hash
        expected = seq + 1
    res.head_seq, res.head_hash = expected - 1, prev_hash
    return res


def _valid(spec: ChainSpec, seq: int, row: tuple[Any, ...], expect_prev: str | None) -> bool:
    """The row hashes to its own row_hash, and (when known) links to the expected previous hash."""
    n = len(spec.columns)
    values, (prev_id, prev_hash, stored) = row[1:n + 1], row[n + 2:n + 5]
    if expect_prev is not None and prev_hash != expect_prev:
        return False
    return row_hash(str(prev_hash), [spec.table, seq, row[0], prev_id], values) == stored


def verify(client: Client, anchor: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole report; ``anchor`` maps table -> {"seq", "row_hash"} recorded earlier."""
    anchor = anchor or {}
    results = [verify_table(client, spec, int(anchor[name]["seq"]) if name in anchor else None)
               for name, spec in SPECS.items()]
    for r in results:
        a = anchor.get(r.table)
        if a and int(a["seq"]) > r.head_seq:
            r.findings.append(Finding(r.table, "deleted", int(a["seq"]), "?",
                                      f"the chain ends at {r.head_seq}, the anchor recorded {a['seq']}"))
        elif a and int(a["seq"]) > 0 and r.anchored_hash != a["row_hash"]:
            r.findings.append(Finding(r.table, "changed", int(a["seq"]), "?",
                                      "the chain was rewritten up to the anchored position"))
    return {"ok": not any(r.findings for r in results),
            "tables": [{"table": r.table, "rows": r.rows, "head_seq": r.head_seq, "head_hash": r.head_hash,
                        "findings": [asdict(f) for f in r.findings]} for r in results]}
