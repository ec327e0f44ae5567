"""Where the cluster is, and how to talk to it securely.

``resolve_bootstrap`` returns ``OVERSEER_KAFKA_BOOTSTRAP`` when set, else the
local cluster started by ``overseer kafka up``. ``client_kwargs`` turns the
SASL/TLS settings into aiokafka arguments (secrets never logged).
"""

from __future__ import annotations

import ssl
from typing import Any

from streams.kafka.launcher import LocalKafka
from streams.settings import Settings


class NoBrokerError(RuntimeError):
    pass


def resolve_bootstrap(settings: Settings) -> str:
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    cluster = LocalKafka(settings.home, settings.cache_dir).load()
    if cluster is None:
        raise NoBrokerError("no Kafka configured: set OVERSEER_KAFKA_BOOTSTRAP=host:port, "
                            "or start a local one with `overseer kafka up`")
    return cluster.bootstrap


def client_kwargs(settings: Settings) -> dict[str, Any]:
    if settings.kafka_security_protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise ValueError(f"OVERSEER_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol!r}: expected "
                         "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    kwargs: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            kwargs["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return kwargs


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for the brokers (``SSL``/``SASL_SSL``), verifying them against the configured CA."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    return ssl.create_default_context(cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)


def faust_credentials(settings: Settings) -> Any:
    """The same SASL/TLS settings as :func:`client_kwargs`, as Faust ``broker_credentials``.

    Faust's own consumer, producer and admin clients (agents, tables, changelogs) connect with these;
    ``None`` for PLAINTEXT."""
    from faust.auth import SASLCredentials, SSLCredentials

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return SSLCredentials(ssl_context(settings))
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        creds = SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None,
            ssl_context=ssl_context(settings), mechanism=settings.kafka_sasl_mechanism or "PLAIN")
        return creds
    raise ValueError(f"OVERSEER_KAFKA_SECURITY_PROTOCOL={protocol!r}: expected PLAINTEXT, SSL, "
                     "SASL_PLAINTEXT or SASL_SSL")


def producer_kwargs(settings: Settings) -> dict[str, Any]:
    """Durable producers: acks from every in-sync replica, idempotent where the broker supports it."""
    return {"acks": "all", "enable_idempotence": settings.kafka_idempotence, **client_kwargs(settings)}
