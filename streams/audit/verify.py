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
    hashes: dict[int, str] = field(default_factory=dict, repr=False)


def _rows(client: Client, spec: ChainSpec) -> Any:
    """Every physical row (no FINAL), page by page of chain positions; rows outside the chain first."""
    cols = ", ".join([spec.id_column, *spec.columns, "chain_seq", "prev_id", "prev_hash", "row_hash"])
    yield from client.query(f"SELECT {cols} FROM {spec.table} WHERE chain_seq = 0").result_rows
    top = int(str(client.command(f"SELECT max(chain_seq) FROM {spec.table}") or 0))
    for lo in range(1, top + 1, PAGE):
        yield from client.query(f"SELECT {cols} FROM {spec.table} WHERE chain_seq >= {{lo:UInt64}} "
                                f"AND chain_seq < {{hi:UInt64}} ORDER BY chain_seq",
                                parameters={"lo": lo, "hi": lo + PAGE}).result_rows


def verify_table(client: Client, spec: ChainSpec) -> TableResult:
    res = TableResult(spec.table)
    n = len(spec.columns)
    by_seq: dict[int, list[tuple[Any, ...]]] = {}
    for row in _rows(client, spec):
        res.rows += 1
        seq = int(row[n + 1])
        if seq == 0:
            res.findings.append(Finding(spec.table, "inserted", 0, str(row[0]), "row written outside the chain"))
            continue
        bucket = by_seq.setdefault(seq, [])
        if all(canonical(list(row)) != canonical(list(other)) for other in bucket):
            bucket.append(tuple(row))
    prev_hash = ""
    for seq in range(1, max(by_seq, default=0) + 1):
        candidates = by_seq.get(seq)
        if not candidates:
            nxt = by_seq.get(seq + 1)
            missing = str(nxt[0][n + 2]) if nxt else "?"
            res.findings.append(Finding(spec.table, "deleted", seq, missing, "no row at this position"))
            prev_hash = ""
            continue
        good = [r for r in candidates if _valid(spec, seq, r, prev_hash if prev_hash else None)]
        genuine = good[0] if good else candidates[0]
        for r in candidates:
            if r is genuine:
                continue
            res.findings.append(Finding(spec.table, "inserted", seq, str(r[0]),
                                        "a second row claims this position"))
        if not good:
            detail = ("content does not match its row_hash" if not _valid(spec, seq, genuine, None)
                      else "link to the previous row was rewritten")
            res.findings.append(Finding(spec.table, "changed", seq, str(genuine[0]), detail))
        prev_hash = str(genuine[n + 4])
        res.hashes[seq] = prev_hash
    res.head_seq, res.head_hash = (max(by_seq), prev_hash) if by_seq else (0, "")
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
    results = [verify_table(client, spec) for spec in SPECS.values()]
    for r in results:
        a = (anchor or {}).get(r.table)
        if a and int(a["seq"]) > r.head_seq:
            r.findings.append(Finding(r.table, "deleted", int(a["seq"]), "?",
                                      f"the chain ends at {r.head_seq}, the anchor recorded {a['seq']}"))
        elif a and r.hashes.get(int(a["seq"])) != a["row_hash"]:
            r.findings.append(Finding(r.table, "changed", int(a["seq"]), "?",
                                      "the chain was rewritten up to the anchored position"))
    return {"ok": not any(r.findings for r in results),
            "tables": [{"table": r.table, "rows": r.rows, "head_seq": r.head_seq, "head_hash": r.head_hash,
                        "findings": [asdict(f) for f in r.findings]} for r in results]}
