"""Where the auditor's commands read from: the store itself, or the worker that holds it.

The embedded engine (chdb) admits one process per store. With no worker
running, the commands open the store directly; when a worker holds it, they
go through its HTTP API (``/overseer/query/<name>``, ``/overseer/sql``,
``/overseer/audit/verify``), which runs the same code inside the worker.
A ClickHouse server DSN is always read directly.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

from clickhouse_connect.driver.client import Client

from streams.audit.queries import run_named
from streams.audit.readonly import check_read_only
from streams.settings import Settings


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


class StoreError(RuntimeError):
    """The store or the worker refused or could not answer; the message says what to do."""


class Store(Protocol):
    where: str

    def named(self, name: str, params: dict[str, Any]) -> Table: ...
    def sql(self, sql: str) -> Table: ...
    def verify(self, anchor: dict[str, Any] | None = None) -> dict[str, Any]: ...


class DirectStore:
    def __init__(self, client: Client, where: str) -> None:
        self.client = client
        self.where = where

    def named(self, name: str, params: dict[str, Any]) -> Table:
        return Table(*run_named(self.client, name, params))

    def sql(self, sql: str) -> Table:
        result = self.client.query(check_read_only(sql), settings={"readonly": 1})
        return Table(list(result.column_names), [list(r) for r in result.result_rows])

    def verify(self, anchor: dict[str, Any] | None = None) -> dict[str, Any]:
        from streams.audit.verify import verify

        return verify(self.client, anchor)


class WorkerStore:
    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.where = f"worker API {self.base}"

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        token = os.environ.get("OVERSEER_API_TOKEN")
        if token:  # workers with a tokens file require it (viewer role is enough)
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except (ValueError, AttributeError):
                pass
            raise StoreError(str(detail)) from exc
        except OSError as exc:
            raise StoreError(f"the store is held by another process and its worker API at {self.base} does not "
                             f"answer ({exc}); start the worker, or stop whatever holds the store") from exc

    def named(self, name: str, params: dict[str, Any]) -> Table:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})
        out = self._call(f"/overseer/query/{urllib.parse.quote(name)}/?{query}")
        return Table(out["columns"], out["rows"])

    def sql(self, sql: str) -> Table:
        out = self._call("/overseer/sql", {"sql": check_read_only(sql)})
        return Table(out["columns"], out["rows"])

    def verify(self, anchor: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict(self._call("/overseer/audit/verify", {"anchor": anchor or {}}))


def open_store(settings: Settings, worker: str | None = None) -> Store:
    """The store itself when it can be opened, else the worker holding it (or ``worker`` when given)."""
    if worker:
        return WorkerStore(worker)
    from streams.store.client import connect_settings

    try:
        client = connect_settings(settings)
        client.command("SELECT 1")
    except Exception as exc:
        if settings.clickhouse_dsn.startswith("chdb:"):
            return WorkerStore(f"http://{settings.worker_web_host}:{settings.worker_web_port}")
        raise StoreError(f"cannot reach ClickHouse at {settings.clickhouse_dsn}: {exc}") from exc
    return DirectStore(client, settings.clickhouse_dsn)
