"""Query results as a Rich table, CSV, JSON or Parquet — the formats auditors hand on."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from streams.audit.access import Table
from streams.audit.web import jsonable

FORMATS = ("table", "csv", "json", "parquet")


def _cell(v: Any) -> str:
    if isinstance(v, (list, dict)):
        return json.dumps(jsonable(v))
    return "" if v is None else str(v)


def to_csv(t: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(t.columns)
    w.writerows([[_cell(v) for v in r] for r in t.rows])
    return buf.getvalue()


def to_json(t: Table) -> str:
    return json.dumps({"columns": t.columns, "rows": [jsonable(r) for r in t.rows]}, indent=1)


def write_parquet(t: Table, path: Path) -> None:
    """Each column typed by pyarrow when it can; nested or mixed values become JSON text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = []
    for i in range(len(t.columns)):
        values = [r[i] for r in t.rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            arrays.append(pa.array([None if v is None else _cell(v) for v in values], type=pa.string()))
    pq.write_table(pa.Table.from_arrays(arrays, names=t.columns), path)


def render_table(t: Table, title: str) -> Any:
    from rich.table import Table as RichTable

    rt = RichTable(title=title, show_lines=False)
    for c in t.columns:
        rt.add_column(c, overflow="fold")
    for r in t.rows:
        rt.add_row(*[_cell(v)[:200] for v in r])
    return rt
