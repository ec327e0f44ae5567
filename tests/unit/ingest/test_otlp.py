"""OTLP GenAI spans (JSON and protobuf) -> events, field by field."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from schemas.events import Event
from streams.ingest.adapters import AdapterOptions, PayloadError, adapt
from streams.ingest.adapters.otlp_wire import decode_protobuf, encode_protobuf

TRACE = "5b8aa5a2d2c872e8321cf37308d69df2"
ROOT = "051581bf3cb55c13"


def by_span(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["span_id"]: e for e in events}


def spans(export: dict[str, Any]) -> list[dict[str, Any]]:
    return export["resourceSpans"][0]["scopeSpans"][0]["spans"]


def test_every_event_validates_and_non_genai_span_is_skipped(otlp_export: dict[str, Any]) -> None:
    r = adapt("otlp", otlp_export)
    assert len(r.events) == 5 and r.errors == [] and r.skipped == 1
    for e in r.events:
        assert Event.model_validate(e).model_dump(mode="json", exclude_none=True) == e


def test_resource_and_correlation(otlp_export: dict[str, Any]) -> None:
    for e in adapt("otlp", otlp_export).events:
        assert (e["tenant_id"], e["deployment_id"], e["environment"], e["region"]) == (
            "acme", "atlas-7b-prod", "prod", "eu-west-1")
        assert e["trace_id"] == TRACE and e["agent_run_id"] == TRACE
        assert e["attributes"]["resource.service.name"] == "atlas-agent-gateway"
        assert e["attributes"]["resource.service.version"] == "1.8.0"
        assert e["attributes"]["otel.scope.name"] == "opentelemetry.instrumentation.openai_v2"
        if e["span_id"] != ROOT:
            assert e["parent_span_id"] == ROOT


def test_service_name_is_the_deployment_when_not_given(otlp_export: dict[str, Any]) -> None:
    res = otlp_export["resourceSpans"][0]["resource"]["attributes"]
    res[:] = [a for a in res if a["key"] not in ("overseer.deployment_id", "deployment.environment.name")]
    res.append({"key": "deployment.environment", "value": {"stringValue": "staging"}})
    e = adapt("otlp", otlp_export).events[0]
    assert (e["deployment_id"], e["environment"]) == ("atlas-agent-gateway", "staging")


def test_agent_step(otlp_export: dict[str, Any]) -> None:
    e = by_span(adapt("otlp", otlp_export).events)[ROOT]
    assert (e["event_type"], e["operation"], e["agent_name"], e["agent_version"]) == (
        "agent_step", "invoke_agent", "research-assistant", "2.3.1")
    assert e["conversation_id"] == "conv_5j66UpCpwteGg4YSxUnt7lPY"
    assert e["attributes"]["gen_ai.agent.id"] == "asst_5j66UpCpwteGg4YSxUnt7lPY"
    assert e["ts"] == "2026-11-27T10:00:00Z" and e["latency_ms"] == 9000.0
    assert "parent_span_id" not in e


def test_chat_span_maps_every_gen_ai_field(otlp_export: dict[str, Any]) -> None:
    e = by_span(adapt("otlp", otlp_export).events)["9f3d1c2b4a5e6f70"]
    assert (e["event_type"], e["operation"], e["provider"]) == ("inference", "chat", "openai")
    assert (e["request_model"], e["response_model"]) == ("gpt-4o", "gpt-4o-2024-08-06")
    assert e["finish_reasons"] == ["tool_calls"]
    assert (e["input_tokens"], e["output_tokens"], e["cached_tokens"], e["reasoning_tokens"]) == (1523, 87, 1024, 0)
    assert e["request_params"] == {"temperature": 0.2, "max_tokens": 1024, "top_p": 0.9}
    assert e["scores"] == {"injection": 0.91, "jailbreak": 0.04}
    assert e["ts"] == "2026-11-27T10:00:00.100000Z" and e["latency_ms"] == 1250.0
    attrs = e["attributes"]
    assert attrs["server.address"] == "api.openai.com" and attrs["server.port"] == "443"
    assert attrs["app.feature"] == "research" and attrs["gen_ai.response.id"].startswith("chatcmpl-")
    assert attrs["otel.span_name"] == "chat gpt-4o"
    # content is hashed by default: no text anywhere
    output = next(a for a in spans(otlp_export)[1]["attributes"] if a["key"] == "gen_ai.output.messages")
    expected = "sha256:" + hashlib.sha256(output["value"]["stringValue"].encode()).hexdigest()
    assert e["content_hash"] == expected and "content" not in e
    assert attrs["input_hash"].startswith("sha256:") and "gen_ai.input.messages" not in attrs
    assert "Summarise" not in json.dumps(e)
    events = json.loads(attrs["otel.span_events"])
    assert events[0]["name"] == "gen_ai.client.inference.operation.details"
    assert events[0]["attributes"]["gen_ai.output.messages"].startswith("sha256:")


def test_keep_content_keeps_text(otlp_export: dict[str, Any]) -> None:
    r = adapt("otlp", otlp_export, AdapterOptions(keep_content=True))
    chat = by_span(r.events)["9f3d1c2b4a5e6f70"]
    assert "read_file" in chat["content"] and "Summarise" in chat["attributes"]["gen_ai.input.messages"]
    tool = by_span(r.events)["b2c3d4e5f6071829"]
    assert json.loads(tool["tool_arguments"]) == {"command": "rm -rf /var/lib/postgresql"}


def test_weights_read_is_inferred(otlp_export: dict[str, Any]) -> None:
    e = by_span(adapt("otlp", otlp_export).events)["a1b2c3d4e5f60718"]
    assert (e["event_type"], e["operation"], e["tool_name"], e["tool_type"]) == (
        "tool_call", "execute_tool", "read_file", "function")
    assert e["tool_call_id"] == "call_VSPygqKTWdrhaFErNvMV18Yl"
    assert e["action_category"] == "weights_access"
    assert e["resource"] == "/models/atlas-7b/ckpt-0042/model.safetensors"
    args = json.dumps({"path": "/models/atlas-7b/ckpt-0042/model.safetensors"})
    assert e["tool_arguments_hash"] == "sha256:" + hashlib.sha256(args.encode()).hexdigest()
    assert "tool_arguments" not in e
    assert e["attributes"]["gen_ai.tool.description"] == "Read a file from the workspace"


def test_destructive_exec_with_explicit_descriptors(otlp_export: dict[str, Any]) -> None:
    e = by_span(adapt("otlp", otlp_export).events)["b2c3d4e5f6071829"]
    assert (e["tool_name"], e["action_category"], e["resource"], e["privilege"], e["step_index"]) == (
        "bash", "exec", "/var/lib/postgresql", "root", 3)
    assert e["error_type"] == "PermissionError"  # status ERROR, no error.type: from the exception event
    assert e["attributes"]["otel.status_message"] == "tool exited with status 1"
    assert json.loads(e["attributes"]["otel.span_events"])[0]["attributes"]["exception.type"] == "PermissionError"
    assert not any(k.startswith("overseer.") for k in e["attributes"])


def test_large_egress(otlp_export: dict[str, Any]) -> None:
    e = by_span(adapt("otlp", otlp_export).events)["c3d4e5f607182930"]
    assert (e["action_category"], e["dest_host"], e["egress_bytes"], e["error_type"]) == (
        "net_egress", "drop.unknown-host.example", 4_000_000_000, "timeout")
    assert e["resource"] == "https://drop.unknown-host.example/upload"


def test_protobuf_maps_identically(otlp_export: dict[str, Any], otlp_protobuf: bytes) -> None:
    assert adapt("otlp", otlp_protobuf).events == adapt("otlp", otlp_export).events
    assert decode_protobuf(encode_protobuf(otlp_export))["resourceSpans"][0]["scopeSpans"][0]["spans"][0][
        "spanId"] == ROOT


def test_same_export_gives_same_event_ids(otlp_export: dict[str, Any]) -> None:
    first = [e["event_id"] for e in adapt("otlp", otlp_export).events]
    assert first == [e["event_id"] for e in adapt("otlp", otlp_export).events]
    assert len(set(first)) == len(first)
    assert all(i[14] == "7" for i in first)  # UUID version 7 layout


def test_span_name_gives_operation_when_attribute_missing(otlp_export: dict[str, Any]) -> None:
    span = spans(otlp_export)[2]
    span["attributes"] = [a for a in span["attributes"] if a["key"] != "gen_ai.operation.name"]
    e = by_span(adapt("otlp", otlp_export).events)[span["spanId"]]
    assert (e["operation"], e["event_type"]) == ("execute_tool", "tool_call")


def test_attribute_value_kinds(otlp_export: dict[str, Any]) -> None:
    span = spans(otlp_export)[2]
    span["attributes"] += [
        {"key": "x.bool", "value": {"boolValue": True}},
        {"key": "x.list", "value": {"arrayValue": {"values": [{"intValue": "1"}, {"doubleValue": 2.5}]}}},
        {"key": "x.map", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}},
        {"key": "gen_ai.tool.call.arguments",
         "value": {"kvlistValue": {"values": [{"key": "path", "value": {"stringValue": "/etc/shadow"}}]}}},
    ]
    e = by_span(adapt("otlp", otlp_export).events)[span["spanId"]]
    assert (e["attributes"]["x.bool"], e["attributes"]["x.list"], e["attributes"]["x.map"]) == (
        "true", "[1,2.5]", '{"k":"v"}')
    assert (e["resource"], e["action_category"]) == ("/etc/shadow", "fs_read")  # structured arguments too


def test_bad_spans_are_reported_per_item(otlp_export: dict[str, Any]) -> None:
    s = spans(otlp_export)
    del s[1]["startTimeUnixNano"]
    s[2]["attributes"].append({"key": "gen_ai.usage.input_tokens", "value": {"intValue": "-5"}})
    s[3]["attributes"].append({"key": "overseer.action_category", "value": {"stringValue": "teleport"}})
    s.append("not a span")
    r = adapt("otlp", otlp_export)
    assert len(r.events) == 2
    assert [(x.index, x.reason) for x in r.errors] == [
        (1, "schema_violation"), (2, "schema_violation"), (3, "schema_violation"), (6, "not_an_object")]
    assert "startTimeUnixNano" in r.errors[0].error
    assert "input_tokens" in r.errors[1].error and "action_category" in r.errors[2].error
    replay = json.loads(r.errors[1].raw)  # a dead letter is a one-span export, replayable as it is
    assert replay["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] == s[2]["spanId"]
    assert replay["resourceSpans"][0]["resource"] == otlp_export["resourceSpans"][0]["resource"]


@pytest.mark.parametrize("payload", [{"resourceSpans": "nope"}, [1, 2], b"\xff\xff\xff garbage"])
def test_unreadable_export_raises_payload_error(payload: Any) -> None:
    with pytest.raises(PayloadError):
        adapt("otlp", payload)


def test_context_fills_missing_fields_only(otlp_export: dict[str, Any]) -> None:
    r = adapt("otlp", otlp_export, AdapterOptions(context={"deployment_id": "other", "model_checkpoint": "ck-9"}))
    assert {(e["deployment_id"], e["model_checkpoint"]) for e in r.events} == {("atlas-7b-prod", "ck-9")}


def test_keep_arguments_keeps_only_arguments(otlp_export: dict[str, Any]) -> None:
    r = adapt("otlp", otlp_export, AdapterOptions(keep_arguments=True))
    tool = by_span(r.events)["b2c3d4e5f6071829"]
    assert json.loads(tool["tool_arguments"]) == {"command": "rm -rf /var/lib/postgresql"}
    chat = by_span(r.events)["9f3d1c2b4a5e6f70"]
    assert "content" not in chat and "gen_ai.input.messages" not in chat["attributes"]
