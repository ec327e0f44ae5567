"""OTLP export when configured: a loopback OTLP/HTTP receiver gets protobuf traces and metrics,
decoded with opentelemetry-proto; with nothing configured, nothing is exported."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any, Self

import pytest
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from streams.settings import Settings
from streams.telemetry import Telemetry


class Receiver:
    """An OTLP/HTTP endpoint on a loopback port, in its own thread and loop."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, request.content_type, await request.read()))
        return web.Response(status=200, content_type="application/x-protobuf", body=b"")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/traces", self._handle)
        app.router.add_post("/v1/metrics", self._handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._runner = runner
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def test_traces_and_metrics_arrive_as_otlp_protobuf(receiver: Receiver) -> None:
    settings = Settings(kafka_bootstrap="x:1", otlp_endpoint=f"http://127.0.0.1:{receiver.port}")
    tel = Telemetry("overseer-worker-test", otlp_endpoint=settings.otlp_endpoint)
    span = tel.start_batch_span("detect.batch", {("overseer.events.v1", 3): (100, 199)})
    span.set_attribute("overseer.messages", 100)
    span.end()
    tel.events_in(250)
    tel.deadlettered(["malformed_json", "oversized"])
    tel.command("pause", "enforce")
    tel.consumer_lag("overseer.events.v1", 3, 42)
    tel.detection_latency_ms(12.5)
    tel.shutdown()  # flushes both pipelines

    traces = [ExportTraceServiceRequest.FromString(b) for p, ct, b in receiver.requests if p == "/v1/traces"]
    metrics = [ExportMetricsServiceRequest.FromString(b) for p, ct, b in receiver.requests if p == "/v1/metrics"]
    assert all(ct == "application/x-protobuf" for _, ct, _ in receiver.requests)
    spans = [s for t in traces for rs in t.resource_spans for ss in rs.scope_spans for s in ss.spans]
    (batch,) = [s for s in spans if s.name == "detect.batch"]
    attrs = {a.key: a.value for a in batch.attributes}
    assert attrs["messaging.kafka.offsets.overseer.events.v1.3"].string_value == "100-199"
    assert attrs["overseer.messages"].int_value == 100
    resource = {a.key: a.value.string_value for a in traces[0].resource_spans[0].resource.attributes}
    assert resource["service.name"] == "overseer-worker-test"

    by_name: dict[str, Any] = {}
    for req in metrics:
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    by_name[m.name] = m
    assert by_name["overseer.events.in"].sum.data_points[0].as_int == 250
    assert sum(p.as_int for p in by_name["overseer.events.deadlettered"].sum.data_points) == 2
    assert by_name["overseer.killswitch.commands"].sum.data_points[0].as_int == 1
    assert by_name["overseer.consumer.lag"].gauge.data_points[0].as_int == 42
    assert by_name["overseer.detection.latency"].histogram.data_points[0].count == 1


def test_nothing_is_exported_unless_configured(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    tel = Telemetry(otlp_endpoint=None)
    tel.start_batch_span("detect.batch", {}).end()
    tel.events_in(1)
    tel.shutdown()
    assert receiver.requests == []


def test_the_standard_otel_variable_also_enables_export(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{receiver.port}")
    tel = Telemetry(otlp_endpoint=None)
    tel.events_in(3)
    tel.shutdown()
    assert [p for p, _, _ in receiver.requests] == ["/v1/metrics"]
