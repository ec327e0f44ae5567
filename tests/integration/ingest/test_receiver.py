"""The OTLP/HTTP receiver against a real broker: JSON, protobuf, partial success, 400/413/415/503."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from schemas.deadletter import DeadLetter
from schemas.events import EventBatch
from streams.ingest.producer import EventPublisher
from streams.ingest.receiver import ReceiverConfig, make_app
from tests.integration.ingest.conftest import Topics, events_of, read_topic

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ingest"
OTLP_JSON = (FIXTURES / "otlp_genai_trace.json").read_bytes()
OTLP_PB = (FIXTURES / "otlp_genai_trace.pb").read_bytes()
TRACE = "5b8aa5a2d2c872e8321cf37308d69df2"

Scenario = Callable[[TestClient, EventPublisher], Awaitable[None]]


def serve(topics: Topics, scenario: Scenario, **config: Any) -> None:
    async def main() -> None:
        publisher = EventPublisher(topics.bootstrap, topics.events, topics.deadletter,
                                   max_pending_events=config.pop("max_pending_events", 10_000))
        await publisher.start()
        try:
            async with TestClient(TestServer(make_app(publisher, ReceiverConfig(**config)))) as client:
                await scenario(client, publisher)
        finally:
            await publisher.stop()
    asyncio.run(main())


def test_otlp_json_export_lands_as_one_batch(topics: Topics) -> None:
    async def scenario(client: TestClient, _p: EventPublisher) -> None:
        resp = await client.post("/v1/traces", data=OTLP_JSON, headers={"Content-Type": "application/json"})
        assert resp.status == 200 and resp.content_type == "application/json"
        assert await resp.json() == {}  # full success: no partialSuccess
        stats = await (await client.get("/v1/stats")).json()
        assert (stats["accepted"], stats["skipped"], stats["rejected"]) == (5, 1, 0)

    serve(topics, scenario)
    landed = asyncio.run(read_topic(topics.bootstrap, topics.events, 1))
    assert len(landed) == 1 and landed[0].key == TRACE.encode()  # keyed by agent_run_id (the trace)
    batch = EventBatch.model_validate(landed[0].value)
    assert [e.event_type for e in batch.events] == ["agent_step", "inference", "tool_call", "tool_call", "tool_call"]
    assert {e.action_category for e in batch.events} >= {"weights_access", "exec", "net_egress"}


def test_otlp_protobuf_with_gzip_and_partial_success(topics: Topics) -> None:
    from streams.ingest.adapters.otlp_wire import encode_protobuf

    export = json.loads(OTLP_JSON)
    spans = export["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[2]["attributes"].append({"key": "gen_ai.usage.input_tokens", "value": {"intValue": "-1"}})

    async def scenario(client: TestClient, _p: EventPublisher) -> None:
        body = gzip.compress(encode_protobuf(export))
        resp = await client.post("/v1/traces", data=body, headers={
            "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
        assert resp.status == 200 and resp.content_type == "application/x-protobuf"
        reply = ExportTraceServiceResponse.FromString(await resp.read())
        assert reply.partial_success.rejected_spans == 1
        message = reply.partial_success.error_message
        assert "span #2" in message and "input_tokens" in message

    serve(topics, scenario)
    assert len(events_of(asyncio.run(read_topic(topics.bootstrap, topics.events, 1)))) == 4
    (dead,) = asyncio.run(read_topic(topics.bootstrap, topics.deadletter, 1))
    letter = DeadLetter.model_validate(dead.value)
    assert (letter.reason, letter.source_topic, letter.index_in_message) == (
        "schema_violation", "ingest:http:/v1/traces", 2)
    replay = json.loads(letter.original())
    assert replay["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] == spans[2]["spanId"]


def test_json_partial_success_body(topics: Topics) -> None:
    export = json.loads(OTLP_JSON)
    export["resourceSpans"][0]["scopeSpans"][0]["spans"][1].pop("startTimeUnixNano")

    async def scenario(client: TestClient, _p: EventPublisher) -> None:
        resp = await client.post("/v1/traces", data=orjson.dumps(export), headers={"Content-Type": "application/json"})
        body = await resp.json()
        assert resp.status == 200 and body["partialSuccess"]["rejectedSpans"] == 1
        assert "startTimeUnixNano" in body["partialSuccess"]["errorMessage"]

    serve(topics, scenario)
    (dead,) = asyncio.run(read_topic(topics.bootstrap, topics.deadletter, 1))
    assert dead.value["reason"] == "schema_violation"


@pytest.mark.parametrize(("ctype", "body", "encoding"), [
    ("application/json", b"{not json", None),
    ("application/x-protobuf", b"\xff\xff\xff\xff", None),
    ("application/json", b'{"resourceSpans": 3}', None),
    ("application/json", b"plain, not gzip", "gzip"),
])
def test_undecodable_bodies_are_400(topics: Topics, ctype: str, body: bytes, encoding: str | None) -> None:
    async def scenario(client: TestClient, _p: EventPublisher) -> None:
        headers = {"Content-Type": ctype} | ({"Content-Encoding": encoding} if encoding else {})
        resp = await client.post("/v1/traces", data=body, headers=headers)
        assert resp.status == 400
        raw = await resp.read()
        status = (status_pb2.Status.FromString(raw) if ctype.endswith("protobuf")
                  else status_pb2.Status(**json.loads(raw)))
        assert status.code == 3 and status.message

    serve(topics, scenario)


def test_oversized_and_unsupported(topics: Topics) -> None:
    async def scenario(client: TestClient, _p: EventPublisher) -> None:
        big = await client.post("/v1/traces", data=OTLP_JSON, headers={"Content-Type": "application/json"})
        assert big.status == 413 and "limit" in (await big.json())["message"]
        bomb = gzip.compress(b" " * 100_000)  # small on the wire, too large inflated
        resp = await client.post("/v1/traces", data=bomb, headers={
            "Content-Type": "application/json", "Content-Encoding": "gzip"})
        assert resp.status == 413
        resp = await client.post("/v1/traces", data=b"x", headers={"Content-Type": "text/plain"})
        assert resp.status == 415 and "application/x-protobuf" in (await resp.json())["message"]
        resp = await client.post("/v1/events?format=csv", data=b"{}", headers={"Content-Type": "application/json"})
        assert resp.status == 400

    serve(topics, scenario, max_body_bytes=4096)


def test_full_buffer_is_503_with_retry_after(topics: Topics) -> None:
    async def scenario(client: TestClient, publisher: EventPublisher) -> None:
        await publisher._reserve(10)  # stand-in for 10 events still waiting for Kafka acks
        resp = await client.post("/v1/traces", data=OTLP_JSON, headers={"Content-Type": "application/json"})
        assert resp.status == 503 and int(resp.headers["Retry-After"]) > 0
        await publisher._release(10)
        resp = await client.post("/v1/traces", data=OTLP_JSON, headers={"Content-Type": "application/json"})
        assert resp.status == 200

    serve(topics, scenario, max_pending_events=12)


def test_events_endpoint_all_formats(topics: Topics) -> None:
    litellm = (FIXTURES / "litellm_payloads.json").read_bytes()
    openai = (FIXTURES / "openai_objects.json").read_bytes()
    native = [json.loads(line) for line in (FIXTURES / "native_events.ndjson").read_text().splitlines()]

    async def scenario(client: TestClient, _p: EventPublisher) -> None:
        h = {"Content-Type": "application/json"}
        r1 = await (await client.post("/v1/events?format=litellm", data=litellm, headers=h)).json()
        r2 = await (await client.post("/v1/events?format=openai&deployment_id=chat-prod", data=openai,
                                      headers=h)).json()
        r3 = await (await client.post("/v1/events", data=orjson.dumps(native[3]), headers=h)).json()
        bad = [native[0], {"event_type": "nope", "ts": "2026-01-01T00:00:00Z"}]
        r4 = await (await client.post("/v1/events?format=native", data=orjson.dumps(bad), headers=h)).json()
        r5 = await (await client.post("/v1/events?format=otlp", data=OTLP_PB,
                                      headers={"Content-Type": "application/x-protobuf"})).json()
        assert [r["accepted"] for r in (r1, r2, r3, r4, r5)] == [6, 7, 2, 1, 5]
        assert r4["rejected"] == 1 and r4["errors"] == [
            {"index": 1, "reason": "unknown_event_type", "error": r4["errors"][0]["error"]}]

    serve(topics, scenario)
    events = events_of(asyncio.run(read_topic(topics.bootstrap, topics.events, 6)))
    assert len(events) == 6 + 7 + 2 + 1 + 5
    openai_events = [e for e in events if "openai.id" in e["attributes"]]
    assert {e["deployment_id"] for e in openai_events} == {"chat-prod", "ops-agent-prod"}
    (dead,) = asyncio.run(read_topic(topics.bootstrap, topics.deadletter, 1))
    assert base64.b64decode(dead.value["original_b64"]).startswith(b'{"event_type":"nope"')


def test_events_endpoint_ndjson_with_a_bad_line(topics: Topics) -> None:
    payloads = json.loads((FIXTURES / "litellm_payloads.json").read_text())
    body = "\n".join([json.dumps(payloads[0]), "{oops", json.dumps(payloads[2])]).encode() + b"\n"

    async def scenario(client: TestClient, _p: EventPublisher) -> None:
        for ctype in ("application/x-ndjson", "application/json"):  # LiteLLM's ndjson log_format, either header
            resp = await client.post("/v1/events?format=litellm", data=body, headers={"Content-Type": ctype})
            reply = await resp.json()
            assert resp.status == 200 and (reply["accepted"], reply["rejected"]) == (4, 1)
            assert reply["errors"][0]["reason"] == "malformed_json" and "line 2" in reply["errors"][0]["error"]
        resp = await client.post("/v1/events?format=litellm", data=b"{x\n{y\n",
                                 headers={"Content-Type": "application/x-ndjson"})
        assert resp.status == 400

    serve(topics, scenario)
    events = events_of(asyncio.run(read_topic(topics.bootstrap, topics.events, 2)))
    assert len(events) == 8
    assert len(asyncio.run(read_topic(topics.bootstrap, topics.deadletter, 2))) == 2
