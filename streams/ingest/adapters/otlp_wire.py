"""OTLP wire formats -> one plain form: the OTLP/JSON shape, with attributes decoded.

The JSON and protobuf encodings of ``ExportTraceServiceRequest`` carry the
same data. Protobuf is converted into the OTLP/JSON shape (hex ids, integer
nanoseconds) so the mapping in :mod:`streams.ingest.adapters.otlp` is
written once. :func:`attributes` turns the ``[{"key", "value": AnyValue}]``
list into a plain dict of Python values.
"""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2

from streams.ingest.adapters.base import PayloadError


def any_value(value: Any) -> Any:
    """Decode one OTLP/JSON ``AnyValue`` (int64 may arrive as a JSON string)."""
    if not isinstance(value, dict):
        return value
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [any_value(v) for v in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return attributes((value["kvlistValue"] or {}).get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]  # base64 text, kept as is
    return None


def attributes(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        raise ValueError("attributes must be a list of {key, value}")
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ValueError(f"attribute without a string key: {item!r:.80}")
        out[item["key"]] = any_value(item.get("value"))
    return out


def decode_protobuf(body: bytes) -> dict[str, Any]:
    """An ``application/x-protobuf`` body -> the OTLP/JSON dict shape."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise PayloadError(f"not an OTLP ExportTraceServiceRequest protobuf: {exc}") from exc
    return {"resourceSpans": [_resource_spans(rs) for rs in request.resource_spans]}


def _resource_spans(rs: Any) -> dict[str, Any]:
    return {
        "resource": {"attributes": _kvs(rs.resource.attributes)},
        "scopeSpans": [
            {"scope": {"name": ss.scope.name, "version": ss.scope.version},
             "spans": [_span(span) for span in ss.spans]}
            for ss in rs.scope_spans
        ],
    }


def _span(span: Any) -> dict[str, Any]:
    return {
        "traceId": span.trace_id.hex(),
        "spanId": span.span_id.hex(),
        "parentSpanId": span.parent_span_id.hex(),
        "name": span.name,
        "kind": span.kind,
        "startTimeUnixNano": span.start_time_unix_nano,
        "endTimeUnixNano": span.end_time_unix_nano,
        "attributes": _kvs(span.attributes),
        "events": [{"timeUnixNano": ev.time_unix_nano, "name": ev.name, "attributes": _kvs(ev.attributes)}
                   for ev in span.events],
        "status": {"code": span.status.code, "message": span.status.message},
    }


def _kvs(kvs: Any) -> list[dict[str, Any]]:
    return [{"key": kv.key, "value": _pb_any(kv.value)} for kv in kvs]


def _pb_any(value: common_pb2.AnyValue) -> dict[str, Any]:
    which = value.WhichOneof("value")
    if which == "string_value":
        return {"stringValue": value.string_value}
    if which == "bool_value":
        return {"boolValue": value.bool_value}
    if which == "int_value":
        return {"intValue": value.int_value}
    if which == "double_value":
        return {"doubleValue": value.double_value}
    if which == "array_value":
        return {"arrayValue": {"values": [_pb_any(v) for v in value.array_value.values]}}
    if which == "kvlist_value":
        return {"kvlistValue": {"values": _kvs(value.kvlist_value.values)}}
    if which == "bytes_value":
        return {"bytesValue": base64.b64encode(value.bytes_value).decode()}
    return {}


def encode_protobuf(export: dict[str, Any]) -> bytes:
    """The OTLP/JSON dict shape -> protobuf bytes (the inverse of :func:`decode_protobuf`).

    Used to write ``.pb`` samples and by clients that hold OTLP/JSON but must
    speak ``application/x-protobuf``.
    """
    request = ExportTraceServiceRequest()
    for rs in export.get("resourceSpans", []):
        out_rs = request.resource_spans.add()
        _fill_kvs(out_rs.resource.attributes, (rs.get("resource") or {}).get("attributes", []))
        for ss in rs.get("scopeSpans", []):
            out_ss = out_rs.scope_spans.add()
            scope = ss.get("scope") or {}
            out_ss.scope.name, out_ss.scope.version = scope.get("name", ""), scope.get("version", "")
            for span in ss.get("spans", []):
                _fill_span(out_ss.spans.add(), span)
    return request.SerializeToString()


def _fill_span(out: Any, span: dict[str, Any]) -> None:
    out.trace_id = bytes.fromhex(span.get("traceId", ""))
    out.span_id = bytes.fromhex(span.get("spanId", ""))
    out.parent_span_id = bytes.fromhex(span.get("parentSpanId", ""))
    out.name = span.get("name", "")
    out.kind = int(span.get("kind", 0))
    out.start_time_unix_nano = int(span.get("startTimeUnixNano", 0))
    out.end_time_unix_nano = int(span.get("endTimeUnixNano", 0))
    _fill_kvs(out.attributes, span.get("attributes", []))
    for ev in span.get("events", []):
        out_ev = out.events.add()
        out_ev.name, out_ev.time_unix_nano = ev.get("name", ""), int(ev.get("timeUnixNano", 0))
        _fill_kvs(out_ev.attributes, ev.get("attributes", []))
    status = span.get("status") or {}
    out.status.code = int(status.get("code", 0))
    out.status.message = status.get("message", "")


def _fill_kvs(target: Any, items: list[dict[str, Any]]) -> None:
    for item in items:
        kv = target.add()
        kv.key = item["key"]
        _fill_any(kv.value, item.get("value") or {})


def _fill_any(out: common_pb2.AnyValue, value: dict[str, Any]) -> None:
    if "stringValue" in value:
        out.string_value = value["stringValue"]
    elif "intValue" in value:
        out.int_value = int(value["intValue"])
    elif "doubleValue" in value:
        out.double_value = float(value["doubleValue"])
    elif "boolValue" in value:
        out.bool_value = bool(value["boolValue"])
    elif "arrayValue" in value:
        for item in (value["arrayValue"] or {}).get("values", []):
            _fill_any(out.array_value.values.add(), item)
    elif "kvlistValue" in value:
        _fill_kvs(out.kvlist_value.values, (value["kvlistValue"] or {}).get("values", []))
    elif "bytesValue" in value:
        out.bytes_value = base64.b64decode(value["bytesValue"])
