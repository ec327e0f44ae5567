"""Traces and metrics of a real batch, through the OpenTelemetry SDK's in-memory reader and exporter.

A WorkerRuntime in this process (embedded ClickHouse, the session's real broker) handles a batch
read from the events topic: one span per batch carrying its offsets; counters for events in,
rows stored, dead letters by reason, detections; the detection latency histogram; the kill-switch
command counter after the policy acts on the breach; suppressed alerts; and the consumer-lag gauge
(log end minus the group's committed offset) before and after the group commits.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streams.kafka.topics import ensure_topics
from streams.pipeline.core import build_core
from streams.pipeline.decode import Record
from streams.runtime import WorkerRuntime
from streams.settings import Settings
from streams.store.client import connect
from streams.store.migrate import migrate
from streams.store.sink import ClickHouseSink
from streams.telemetry import Telemetry
from tests.integration.faults.common import breach, now_minus, read_topic, traffic


def metrics(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out.setdefault(m.name, []).extend(m.data.data_points)
    return out


def total(points: list[Any], **attrs: Any) -> float:
    return sum(p.value for p in points if all(p.attributes.get(k) == v for k, v in attrs.items()))


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, key=b"k", value=v, partition=0)
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, n: int) -> list[Record]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    out: list[Record] = []
    try:
        while len(out) < n:
            for msgs in (await consumer.getmany(timeout_ms=1000)).values():
                out += [Record(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp / 1000) for m in msgs]
    finally:
        await consumer.stop()
    return out


async def commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()


def test_a_batch_is_traced_and_measured(chdb_database: tuple[str, str], kafka_bootstrap: str, tmp_path: Path) -> None:
    dsn, db = chdb_database
    prefix = f"tel{uuid.uuid4().hex[:8]}"
    settings = Settings(kafka_bootstrap=kafka_bootstrap, home=tmp_path, topic_prefix=prefix, app_id=f"{prefix}-app",
                        topic_partitions=1)
    asyncio.run(ensure_topics(kafka_bootstrap, settings))
    reader, spans = InMemoryMetricReader(), InMemorySpanExporter()
    telemetry = Telemetry(metric_readers=[reader], span_processors=[SimpleSpanProcessor(spans)])
    sink = ClickHouseSink(lambda: connect(dsn, database=db), max_backoff_s=0.5)
    sink.call(migrate)
    rt = WorkerRuntime(settings, kafka_bootstrap, build_core(None, allowed_lateness_s=60), sink, telemetry=telemetry)

    t0 = now_minus(20)
    events = traffic(40, t0) + breach(t0)
    values = [orjson.dumps({"kind": "batch", "events": events[i:i + 10]}) for i in range(0, len(events), 10)]
    values += [b'{"event_type": "inference", "ts": ', b'"just a string"']  # malformed_json, not_an_object
    events_topic = settings.topic("events")

    async def scenario() -> None:
        await produce(kafka_bootstrap, events_topic, values)
        await rt.poll_lag()  # nothing committed yet: the whole topic is lag
        lag_before = dict(telemetry.lag_by_partition())
        records = await consume(kafka_bootstrap, events_topic, len(values))
        await rt.handle_events(records)
        detections = await read_topic(kafka_bootstrap, settings.topic("detections"))
        for _ in range(2):  # the second time is a replay: decided once, the command is not issued again
            for msg in detections:
                await rt.handle_detection(msg.value)
        await commit(kafka_bootstrap, settings.app_id, events_topic, records[-1].offset + 1)
        await rt.poll_lag()
        telemetry.lag_before = lag_before  # type: ignore[attr-defined]
        await rt.close()

    rt.close = _keep_telemetry(rt)  # type: ignore[method-assign]
    asyncio.run(scenario())

    # one span per batch, linked to its offsets
    (span,) = [s for s in spans.get_finished_spans() if s.name == "detect.batch"]
    assert span.attributes[f"messaging.kafka.offsets.{events_topic}.0"] == f"0-{len(values) - 1}"
    assert span.attributes["overseer.messages"] == len(values)

    m = metrics(reader)
    assert total(m["overseer.events.in"]) == len(events)
    assert total(m["overseer.rows.stored"], table="events") == len(events)
    assert total(m["overseer.events.deadlettered"], reason="malformed_json") == 1
    assert total(m["overseer.events.deadlettered"], reason="not_an_object") == 1
    assert total(m["overseer.detections"]) >= 2
    (latency,) = m["overseer.detection.latency"]
    assert latency.count >= 2 and latency.min >= 0
    commands = len(asyncio.run(read_topic(kafka_bootstrap, settings.topic("killswitch"))))
    assert commands >= 1 and total(m["overseer.killswitch.commands"]) == commands
    assert total(m["overseer.killswitch.commands"], action="pause") >= 1
    # the replay issued nothing new (commands == topic): every replayed detection was skipped, and counted
    n_detections = len(asyncio.run(read_topic(kafka_bootstrap, settings.topic("detections"))))
    assert total(m["overseer.alerts.suppressed"], why="already_decided") == n_detections >= 2
    lag = {(p.attributes["topic"], p.attributes["partition"]): p.value for p in m["overseer.consumer.lag"]}
    assert telemetry.lag_before == {f"{events_topic}/0": len(values)}  # type: ignore[attr-defined]
    assert lag == {(events_topic, 0): 0}
    stored = sink.call(lambda c: c.command("SELECT count() FROM events"))
    assert int(stored) == len(events)
    sink.close()


def _keep_telemetry(rt: WorkerRuntime) -> Any:
    """close() without shutting the SDK down, so the in-memory reader can still be collected."""
    original = rt.close

    async def close() -> None:
        shutdown, rt.telemetry.shutdown = rt.telemetry.shutdown, lambda: None  # type: ignore[method-assign]
        try:
            await original()
        finally:
            rt.telemetry.shutdown = shutdown  # type: ignore[method-assign]

    return close
