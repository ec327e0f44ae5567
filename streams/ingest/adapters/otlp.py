"""OpenTelemetry GenAI spans (OTLP ``ExportTraceServiceRequest``) -> events.

One span is one event. The GenAI semantic conventions name the operation
(``gen_ai.operation.name``); it decides the event type: chat,
generate_content, text_completion and embeddings are inferences,
``execute_tool`` is a tool call, ``invoke_agent``/``create_agent`` are agent
steps. Spans that carry no ``gen_ai.*`` attribute at all (HTTP client spans
exported alongside) are not GenAI spans: they are counted in ``skipped``, not
forwarded and not rejected. The field-by-field table is in docs/ingestion.md.
"""

from __future__ import annotations

from typing import Any

import orjson

from schemas.deadletter import DeadLetterReason
from streams.ingest.adapters import actions
from streams.ingest.adapters.base import (
    DEFAULT_OPTIONS,
    AdapterOptions,
    AdapterResult,
    PayloadError,
    dumps,
    finalize,
    iso_from_ns,
    refuse,
    sha256_hex,
    stable_event_id,
)
from streams.ingest.adapters.otlp_wire import attributes, decode_protobuf

EVENT_TYPES = {
    "chat": "inference", "generate_content": "inference", "text_completion": "inference",
    "embeddings": "inference", "execute_tool": "tool_call",
    "invoke_agent": "agent_step", "create_agent": "agent_step",
}
STATUS_ERROR = (2, "STATUS_CODE_ERROR")

# attribute -> Event field, taken as they are
DIRECT = {
    "gen_ai.operation.name": "operation",
    "gen_ai.request.model": "request_model",
    "gen_ai.response.model": "response_model",
    "gen_ai.conversation.id": "conversation_id",
    "gen_ai.agent.name": "agent_name",
    "gen_ai.agent.version": "agent_version",
    "gen_ai.tool.name": "tool_name",
    "gen_ai.tool.type": "tool_type",
    "gen_ai.tool.call.id": "tool_call_id",
    "error.type": "error_type",
}
# first attribute present wins
TOKENS = {
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    "reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.output_tokens.reasoning",
                         "gen_ai.usage.reasoning_tokens"),
    "cached_tokens": ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.input_tokens.cached",
                      "gen_ai.usage.cache_read_input_tokens"),
}
PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
RESOURCE = {
    "overseer.tenant_id": "tenant_id",
    "overseer.deployment_id": "deployment_id",
    "deployment.environment.name": "environment",
    "deployment.environment": "environment",
    "cloud.region": "region",
}
CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
                "gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "gen_ai.prompt", "gen_ai.completion")


def adapt(payload: dict[str, Any] | bytes, options: AdapterOptions = DEFAULT_OPTIONS) -> AdapterResult:
    """Map one export (a decoded OTLP/JSON dict, or protobuf bytes) to events."""
    export = decode_protobuf(payload) if isinstance(payload, (bytes, bytearray)) else payload
    if not isinstance(export, dict) or not isinstance(export.get("resourceSpans", []), list):
        raise PayloadError("an OTLP trace export is an object with a 'resourceSpans' list")
    result = AdapterResult()
    index = 0
    for rs in export.get("resourceSpans") or []:
        resource = (rs or {}).get("resource") or {}
        try:
            res_attrs = attributes(resource.get("attributes", []))
        except ValueError as exc:
            raise PayloadError(f"resource attributes: {exc}") from exc
        for ss in (rs or {}).get("scopeSpans") or []:
            scope = (ss or {}).get("scope") or {}
            for span in (ss or {}).get("spans") or []:
                raw = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": scope, "spans": [span]}]}]}
                _one(span, res_attrs, scope, options, index, raw, result)
                index += 1
    return result


def _one(span: Any, res_attrs: dict[str, Any], scope: dict[str, Any], options: AdapterOptions,
         index: int, raw: Any, result: AdapterResult) -> None:
    if not isinstance(span, dict):
        refuse(result, index, DeadLetterReason.not_an_object, "a span must be an object", raw)
        return
    try:
        attrs = attributes(span.get("attributes", []))
        start = int(span["startTimeUnixNano"])
        end = int(span.get("endTimeUnixNano") or 0)
    except (KeyError, TypeError, ValueError) as exc:
        refuse(result, index, DeadLetterReason.schema_violation,
               f"span {span.get('spanId', '?')}: unreadable ({type(exc).__name__}: {exc})", raw)
        return
    operation = attrs.get("gen_ai.operation.name") or _operation_from_name(span.get("name"))
    if operation is None and not any(k.startswith("gen_ai.") for k in attrs):
        result.skipped += 1
        return
    try:
        draft = _draft(span, attrs, operation, start, end, options)
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:  # costs only this span
        refuse(result, index, DeadLetterReason.schema_violation,
               f"span {span.get('spanId', '?')}: malformed ({type(exc).__name__}: {exc})", raw)
        return
    _resource(draft, res_attrs)
    if scope.get("name"):
        draft["attributes"]["otel.scope.name"] = str(scope["name"])
    finalize(draft, index, raw, result, options)


def _draft(span: dict[str, Any], attrs: dict[str, Any], operation: str | None, start: int, end: int,
           options: AdapterOptions) -> dict[str, Any]:
    trace_id, span_id = span.get("traceId") or None, span.get("spanId") or None
    explicit, used = actions.explicit_descriptors(attrs)
    draft: dict[str, Any] = {
        "event_id": stable_event_id(start // 1_000_000, trace_id, span_id, start),
        "event_type": attrs.get("overseer.event_type") or _event_type(operation, attrs),
        "ts": iso_from_ns(start),
        "trace_id": trace_id, "span_id": span_id, "parent_span_id": span.get("parentSpanId") or None,
        "agent_run_id": trace_id,
        "latency_ms": (end - start) / 1e6 if end >= start > 0 else None,
        "provider": next((attrs[k] for k in PROVIDER if k in attrs), None),
    }
    for key, fieldname in DIRECT.items():
        if key in attrs:
            draft[fieldname] = attrs[key]
    draft["operation"] = operation
    for fieldname, keys in TOKENS.items():
        draft[fieldname] = next((attrs[k] for k in keys if k in attrs), None)
    reasons = attrs.get("gen_ai.response.finish_reasons")
    if reasons is not None:
        draft["finish_reasons"] = [str(r) for r in (reasons if isinstance(reasons, list) else [reasons])]
    draft["request_params"] = {k.removeprefix("gen_ai.request."): v for k, v in attrs.items()
                               if k.startswith("gen_ai.request.") and k != "gen_ai.request.model"}
    status = _status(span)
    if status.get("code") in STATUS_ERROR and not draft.get("error_type"):
        draft["error_type"] = _exception_type(span.get("events")) or "span_status_error"
    _tool(draft, attrs, options)
    _content(draft, attrs, options)
    draft.update(explicit)
    draft["attributes"] = _leftovers(span, attrs, set(used), options)
    return draft


def _status(span: dict[str, Any]) -> dict[str, Any]:
    status = span.get("status")
    return status if isinstance(status, dict) else {}


def _event_type(operation: str | None, attrs: dict[str, Any]) -> str:
    if operation in EVENT_TYPES:
        return EVENT_TYPES[operation]
    return "tool_call" if "gen_ai.tool.name" in attrs else "inference"


def _exception_type(events: Any) -> str | None:
    """``exception.type`` of the span's ``exception`` event: the semconv fallback for ``error.type``."""
    for ev in events or []:
        if isinstance(ev, dict) and ev.get("name") == "exception":
            try:
                value = attributes(ev.get("attributes", [])).get("exception.type")
            except ValueError:
                return None
            return str(value) if value else None
    return None


def _operation_from_name(name: Any) -> str | None:
    """Span names are ``"{operation} {target}"`` in the conventions; trust only known operations."""
    if isinstance(name, str) and name.split(" ", 1)[0] in EVENT_TYPES:
        return name.split(" ", 1)[0]
    return None


def _tool(draft: dict[str, Any], attrs: dict[str, Any], options: AdapterOptions) -> None:
    arguments = attrs.get("gen_ai.tool.call.arguments")
    parsed: dict[str, Any] | None = None
    if isinstance(arguments, dict):
        parsed, arguments = arguments, dumps(arguments).decode()
    elif isinstance(arguments, str):
        try:
            loaded = orjson.loads(arguments)
            parsed = loaded if isinstance(loaded, dict) else None
        except orjson.JSONDecodeError:
            parsed = None
    draft.update(actions.argument_fields(arguments, options))
    if draft.get("tool_name") or parsed:
        draft.update(actions.infer_action(draft.get("tool_name"), parsed))


def _content(draft: dict[str, Any], attrs: dict[str, Any], options: AdapterOptions) -> None:
    output = attrs.get("gen_ai.output.messages", attrs.get("gen_ai.tool.call.result", attrs.get("gen_ai.completion")))
    if output is not None:
        draft.update(actions.content_fields(output if isinstance(output, str) else dumps(output).decode(), options))
    system = attrs.get("gen_ai.system_instructions")
    if system is not None:
        draft["system_prompt_hash"] = sha256_hex(system if isinstance(system, str) else dumps(system))


def _resource(draft: dict[str, Any], res_attrs: dict[str, Any]) -> None:
    for key, fieldname in RESOURCE.items():
        if key in res_attrs and fieldname not in draft:
            draft[fieldname] = str(res_attrs[key])
    service = res_attrs.get("service.name")
    if service is not None:
        draft.setdefault("deployment_id", str(service))
    for key, value in res_attrs.items():
        if key not in RESOURCE:
            draft["attributes"][f"resource.{key}"] = _text(value)


def _leftovers(span: dict[str, Any], attrs: dict[str, Any], used: set[str], options: AdapterOptions) -> dict[str, str]:
    """Everything not mapped to a field is kept as a string; content only as a hash unless opted in."""
    mapped = set(DIRECT) | {k for keys in TOKENS.values() for k in keys} | set(PROVIDER) | used
    mapped |= {"gen_ai.response.finish_reasons", "overseer.event_type"}
    out: dict[str, str] = {}
    for key, value in attrs.items():
        if key in mapped or key.startswith("gen_ai.request.") and key != "gen_ai.request.model":
            continue
        if key in CONTENT_KEYS:
            if options.keep_content and key == "gen_ai.input.messages":
                out[key] = _text(value)
            if key == "gen_ai.input.messages":
                out["input_hash"] = sha256_hex(_text(value))
            continue
        out[key] = _text(value)
    if span.get("name"):
        out["otel.span_name"] = str(span["name"])
    status = _status(span)
    if status.get("message"):
        out["otel.status_message"] = str(status["message"])
    if isinstance(span.get("events"), list) and span["events"]:
        out["otel.span_events"] = dumps(_span_events(span["events"], options)).decode()
    return out


def _span_events(events: list[Any], options: AdapterOptions) -> list[dict[str, Any]]:
    """Span events as a JSON list; the text of ``gen_ai.*`` events is hashed unless content is kept."""
    out = []
    for ev in events:
        if not isinstance(ev, dict):
            continue
        name = str(ev.get("name", ""))
        try:
            ev_attrs = attributes(ev.get("attributes", []))
        except ValueError:
            ev_attrs = {}
        if name.startswith("gen_ai.") and not options.keep_content:
            ev_attrs = {k: sha256_hex(_text(v)) if isinstance(v, (str, dict, list)) else v
                        for k, v in ev_attrs.items()}
        out.append({"name": name, "time_unix_nano": int(ev.get("timeUnixNano") or 0), "attributes": ev_attrs})
    return out


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return dumps(value).decode()
