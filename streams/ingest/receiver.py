"""The OTLP/HTTP receiver: ``POST /v1/traces`` (JSON or protobuf) and ``POST /v1/events``.

Responses follow the OTLP/HTTP specification, so stock OpenTelemetry
exporters and collectors retry exactly when they should:

* 200 with an ``ExportTraceServiceResponse`` (same encoding as the request)
  once every accepted span is acknowledged by Kafka (``acks=all``); spans
  that could not become events are dead-lettered and counted in
  ``partialSuccess.rejectedSpans`` with an ``errorMessage``;
* 400 with a ``google.rpc.Status`` when the body cannot be decoded at all;
* 413 when the body (or its gunzipped form) exceeds ``max_body_bytes``;
* 415 for a content type other than JSON or protobuf;
* 503 with ``Retry-After`` when the publisher's buffer is full
  (backpressure) or Kafka is unreachable — both retryable.

``/v1/events?format=native|litellm|openai|otlp`` takes the other formats as
one JSON document or NDJSON (one payload per line) and answers ``{"accepted", "rejected", "skipped", "errors"}``; query
parameters ``deployment_id``, ``tenant_id``, ``environment``, ``region`` fill
those fields where an event does not set them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from aiokafka.errors import KafkaError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from streams.ingest.adapters import FORMATS, AdapterOptions, AdapterResult, PayloadError, adapt
from streams.ingest.files import adapt_units, split_ndjson
from streams.ingest.producer import EventPublisher

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
NDJSON = "application/x-ndjson"
CONTEXT_PARAMS = ("deployment_id", "tenant_id", "environment", "region")
RETRY_AFTER_S = 2


@dataclass(slots=True)
class ReceiverStats:
    requests: int = 0
    accepted: int = 0
    rejected: int = 0
    skipped: int = 0
    throttled: int = 0
    too_large: int = 0
    bad_request: int = 0
    unsupported: int = 0
    kafka_errors: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


STATS: web.AppKey[ReceiverStats] = web.AppKey("ingest_stats", ReceiverStats)


@dataclass(slots=True)
class ReceiverConfig:
    max_body_bytes: int = 8 * 1024 * 1024
    options: AdapterOptions = field(default_factory=AdapterOptions)


class _Reply(Exception):
    """Abort a request with an OTLP-style error response."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def make_app(publisher: EventPublisher, config: ReceiverConfig | None = None) -> web.Application:
    """The aiohttp application; the caller owns the publisher's start/stop."""
    cfg = config or ReceiverConfig()
    stats = ReceiverStats()
    app = web.Application(client_max_size=cfg.max_body_bytes)
    app[STATS] = stats

    async def traces(request: web.Request) -> web.StreamResponse:
        ctype = request.content_type
        try:
            if ctype not in (JSON, PROTOBUF):
                raise _Reply(415, f"unsupported content type {ctype!r}: send {JSON} or {PROTOBUF}")
            body = await _read_body(request, cfg.max_body_bytes)
            payload: Any = body if ctype == PROTOBUF else _json(body)
            result = await asyncio.to_thread(_adapt, "otlp", payload, cfg.options)  # keep the loop answering
            await _publish(publisher, result, "http:/v1/traces", stats)
        except _Reply as reply:
            return _status_response(reply, ctype, stats)
        return _traces_ok(result, ctype, stats)

    async def events(request: web.Request) -> web.StreamResponse:
        fmt = request.query.get("format", "native")
        try:
            if fmt not in FORMATS:
                raise _Reply(400, f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
            if request.content_type not in (JSON, NDJSON, PROTOBUF if fmt == "otlp" else JSON):
                raise _Reply(415, f"unsupported content type {request.content_type!r} for format {fmt}")
            body = await _read_body(request, cfg.max_body_bytes)
            context = {k: request.query[k] for k in CONTEXT_PARAMS if request.query.get(k)}
            options = replace(cfg.options, context={**cfg.options.context, **context})
            result = await asyncio.to_thread(_adapt_body, fmt, body, request.content_type, options)
            await _publish(publisher, result, f"http:/v1/events?format={fmt}", stats)
        except _Reply as reply:
            return _status_response(reply, JSON, stats)
        stats.requests += 1
        stats.by_status[200] = stats.by_status.get(200, 0) + 1
        return web.json_response({"accepted": len(result.events), "rejected": len(result.errors),
                                  "skipped": result.skipped, "errors": [e.to_dict() for e in result.errors[:50]]},
                                 dumps=lambda v: orjson.dumps(v).decode())

    async def stats_page(_request: web.Request) -> web.StreamResponse:
        body = {k: getattr(stats, k) for k in stats.__slots__} | {
            "publisher_pending": publisher.pending, "publisher_max_pending": publisher.max_pending_events}
        return web.json_response(body, dumps=lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode())

    app.router.add_post("/v1/traces", traces)
    app.router.add_post("/v1/events", events)
    app.router.add_get("/v1/stats", stats_page)
    return app


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise _Reply(413, f"body of {request.content_length} bytes exceeds the {limit}-byte limit; "
                          "export smaller batches")
    try:
        body = await request.read()  # aiohttp inflates gzip/deflate bodies; the limit applies inflated
    except web.HTTPRequestEntityTooLarge as exc:
        raise _Reply(413, f"body exceeds the {limit}-byte limit (after decompression); "
                          "export smaller batches") from exc
    except RequestPayloadError as exc:
        raise _Reply(400, f"body could not be read: {exc.args[0] if exc.args else exc} "
                          f"(Content-Encoding {request.headers.get('Content-Encoding', 'identity')!r})") from exc
    return body


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _Reply(400, f"body is not valid JSON: {exc}") from exc


def _adapt_body(fmt: str, body: bytes, ctype: str, options: AdapterOptions) -> AdapterResult:
    """One JSON document, or NDJSON (one payload per line, as LiteLLM's ``log_format: ndjson`` sends)."""
    if ctype == PROTOBUF:
        return _adapt(fmt, body, options)
    if ctype != NDJSON:
        try:
            return _adapt(fmt, orjson.loads(body), options)
        except orjson.JSONDecodeError as exc:
            if body.strip().count(b"\n") == 0:
                raise _Reply(400, f"body is not valid JSON: {exc}") from exc
    units = split_ndjson(body)
    if not units or all(u.error is not None for u in units):
        raise _Reply(400, "body is neither a JSON document nor NDJSON with at least one JSON line")
    return adapt_units(units, fmt, options)


def _adapt(fmt: str, payload: Any, options: AdapterOptions) -> AdapterResult:
    try:
        return adapt(fmt, payload, options)
    except PayloadError as exc:
        raise _Reply(400, str(exc)) from exc


async def _publish(publisher: EventPublisher, result: AdapterResult, origin: str, stats: ReceiverStats) -> None:
    n = len(result.events) + len(result.errors)
    if not publisher.has_capacity(n):
        stats.throttled += 1
        raise _Reply(503, f"ingest buffer full ({publisher.pending} events awaiting Kafka); retry later",
                     {"Retry-After": str(RETRY_AFTER_S)})
    try:
        if result.errors:
            await publisher.deadletter(result.errors, origin)
        receipt = await publisher.publish(result.events, origin)
    except KafkaError as exc:
        stats.kafka_errors += 1
        raise _Reply(503, f"Kafka unavailable: {exc}; retry later", {"Retry-After": str(RETRY_AFTER_S)}) from exc
    result.errors.extend(receipt.rejected)
    stats.accepted += receipt.events
    stats.rejected += len(result.errors)
    stats.skipped += result.skipped


def _traces_ok(result: AdapterResult, ctype: str, stats: ReceiverStats) -> web.Response:
    stats.requests += 1
    stats.by_status[200] = stats.by_status.get(200, 0) + 1
    response = ExportTraceServiceResponse()
    if result.errors:
        response.partial_success.rejected_spans = len(result.errors)
        shown = "; ".join(f"span #{e.index}: {e.error}" for e in result.errors[:5])
        more = len(result.errors) - 5
        response.partial_success.error_message = shown + (f"; and {more} more" if more > 0 else "") + \
            " (dead-lettered)"
    if ctype == PROTOBUF:
        return web.Response(body=response.SerializeToString(), content_type=PROTOBUF)
    body: dict[str, Any] = {}
    if result.errors:
        body["partialSuccess"] = {"rejectedSpans": response.partial_success.rejected_spans,
                                  "errorMessage": response.partial_success.error_message}
    return web.Response(body=orjson.dumps(body), content_type=JSON)


def _status_response(reply: _Reply, ctype: str, stats: ReceiverStats) -> web.Response:
    stats.requests += 1
    stats.by_status[reply.status] = stats.by_status.get(reply.status, 0) + 1
    counter = {400: "bad_request", 413: "too_large", 415: "unsupported"}.get(reply.status)
    if counter:
        setattr(stats, counter, getattr(stats, counter) + 1)
    code = {400: 3, 413: 8, 415: 3, 503: 14}.get(reply.status, 2)  # google.rpc.Code
    if ctype == PROTOBUF:
        body = status_pb2.Status(code=code, message=reply.message).SerializeToString()
        return web.Response(status=reply.status, body=body, content_type=PROTOBUF, headers=reply.headers)
    return web.Response(status=reply.status, body=orjson.dumps({"code": code, "message": reply.message}),
                        content_type=JSON, headers=reply.headers)
