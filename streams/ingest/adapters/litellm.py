"""LiteLLM proxy logging payloads (``StandardLoggingPayload``) -> events.

LiteLLM logs one payload per LLM call, successful or failed. It becomes one
inference event, plus one ``tool_call`` event per tool call in the response
(the response is an OpenAI ``chat.completion``; its parsing is shared with
:mod:`streams.ingest.adapters.openai`). Who called is in ``metadata``: the
virtual key's org/team become ``tenant_id``, its alias the ``deployment_id``,
unless the caller sent explicit ``overseer.*`` keys in ``requester_metadata``.
"""

from __future__ import annotations

from typing import Any

from schemas.deadletter import DeadLetterReason
from streams.ingest.adapters import actions
from streams.ingest.adapters.base import (
    DEFAULT_OPTIONS,
    AdapterOptions,
    AdapterResult,
    PayloadError,
    dumps,
    finalize,
    iso_from_s,
    refuse,
    sha256_hex,
    stable_event_id,
)
from streams.ingest.adapters.openai import chat_fields, tool_call_draft

OPERATIONS = {"completion": "chat", "acompletion": "chat", "text_completion": "text_completion",
              "atext_completion": "text_completion", "embedding": "embeddings", "aembedding": "embeddings",
              "responses": "chat", "aresponses": "chat", "anthropic_messages": "chat"}
SCALAR_KEYS = ("call_type", "response_cost", "model_group", "model_id", "api_base", "cache_hit", "status",
               "total_tokens", "end_user", "requester_ip_address", "saved_cache_cost")
METADATA_KEYS = ("user_api_key_hash", "user_api_key_alias", "user_api_key_team_id", "user_api_key_team_alias",
                 "user_api_key_org_id", "user_api_key_user_id", "user_api_key_end_user_id")
PARAM_TYPES = (str, int, float, bool)


def adapt(payload: dict[str, Any] | list[Any], options: AdapterOptions = DEFAULT_OPTIONS) -> AdapterResult:
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise PayloadError("no LiteLLM payloads in the input")
    result = AdapterResult()
    for index, obj in enumerate(items):
        if not isinstance(obj, dict) or "startTime" not in obj or "id" not in obj:
            refuse(result, index, DeadLetterReason.not_an_object,
                   "expected a LiteLLM StandardLoggingPayload object (with 'id' and 'startTime')", obj)
            continue
        try:
            start = float(obj["startTime"])
        except (TypeError, ValueError):
            refuse(result, index, DeadLetterReason.schema_violation, "'startTime' must be epoch seconds", obj)
            continue
        try:
            _one(obj, start, options, index, result)
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:  # malformed: costs only itself
            refuse(result, index, DeadLetterReason.schema_violation,
                   f"malformed LiteLLM payload ({type(exc).__name__}: {exc})", obj)
    return result


def _one(obj: dict[str, Any], start: float, options: AdapterOptions, index: int, result: AdapterResult) -> None:
    metadata = obj.get("metadata") or {}
    requester = metadata.get("requester_metadata") or {}
    explicit, used = actions.explicit_descriptors(requester)
    base: dict[str, Any] = {
        "ts": iso_from_s(start), "_ts_s": start,
        "provider": obj.get("custom_llm_provider") or (obj.get("hidden_params") or {}).get("custom_llm_provider"),
        "request_model": obj.get("model"),
        "agent_run_id": obj.get("trace_id"),
        "conversation_id": requester.get("session_id") or metadata.get("session_id"),
        "tenant_id": metadata.get("user_api_key_org_id") or metadata.get("user_api_key_team_id"),
        "deployment_id": metadata.get("user_api_key_alias"),
        "attributes": _attributes(obj, metadata, requester, used),
        **explicit,
    }
    fields, calls = chat_fields(obj.get("response") or {}, options) if isinstance(obj.get("response"), dict) \
        else ({}, [])
    end = _float(obj.get("endTime"))
    first = _float(obj.get("completionStartTime"))
    inference = {
        **base, **{k: v for k, v in fields.items() if v is not None},
        "event_type": "inference",
        "event_id": stable_event_id(int(start * 1000), "litellm", obj["id"]),
        "operation": OPERATIONS.get(str(obj.get("call_type")), obj.get("call_type")),
        "input_tokens": obj.get("prompt_tokens", fields.get("input_tokens")),
        "output_tokens": obj.get("completion_tokens", fields.get("output_tokens")),
        "latency_ms": (end - start) * 1000 if end is not None and end >= start else None,
        "ttft_ms": (first - start) * 1000 if first is not None and first >= start else None,
        "request_params": {k: v for k, v in (obj.get("model_parameters") or {}).items()
                           if isinstance(v, PARAM_TYPES) or _scalar_list(v)},
        "error_type": _error_type(obj),
    }
    messages = obj.get("messages")
    if messages:
        text = messages if isinstance(messages, str) else dumps(messages).decode()
        inference["attributes"] = {**inference["attributes"], "input_hash": sha256_hex(text)}
        if options.keep_content:
            inference["attributes"]["input_messages"] = text
    finalize({k: v for k, v in inference.items() if not k.startswith("_")}, index, obj, result, options)
    if end is not None:
        base = {**base, "_ts_s": end, "ts": iso_from_s(end)}  # the model asked for the tools when it answered
    for n, call in enumerate(calls):
        finalize(tool_call_draft(call, base, n, options, "litellm", obj["id"]), index, obj, result, options)


def _attributes(obj: dict[str, Any], metadata: dict[str, Any], requester: dict[str, Any],
                used: list[str]) -> dict[str, str]:
    attrs = {f"litellm.{k}": _text(obj[k]) for k in SCALAR_KEYS if obj.get(k) not in (None, "")}
    attrs["litellm.id"] = str(obj["id"])
    attrs.update({f"litellm.metadata.{k}": str(metadata[k]) for k in METADATA_KEYS if metadata.get(k)})
    attrs.update({f"litellm.requester_metadata.{k}": _text(v) for k, v in requester.items() if k not in used})
    tags = obj.get("request_tags")
    if tags:
        attrs["litellm.request_tags"] = dumps(tags).decode()
    if obj.get("error_str"):
        attrs["litellm.error_str"] = str(obj["error_str"])[:2000]
    return attrs


def _error_type(obj: dict[str, Any]) -> str | None:
    if obj.get("status") != "failure":
        return None
    info = obj.get("error_information") or {}
    return info.get("error_class") or (f"http_{info['error_code']}" if info.get("error_code") else None) or "error"


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _scalar_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, PARAM_TYPES) for v in value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else dumps(value).decode()
