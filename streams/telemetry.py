"""OpenTelemetry traces and metrics for the worker, through the SDK.

Nothing is exported unless ``OVERSEER_OTLP_ENDPOINT`` (or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT``) is set (then OTLP/HTTP protobuf to ``/v1/traces``
and ``/v1/metrics``); tests pass in-memory readers/exporters instead. One span per batch,
carrying the source offsets it covers; counters for everything that enters,
is stored, dead-lettered, detected, commanded or suppressed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanProcessor,
)


class Telemetry:
    def __init__(self, service_name: str = "overseer-worker", *, otlp_endpoint: str | None = None,
                 metric_readers: list[MetricReader] | None = None,
                 span_processors: list[SpanProcessor] | None = None) -> None:
        resource = Resource.create({"service.name": service_name})
        # the standard variable works too (compose and the chart set it), read when the worker starts
        otlp_endpoint = otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None
        readers = list(metric_readers or [])
        processors = list(span_processors or [])
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )

            base = otlp_endpoint.rstrip("/")
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics")))
            exporter: SpanExporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces")
            processors.append(BatchSpanProcessor(exporter))
        self.meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        self.tracer_provider = TracerProvider(resource=resource)
        for p in processors:
            self.tracer_provider.add_span_processor(p)
        meter = self.meter_provider.get_meter("overseer")
        self.tracer = self.tracer_provider.get_tracer("overseer")
        self._events_in = meter.create_counter("overseer.events.in", unit="{event}")
        self._stored = meter.create_counter("overseer.rows.stored", unit="{row}")
        self._deadlettered = meter.create_counter("overseer.events.deadlettered", unit="{event}")
        self._detections = meter.create_counter("overseer.detections", unit="{detection}")
        self._commands = meter.create_counter("overseer.killswitch.commands", unit="{command}")
        self._suppressed = meter.create_counter("overseer.alerts.suppressed", unit="{alert}")
        self._latency = meter.create_histogram("overseer.detection.latency", unit="ms")
        self._sink_retries = meter.create_counter("overseer.sink.retries", unit="{retry}")
        self._monitor_alerts = meter.create_counter("overseer.monitor.alerts", unit="{alert}")
        self._lag: dict[tuple[str, int], int] = {}
        meter.create_observable_gauge("overseer.consumer.lag", callbacks=[self._observe_lag], unit="{message}")

    def start_batch_span(self, name: str, offsets: dict[tuple[str, int], tuple[int, int]]) -> Any:
        """A span per batch, linked to the offsets it covers (topic/partition: first-last).

        Started, not entered: a detect batch's work spans two coroutines (prepare, then commit), and
        the caller ends the span."""
        attrs = {f"messaging.kafka.offsets.{t}.{p}": f"{a}-{b}" for (t, p), (a, b) in offsets.items()}
        return self.tracer.start_span(name, attributes=attrs)

    def events_in(self, n: int) -> None:
        self._events_in.add(n)

    def stored(self, table: str, n: int) -> None:
        self._stored.add(n, {"table": table})

    def deadlettered(self, reasons: list[str]) -> None:
        for reason in reasons:
            self._deadlettered.add(1, {"reason": reason})

    def detections(self, n: int, kind: str = "rule") -> None:
        self._detections.add(n, {"kind": kind})

    def command(self, action: str, mode: str) -> None:
        self._commands.add(1, {"action": action, "mode": mode})

    def suppressed(self, n: int, why: str) -> None:
        self._suppressed.add(n, {"why": why})

    def detection_latency_ms(self, value: float) -> None:
        self._latency.record(value)

    def sink_retry(self, table: str) -> None:
        self._sink_retries.add(1, {"table": table})

    def monitor_alert(self, what: str) -> None:
        self._monitor_alerts.add(1, {"what": what})

    def consumer_lag(self, topic: str, partition: int, lag: int) -> None:
        self._lag[(topic, partition)] = lag

    def topic_lag(self, topic: str) -> int:
        """Records waiting on ``topic`` over all its partitions, as last polled."""
        return sum(lag for (t, _), lag in self._lag.items() if t == topic)

    def lag_by_partition(self) -> dict[str, int]:
        return {f"{t}/{p}": lag for (t, p), lag in sorted(self._lag.items())}

    def _observe_lag(self, options: Any) -> Iterator[Any]:
        from opentelemetry.metrics import Observation

        for (topic, partition), lag in self._lag.items():
            yield Observation(lag, {"topic": topic, "partition": partition})

    def shutdown(self) -> None:
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()


class LagProbe:
    """Consumer lag per partition: the log-end offset minus the group's committed offset.

    Asked of the brokers (aiokafka admin + a group-less consumer), not of Faust's
    internals, so it is what any other Kafka tool would report.
    """

    def __init__(self, bootstrap: str, group_id: str, topics: list[str], **client_options: Any) -> None:
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.topics = topics
        self.options = client_options
        self._admin: Any = None
        self._consumer: Any = None

    async def _clients(self) -> tuple[Any, Any]:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self.options)
            await admin.start()
            self._admin = admin
        if self._consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, **self.options)
            await consumer.start()
            self._consumer = consumer
        return self._admin, self._consumer

    async def poll(self) -> dict[tuple[str, int], int]:
        from aiokafka import TopicPartition

        admin, consumer = await self._clients()
        parts = [TopicPartition(t, p) for t in self.topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not parts:
            await consumer._client.force_metadata_update()
            parts = [TopicPartition(t, p) for t in self.topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = await consumer.end_offsets(parts)
        committed = await self._committed(admin, parts)
        lag: dict[tuple[str, int], int] = {}
        for tp in parts:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag[(tp.topic, tp.partition)] = max(0, ends.get(tp, 0) - done)
        return lag

    async def _committed(self, admin: Any, parts: list[Any]) -> dict[Any, Any]:
        """The group's committed offsets; a coordinator still loading (a fresh cluster, a failover)
        is waited for briefly — the error is retriable by Kafka's own definition."""
        from aiokafka.errors import KafkaError

        for attempt in range(10):
            try:
                return dict(await admin.list_consumer_group_offsets(self.group_id, partitions=parts))
            except KafkaError as exc:
                if not getattr(exc, "retriable", False) or attempt == 9:
                    raise
                await asyncio.sleep(0.3 * (attempt + 1))
        return {}

    async def close(self) -> None:
        for c in (self._consumer, self._admin):
            if c is not None:
                await c.stop() if hasattr(c, "stop") else await c.close()
        self._consumer = self._admin = None
