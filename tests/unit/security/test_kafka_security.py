"""Kafka SASL/TLS settings reach aiokafka (our own clients) and Faust (broker_credentials) alike."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from streams.kafka.clients import client_kwargs, faust_credentials, producer_kwargs
from streams.settings import Settings

CA = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")


def settings(**kw: object) -> Settings:
    return Settings(kafka_bootstrap="broker:9093", **kw)  # type: ignore[arg-type]


def test_plaintext_has_no_credentials() -> None:
    s = settings()
    assert client_kwargs(s) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(s) is None


def test_sasl_ssl_scram_for_aiokafka_and_faust_agree() -> None:
    s = settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                 kafka_sasl_username="overseer", kafka_sasl_password="s3cr3t-pw", kafka_ssl_cafile=CA)
    kw = client_kwargs(s)
    assert kw["security_protocol"] == "SASL_SSL"
    assert kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kw["sasl_plain_username"], kw["sasl_plain_password"]) == ("overseer", "s3cr3t-pw")
    ctx = kw["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname

    creds = faust_credentials(s)
    assert isinstance(creds, SASLCredentials)
    faust_kw = credentials_to_aiokafka_auth(creds)  # what Faust hands its own aiokafka clients
    assert faust_kw["security_protocol"] == "SASL_SSL"
    assert faust_kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (faust_kw["sasl_plain_username"], faust_kw["sasl_plain_password"]) == ("overseer", "s3cr3t-pw")
    assert faust_kw["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert "s3cr3t-pw" not in repr(creds)

    prod = producer_kwargs(s)
    assert prod["acks"] == "all" and prod["enable_idempotence"] is True and prod["sasl_plain_password"] == "s3cr3t-pw"


def test_sasl_plaintext_defaults_to_plain_without_tls() -> None:
    s = settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u", kafka_sasl_password="p")
    kw = client_kwargs(s)
    assert kw["sasl_mechanism"] == "PLAIN" and "ssl_context" not in kw
    faust_kw = credentials_to_aiokafka_auth(faust_credentials(s))
    assert faust_kw["security_protocol"] == "SASL_PLAINTEXT" and faust_kw["sasl_mechanism"] == "PLAIN"
    assert faust_kw["ssl_context"] is None


def test_ssl_only_uses_the_configured_ca() -> None:
    s = settings(kafka_security_protocol="SSL", kafka_ssl_cafile=CA)
    kw = client_kwargs(s)
    assert kw["security_protocol"] == "SSL" and "sasl_mechanism" not in kw
    assert kw["ssl_context"].cert_store_stats()["x509_ca"] > 0  # the CA bundle was loaded
    creds = faust_credentials(s)
    assert isinstance(creds, SSLCredentials)
    assert credentials_to_aiokafka_auth(creds)["security_protocol"] == "SSL"


def test_missing_ca_file_fails_loudly() -> None:
    s = settings(kafka_security_protocol="SSL", kafka_ssl_cafile=Path("/nonexistent/ca.pem"))
    with pytest.raises(FileNotFoundError):
        client_kwargs(s)


def test_unknown_protocol_is_rejected_with_the_choices() -> None:
    s = settings(kafka_security_protocol="SASL_TLS")
    with pytest.raises(ValueError, match="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"):
        client_kwargs(s)
    with pytest.raises(ValueError, match="SASL_SSL"):
        faust_credentials(s)


def test_worker_app_carries_the_credentials(tmp_path: Path) -> None:
    """The Faust app built by the worker is configured with the same SASL_SSL credentials."""
    from streams.app import create_app

    s = Settings(kafka_bootstrap="broker:9093", home=tmp_path, kafka_security_protocol="SASL_SSL",
                 kafka_sasl_mechanism="SCRAM-SHA-256", kafka_sasl_username="w", kafka_sasl_password="pw-42",
                 kafka_ssl_cafile=CA)
    app = create_app(s, "broker:9093", lambda *a, **k: None)
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials)
    assert auth["security_protocol"] == "SASL_SSL" and auth["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("w", "pw-42")
