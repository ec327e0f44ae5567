"""Open a clickhouse-connect client for a DSN, the same way for chdb and HTTP(S).

The embedded engine (chdb) opens exactly one path per process and one process
per path, so a worker owns its store; other processes go through the
worker's HTTP API.

For a server, ``https://`` DSNs use TLS, verified against the system trust
store or ``OVERSEER_CLICKHOUSE_CA_CERT``; credentials come from the settings
(the password is a secret value, never logged) or from the DSN itself.

>>> kw = client_kwargs("https://ch.example:8443/audit", username="overseer", password="pw")
>>> kw["host"], kw["port"], kw["secure"], kw["database"], kw["username"]
('ch.example', 8443, True, 'audit', 'overseer')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from streams.settings import Settings


def client_kwargs(dsn: str, *, database: str | None = None, username: str | None = None,
                  password: str | None = None, ca_cert: Path | None = None, verify: bool = True,
                  client_cert: Path | None = None, client_cert_key: Path | None = None) -> dict[str, Any]:
    """The ``clickhouse_connect.get_client`` arguments for a DSN (pure, so it is testable)."""
    parsed = urlparse(dsn)
    if parsed.scheme == "chdb":
        kwargs: dict[str, Any] = {"dsn": dsn}
        if database:
            kwargs["database"] = database
        return kwargs
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"OVERSEER_CLICKHOUSE_DSN: unsupported scheme {parsed.scheme!r}; "
                         "use chdb:///path, http://host:8123 or https://host:8443")
    secure = parsed.scheme == "https"
    kwargs = {"interface": parsed.scheme, "host": parsed.hostname or "localhost",
              "port": parsed.port or (8443 if secure else 8123), "secure": secure, "compress": "lz4"}
    db = database or (parsed.path.strip("/") or None)
    if db:
        kwargs["database"] = db
    user = username or (unquote(parsed.username) if parsed.username else None)
    secret = password or (unquote(parsed.password) if parsed.password else None)
    if user:
        kwargs["username"] = user
    if secret:
        kwargs["password"] = secret
    if secure:
        kwargs["verify"] = verify
        if ca_cert is not None:
            kwargs["ca_cert"] = str(ca_cert)
        if client_cert is not None:
            kwargs["client_cert"] = str(client_cert)
            if client_cert_key is not None:
                kwargs["client_cert_key"] = str(client_cert_key)
    elif ca_cert is not None or client_cert is not None:
        raise ValueError("TLS certificates are configured but the ClickHouse DSN is http://; use https://")
    return kwargs


def connect(dsn: str, *, database: str | None = None, username: str | None = None,
            password: str | None = None, **tls: Any) -> Client:
    kwargs = client_kwargs(dsn, database=database, username=username, password=password, **tls)
    if urlparse(dsn).scheme == "chdb":
        Path(urlparse(dsn).path).mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(**kwargs)


def settings_kwargs(settings: Settings, database: str | None = None) -> dict[str, Any]:
    return client_kwargs(
        settings.clickhouse_dsn, database=database, username=settings.clickhouse_username,
        password=settings.clickhouse_password.get_secret_value() if settings.clickhouse_password else None,
        ca_cert=settings.clickhouse_ca_cert, verify=settings.clickhouse_verify)


def connect_settings(settings: Settings, database: str | None = None) -> Client:
    kwargs = settings_kwargs(settings, database)
    if urlparse(settings.clickhouse_dsn).scheme == "chdb":
        Path(urlparse(settings.clickhouse_dsn).path).mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(**kwargs)
