"""Open a clickhouse-connect client for a DSN, the same way for chdb and HTTP.

The embedded engine (chdb) opens exactly one path per process and one process
per path, so a worker owns its store; other processes go through the
worker's HTTP API.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from streams.settings import Settings


def connect(dsn: str, *, database: str | None = None, username: str | None = None,
            password: str | None = None) -> Client:
    kwargs: dict[str, Any] = {"dsn": dsn}
    if database:
        kwargs["database"] = database
    parsed = urlparse(dsn)
    if parsed.scheme in ("http", "https"):
        if username:
            kwargs["username"] = username
        if password:
            kwargs["password"] = password
        kwargs.setdefault("compress", "lz4")
    elif parsed.scheme == "chdb":
        from pathlib import Path

        Path(parsed.path).mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(**kwargs)


def connect_settings(settings: Settings, database: str | None = None) -> Client:
    return connect(settings.clickhouse_dsn, database=database, username=settings.clickhouse_username,
                   password=settings.clickhouse_password.get_secret_value() if settings.clickhouse_password else None)
