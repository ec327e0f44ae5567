"""The auditor's pages of the worker's HTTP API, run on the worker's ClickHouse thread.

``GET /overseer/query/<name>/?model=...&since=...`` -> ``{"columns", "rows"}``;
``POST /overseer/audit/verify`` ``{"anchor": {...}}`` -> the verify report.
Values are made JSON-safe the same way as ``/overseer/sql``.
"""

from __future__ import annotations

import math
from typing import Any

from streams.audit.queries import QueryError, run_named
from streams.audit.verify import verify


async def named_query(sink: Any, name: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    try:
        columns, rows = await sink.run(lambda c: run_named(c, name, params))
    except QueryError as exc:
        return 400, {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - ClickHouse's message goes back to the caller
        return 400, {"error": str(exc)[:2000]}
    return 200, {"columns": columns, "rows": [[jsonable(v) for v in r] for r in rows]}


async def verify_chain(sink: Any, anchor: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    return 200, await sink.run(lambda c: verify(c, anchor))


def jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    return str(v)
