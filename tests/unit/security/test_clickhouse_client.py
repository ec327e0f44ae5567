"""ClickHouse connection arguments: TLS and credentials for http(s) DSNs, nothing extra for chdb."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import Settings
from streams.store.client import client_kwargs, settings_kwargs


def test_https_uses_tls_verification_and_the_settings_credentials(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    s = Settings(kafka_bootstrap="x:1", clickhouse_dsn="https://ch.internal:8443", clickhouse_username="writer",
                 clickhouse_password="ch-secret", clickhouse_ca_cert=ca)
    kw = settings_kwargs(s)
    assert kw == {"interface": "https", "host": "ch.internal", "port": 8443, "secure": True, "compress": "lz4",
                  "username": "writer", "password": "ch-secret", "verify": True, "ca_cert": str(ca)}


def test_https_default_port_and_database_from_path() -> None:
    kw = client_kwargs("https://ch.example/audit")
    assert (kw["port"], kw["database"], kw["secure"], kw["verify"]) == (8443, "audit", True, True)
    assert "username" not in kw and "password" not in kw


def test_credentials_in_the_dsn_are_used_and_unquoted() -> None:
    kw = client_kwargs("http://reader:p%40ss@ch:8123")
    assert (kw["username"], kw["password"], kw["secure"]) == ("reader", "p@ss", False)
    assert "verify" not in kw


def test_settings_credentials_win_over_the_dsn() -> None:
    kw = client_kwargs("https://a:b@ch:8443", username="c", password="d")
    assert (kw["username"], kw["password"]) == ("c", "d")


def test_client_certificate_for_mutual_tls(tmp_path: Path) -> None:
    kw = client_kwargs("https://ch:8443", client_cert=tmp_path / "c.pem", client_cert_key=tmp_path / "k.pem",
                       verify=False)
    assert kw["client_cert"].endswith("c.pem") and kw["client_cert_key"].endswith("k.pem") and kw["verify"] is False


def test_certificates_with_plain_http_are_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="use https://"):
        client_kwargs("http://ch:8123", ca_cert=tmp_path / "ca.pem")


def test_chdb_gets_only_the_dsn_and_database() -> None:
    assert client_kwargs("chdb:///tmp/x", database="d", username="u", password="p") == {"dsn": "chdb:///tmp/x",
                                                                                       "database": "d"}


def test_unknown_scheme_is_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported scheme"):
        client_kwargs("clickhouse://ch:9000")


def test_the_arguments_are_accepted_by_clickhouse_connect() -> None:
    """The names we build are real get_client parameters (a typo would be silently ignored by **kwargs)."""
    import inspect

    from clickhouse_connect.driver import create_client
    from clickhouse_connect.driver.httpclient import HttpClient

    # create_client takes the connection arguments, and passes the rest on to the HTTP client
    params = set(inspect.signature(create_client).parameters) | set(inspect.signature(HttpClient.__init__).parameters)
    kw = client_kwargs("https://u:p@ch:8443/db", ca_cert=Path("/ca"), client_cert=Path("/c"),
                       client_cert_key=Path("/k"))
    assert set(kw) - {"compress"} <= params | {"compress"}
    assert {"interface", "host", "port", "secure", "username", "password", "database", "verify", "ca_cert",
            "client_cert", "client_cert_key"} <= set(kw)
