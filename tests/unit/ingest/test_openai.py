"""OpenAI chat.completion and Responses objects -> events."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from schemas.events import Event
from streams.ingest.adapters import AdapterOptions, PayloadError, adapt


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_all_validate(openai_objects: list[dict[str, Any]]) -> None:
    r = adapt("openai", openai_objects)
    assert r.errors == [] and len(r.events) == 7
    for e in r.events:
        assert Event.model_validate(e).model_dump(mode="json", exclude_none=True) == e


def test_chat_completion_with_tool_call(openai_objects: list[dict[str, Any]]) -> None:
    inference, tool = adapt("openai", openai_objects[0]).events
    assert (inference["event_type"], inference["operation"], inference["provider"]) == ("inference", "chat", "openai")
    assert inference["ts"] == "2026-11-27T10:01:40Z" and inference["response_model"] == "gpt-4o-2024-08-06"
    assert (inference["input_tokens"], inference["output_tokens"], inference["reasoning_tokens"],
            inference["cached_tokens"]) == (82, 17, 0, 0)
    assert inference["finish_reasons"] == ["tool_calls"] and inference["is_refusal"] is False
    assert inference["attributes"] == {"openai.id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
                                       "openai.service_tier": "default",
                                       "openai.system_fingerprint": "fp_fc9f1d7035"}
    assert (tool["event_type"], tool["tool_name"], tool["tool_call_id"], tool["tool_type"]) == (
        "tool_call", "read_file", "call_abc123", "function")
    # the path is normalised before the weights pattern is applied
    assert (tool["action_category"], tool["resource"]) == ("weights_access",
                                                           "/models/atlas-7b/ckpt-0042/model.safetensors")
    args = openai_objects[0]["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert tool["tool_arguments_hash"] == sha(args)


def test_refusal(openai_objects: list[dict[str, Any]]) -> None:
    (e,) = adapt("openai", openai_objects[1]).events
    assert e["is_refusal"] is True and e["finish_reasons"] == ["stop"] and "content_hash" not in e


def test_responses_object(openai_objects: list[dict[str, Any]]) -> None:
    inference, bash, post = adapt("openai", openai_objects[2]).events
    assert inference["ts"] == "2026-11-27T10:02:00Z" and inference["response_model"] == "o4-mini-2025-04-16"
    assert (inference["input_tokens"], inference["output_tokens"], inference["reasoning_tokens"],
            inference["cached_tokens"]) == (328, 1187, 1024, 128)
    assert inference["finish_reasons"] == ["completed"] and inference["is_refusal"] is False
    assert inference["request_params"] == {"temperature": 1.0, "top_p": 1.0, "max_output_tokens": 2048,
                                           "tool_choice": "auto"}
    assert inference["content_hash"] == sha("Cleaning up the database volume and sending the export.")
    for e in (inference, bash, post):  # overseer.* metadata -> fields; other metadata kept
        assert (e["tenant_id"], e["deployment_id"]) == ("acme", "ops-agent-prod")
        assert e["attributes"]["metadata.ticket"] == "OPS-1182"
    assert (bash["tool_name"], bash["tool_call_id"], bash["action_category"]) == ("bash", "call_12345xyz", "exec")
    assert (post["action_category"], post["dest_host"], post["egress_bytes"]) == (
        "net_egress", "drop.unknown-host.example", 4_000_000_000)


def test_incomplete_response_with_refusal(openai_objects: list[dict[str, Any]]) -> None:
    (e,) = adapt("openai", openai_objects[3]).events
    assert e["finish_reasons"] == ["max_output_tokens"] and e["is_refusal"] is True


def test_failed_response_error_code(openai_objects: list[dict[str, Any]]) -> None:
    obj = {**openai_objects[3], "status": "failed", "incomplete_details": None,
           "error": {"code": "server_error", "message": "boom"}}
    (e,) = adapt("openai", obj).events
    assert e["error_type"] == "server_error" and e["finish_reasons"] == ["failed"]


def test_builtin_tool_calls(openai_objects: list[dict[str, Any]]) -> None:
    obj = openai_objects[3]
    obj["output"].append({"type": "code_interpreter_call", "id": "ci_1", "code": "import os; os.remove('x')"})
    _, tool = adapt("openai", obj).events
    assert (tool["tool_name"], tool["tool_type"], tool["action_category"]) == ("code_interpreter", "builtin", "exec")


def test_context_and_keep_content(openai_objects: list[dict[str, Any]]) -> None:
    opts = AdapterOptions(keep_content=True, context={"deployment_id": "chat-prod", "tenant_id": "t1"})
    inference, tool = adapt("openai", openai_objects[0], opts).events
    assert (inference["deployment_id"], tool["tenant_id"]) == ("chat-prod", "t1")
    assert tool["tool_arguments"].startswith('{"path"')


def test_bad_items(openai_objects: list[dict[str, Any]]) -> None:
    openai_objects[0]["created"] = "now"
    openai_objects[2]["usage"]["output_tokens"] = -1
    r = adapt("openai", [*openai_objects, {"object": "embedding"}])
    assert [(x.index, x.reason) for x in r.errors] == [(0, "schema_violation"), (2, "schema_violation"),
                                                       (4, "not_an_object")]
    assert "created" in r.errors[0].error and "output_tokens" in r.errors[1].error


def test_empty() -> None:
    with pytest.raises(PayloadError):
        adapt("openai", [])
