"""LiteLLM StandardLoggingPayload -> an inference event plus one tool_call event per tool call."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from schemas.events import Event
from streams.ingest.adapters import AdapterOptions, PayloadError, adapt


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_all_events_validate(litellm_payloads: list[dict[str, Any]]) -> None:
    r = adapt("litellm", litellm_payloads)
    assert r.errors == []
    assert [e["event_type"] for e in r.events] == ["inference", "tool_call", "tool_call", "inference", "tool_call",
                                                   "inference"]
    for e in r.events:
        assert Event.model_validate(e).model_dump(mode="json", exclude_none=True) == e


def test_inference_fields(litellm_payloads: list[dict[str, Any]]) -> None:
    e = adapt("litellm", litellm_payloads[0]).events[0]
    assert e["ts"] == "2026-11-27T10:00:00.125000Z"
    assert (e["operation"], e["provider"], e["request_model"], e["response_model"]) == (
        "chat", "openai", "gpt-4o", "gpt-4o-2024-08-06")
    assert (e["input_tokens"], e["output_tokens"], e["cached_tokens"], e["reasoning_tokens"]) == (1533, 169, 1024, 0)
    assert e["latency_ms"] == pytest.approx(1750.0) and e["ttft_ms"] == pytest.approx(485.0, abs=1e-3)
    assert e["finish_reasons"] == ["tool_calls"] and e["is_refusal"] is False
    assert e["request_params"] == {"temperature": 0.2, "max_tokens": 1024, "stop": ["</done>"]}
    # caller identity: org -> tenant, explicit overseer.deployment_id beats the key alias
    assert (e["tenant_id"], e["deployment_id"]) == ("acme", "atlas-7b-prod")
    assert (e["agent_run_id"], e["conversation_id"]) == ("run-7c2e9a41-atlas", "sess-4411")
    a = e["attributes"]
    assert (a["litellm.response_cost"], a["litellm.model_group"], a["litellm.call_type"]) == (
        "0.0041275", "gpt-4o", "acompletion")
    assert a["litellm.api_base"] == "https://api.openai.com/v1/" and a["litellm.cache_hit"] == "false"
    assert a["litellm.metadata.user_api_key_team_id"] == "team-safety-research"
    assert a["litellm.requester_metadata.environment"] == "prod"
    assert "litellm.requester_metadata.overseer.deployment_id" not in a
    assert a["litellm.request_tags"] == '["agent","atlas"]'
    assert a["input_hash"] == sha(json.dumps(litellm_payloads[0]["messages"], separators=(",", ":")))
    assert "content" not in e and "clean up the old database" not in json.dumps(e)


def test_tool_calls_become_events(litellm_payloads: list[dict[str, Any]]) -> None:
    inference, weights, bash = adapt("litellm", litellm_payloads[0]).events
    assert weights["ts"] == bash["ts"] == "2026-11-27T10:00:01.875000Z"  # asked for when the answer came
    assert (weights["tool_name"], weights["tool_call_id"], weights["action_category"], weights["resource"]) == (
        "read_file", "call_VSPygqKTWdrhaFErNvMV18Yl", "weights_access", "/models/atlas-7b/ckpt-0042/model.safetensors")
    assert (bash["tool_name"], bash["action_category"], bash["tool_type"]) == ("bash", "exec", "function")
    args = litellm_payloads[0]["response"]["choices"][0]["message"]["tool_calls"][1]["function"]["arguments"]
    assert bash["tool_arguments_hash"] == sha(args) and "tool_arguments" not in bash
    for tool in (weights, bash):
        assert (tool["agent_run_id"], tool["tenant_id"], tool["deployment_id"]) == (
            "run-7c2e9a41-atlas", "acme", "atlas-7b-prod")
        assert tool["attributes"]["overseer.derived_from"] == "model_response.tool_calls"
    assert len({inference["event_id"], weights["event_id"], bash["event_id"]}) == 3


def test_egress_size_from_arguments(litellm_payloads: list[dict[str, Any]]) -> None:
    inference, post = adapt("litellm", litellm_payloads[1]).events
    assert (inference["provider"], inference["deployment_id"], inference["content_hash"]) == (
        "anthropic", "atlas-agent-prod", sha("Uploading now."))
    assert (post["action_category"], post["dest_host"], post["egress_bytes"]) == (
        "net_egress", "drop.unknown-host.example", 4_000_000_000)


def test_failure(litellm_payloads: list[dict[str, Any]]) -> None:
    (e,) = adapt("litellm", litellm_payloads[2]).events
    assert e["error_type"] == "RateLimitError" and e["tenant_id"] == "team-safety-research"
    assert e["attributes"]["litellm.error_str"].startswith("litellm.RateLimitError")
    assert e["attributes"]["litellm.status"] == "failure" and e["finish_reasons"] == []


def test_keep_content(litellm_payloads: list[dict[str, Any]]) -> None:
    inference, post = adapt("litellm", litellm_payloads[1], AdapterOptions(keep_content=True)).events
    assert inference["content"] == "Uploading now."
    assert "Upload the export" in inference["attributes"]["input_messages"]
    assert json.loads(post["tool_arguments"])["content_length"] == 4_000_000_000


def test_same_payload_same_ids(litellm_payloads: list[dict[str, Any]]) -> None:
    ids = [e["event_id"] for e in adapt("litellm", litellm_payloads).events]
    assert ids == [e["event_id"] for e in adapt("litellm", litellm_payloads).events]


def test_bad_items_reported_per_item(litellm_payloads: list[dict[str, Any]]) -> None:
    litellm_payloads[0]["startTime"] = "yesterday"
    litellm_payloads[1]["prompt_tokens"] = -3
    payload: list[Any] = [*litellm_payloads, {"hello": "world"}, 7]
    r = adapt("litellm", payload)
    assert [(x.index, x.reason) for x in r.errors] == [
        (0, "schema_violation"), (1, "schema_violation"), (3, "not_an_object"), (4, "not_an_object")]
    assert "startTime" in r.errors[0].error and "input_tokens" in r.errors[1].error
    assert [e["event_type"] for e in r.events] == ["tool_call", "inference"]  # item 1's tool call survives


def test_empty_input_is_a_payload_error() -> None:
    with pytest.raises(PayloadError):
        adapt("litellm", [])
