"""One settings object, read from ``OVERSEER_*`` environment variables.

Nothing reads the environment at import time: the CLI builds a
:class:`Settings` and passes it down.

>>> s = Settings(kafka_bootstrap="127.0.0.1:9092")
>>> s.clickhouse_dsn.startswith("chdb:///")
True
"""

from __future__ import annotations

from pathlib import Path

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OVERSEER_", extra="ignore")

    home: Path = Field(default=Path(".overseer"), description="local state: Kafka data, embedded ClickHouse, keys")
    cache_dir: Path = Field(default=Path(".cache"), description="resolved Kafka jars")

    # Kafka
    kafka_bootstrap: str | None = Field(default=None, description="host:port[,host:port]; None = local launcher")
    kafka_engine: str = Field(default="auto", pattern="^(auto|kafka|tansu)$",
                              description="local launcher: Apache Kafka (needs Java), Tansu (memory only), or auto")
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_idempotence: bool = Field(default=True, description="idempotent producers (off only for the Tansu fallback, "
                                                              "which rejects InitProducerId)")
    kafka_session_timeout_s: float = Field(default=30.0, ge=6.0, description="consumer-group session: how long a "
                                           "crashed worker keeps its partitions before the group moves them")
    topic_partitions: int = Field(default=4, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    topic_min_insync: int = Field(default=1, ge=1)
    topic_prefix: str = "overseer"

    # ClickHouse
    clickhouse_dsn: str = ""
    clickhouse_username: str | None = None
    clickhouse_password: SecretStr | None = None
    clickhouse_ca_cert: Path | None = Field(default=None, description="CA bundle for https:// DSNs (default: system)")
    clickhouse_verify: bool = Field(default=True, description="verify the ClickHouse server certificate (https)")

    # worker
    app_id: str = "overseer"
    worker_web_port: int = 6066
    worker_web_host: str = "127.0.0.1"
    batch_max: int = Field(default=2000, ge=1, description="Kafka messages per detect batch")
    batch_within_s: float = Field(default=0.05, gt=0, description="longest wait for a detect batch to fill: "
                                  "latency added when traffic is light (a busy worker's batches fill as it works)")
    fastlane_min_severity: Literal["", "info", "low", "medium", "high", "critical"] = Field(
        default="critical", description="single-event rules at or above this severity also run in the fast lane, "
        "on each batch as it arrives (before windows, metrics and the store); empty = no fast lane")
    fastlane_within_s: float = Field(default=0.01, gt=0, description="the fast lane's longest wait for a batch")
    commits_in_flight: int = Field(default=3, ge=1, description="detect batches evaluated but not yet stored: "
                                   "detection runs ahead of a slow store by this many batches")
    events_in_flight: int = Field(default=200_000, ge=1, description="and at most this many events (memory)")
    policy_within_s: float = Field(default=0.02, gt=0, description="the same for the policy agent's detection "
                                   "batches: part of every kill-switch command's latency")
    max_message_bytes: int = Field(default=1_048_576, ge=1024, description="larger messages are dead-lettered")
    allowed_lateness_s: float = Field(default=60.0, ge=0)
    rules_paths: list[Path] = Field(default_factory=list, description="rule files/dirs; empty = built-in packs")
    stall_after_s: float = Field(default=120.0, gt=0, description="/healthz fails when events wait (lag) and no "
                                                                   "batch finished for this long")
    rules_reload_interval_s: float = Field(default=5.0, ge=0, description="how often to look for changed rule "
                                                                       "files (0: never; restart to apply)")
    sink_retry_max_s: float = Field(default=30.0, gt=0)
    gc_gen0_threshold: int = Field(default=100_000, ge=0, description="allocations between young-generation "
                                   "garbage collections (CPython's default is 700; 0 keeps it): the hot path "
                                   "allocates tens of objects per event (streams/gc_tuning.py)")
    content_retention_days: int = Field(default=90, ge=1, description="events.content and tool_arguments are "
                                        "emptied after this many days; metadata stays (docs/audit.md)")

    # telemetry and fault injection
    otlp_endpoint: str | None = Field(default=None, description="OTLP/HTTP base URL; nothing exported when unset")
    fault_crash_at: str | None = Field(default=None, description="tests only: POINT[:N] kills the worker "
                                                                 "(see streams/faults.py)")
    fault_clickhouse_down: str | None = Field(default=None, description="tests only: START:DURATION seconds of "
                                                                        "injected ClickHouse outage (streams/faults.py)")
    sink_alert_after_s: float = Field(default=10.0, gt=0, description="raise a monitor-health alert when ClickHouse "
                                                                      "writes fail for longer than this")
    lag_poll_interval_s: float = Field(default=5.0, gt=0, description="how often the consumer-lag gauge is refreshed")
    redact_fields: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="event fields replaced by a marker before storage (comma-separated); "
                                          "content and tool_arguments keep a sha256 in their *_hash column")

    # kill-switch
    signing_key_path: Path | None = None
    signing_key_id: str = "local-dev-1"
    lease_s: float = Field(default=3600.0, gt=0)
    heartbeat_interval_s: float = Field(default=5.0, gt=0, description="monitor heartbeat for the enforcers")

    # on-call: alert lifecycle, routing, HTTP API (docs/oncall.md)
    api_tokens_file: Path | None = Field(default=None, description="YAML/JSON of sha256(token) -> {name, role}; "
                                                                   "unset = unauthenticated access from loopback only")
    alert_routing_file: Path | None = Field(default=None, description="routing tree YAML; unset = no notifications")
    alert_resolve_after_s: float = Field(default=300.0, gt=0, description="quiet period before an alert clears")
    alert_keep_firing_for_s: float = Field(default=120.0, ge=0, description="hysteresis after the quiet period")
    alert_sweep_interval_s: float = Field(default=10.0, gt=0, description="how often quiet groups are checked")

    @field_validator("redact_fields", mode="before")
    @classmethod
    def _split_fields(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip()
            if v.startswith("["):
                import json

                return json.loads(v)
            return [f.strip() for f in v.split(",") if f.strip()]
        return v

    @model_validator(mode="after")
    def _derive(self) -> "Settings":
        if not self.clickhouse_dsn:
            self.clickhouse_dsn = f"chdb:///{(self.home / 'clickhouse').resolve()}"
        if self.signing_key_path is None:
            self.signing_key_path = self.home / "keys" / "killswitch-ed25519.pem"
        return self

    def topic(self, name: str) -> str:
        """``topic("events")`` -> ``overseer.events.v1``."""
        return f"{self.topic_prefix}.{name}.v1"

    @property
    def kafka_dir(self) -> Path:
        return self.home / "kafka"
