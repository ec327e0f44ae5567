"""Secrets never reach a log line: settings repr/dumps, Faust's configuration, our clients, sink errors."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from streams.kafka.clients import faust_credentials
from streams.settings import Settings
from streams.store.client import connect_settings
from streams.store.sink import ClickHouseSink

KAFKA_PW = "kafka-pw-Zq81x"
CH_PW = "clickhouse-pw-Vv27y"


@pytest.fixture()
def secret_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("OVERSEER_KAFKA_SASL_PASSWORD", KAFKA_PW)
    monkeypatch.setenv("OVERSEER_CLICKHOUSE_PASSWORD", CH_PW)
    return Settings(kafka_bootstrap="127.0.0.1:1", home=tmp_path, kafka_security_protocol="SASL_PLAINTEXT",
                    kafka_sasl_username="overseer", clickhouse_dsn="http://127.0.0.1:1",
                    clickhouse_username="writer")


def test_settings_never_render_secrets(secret_settings: Settings) -> None:
    s = secret_settings
    assert s.kafka_sasl_password is not None and s.kafka_sasl_password.get_secret_value() == KAFKA_PW
    for text in (repr(s), str(s), s.model_dump_json(), str(s.model_dump()), repr(faust_credentials(s))):
        assert KAFKA_PW not in text and CH_PW not in text


def test_nothing_logged_at_debug_contains_a_secret(secret_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """Build the Faust app and drive a failing ClickHouse write (the password is sent, the server
    is unreachable): every record logged, at DEBUG, is free of both passwords."""
    from streams.app import create_app

    caplog.set_level(logging.DEBUG)
    s = secret_settings
    logging.getLogger("test").debug("settings %r %s", s, s.model_dump())
    app = create_app(s, "127.0.0.1:1", lambda *a, **k: None)
    logging.getLogger("test").debug("faust conf %r", dict(app.conf.items()) if hasattr(app.conf, "items") else app.conf)

    sink = ClickHouseSink(lambda: connect_settings(s), max_backoff_s=0.05)

    async def two_failures() -> None:
        task = asyncio.ensure_future(sink.write("events", [["x"]], ["event_id"]))
        while sink.stats.retries < 2:
            await asyncio.sleep(0.02)
        task.cancel()

    asyncio.run(two_failures())
    sink.close()
    assert sink.stats.last_error  # the failure was logged
    logged = "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)
    assert "ClickHouse insert into events failed" in logged
    assert KAFKA_PW not in logged and CH_PW not in logged
