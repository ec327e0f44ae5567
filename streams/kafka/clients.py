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
    kwargs: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
    if settings.kafka_security_protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            kwargs["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return kwargs


def producer_kwargs(settings: Settings) -> dict[str, Any]:
    """Durable producers: acks from every in-sync replica, idempotent where the broker supports it."""
    return {"acks": "all", "enable_idempotence": settings.kafka_idempotence, **client_kwargs(settings)}
