"""OpenAI API objects -> events: ``chat.completion`` and Responses (``object: "response"``).

A response is one inference event. Every tool call the model asked for
(``choices[].message.tool_calls[]`` or ``output[]`` items of type
``function_call`` / ``*_call``) is one more event of type ``tool_call``, with
the arguments hashed (or kept, if content is opted in) and the safety
descriptors inferred from the tool's name and arguments. A ``refusal`` marks
the inference ``is_refusal``. OpenAI objects do not say who called the API:
pass ``AdapterOptions.context`` (``deployment_id``, ``tenant_id``, …), or
``overseer.*`` keys in a Responses object's ``metadata``.
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
    iso_from_s,
    refuse,
    stable_event_id,
)

BUILTIN_CALLS = {"code_interpreter_call": "code_interpreter", "web_search_call": "web_search",
                 "file_search_call": "file_search", "computer_call": "computer",
                 "image_generation_call": "image_generation", "local_shell_call": "shell",
                 "mcp_call": "mcp"}


def adapt(payload: dict[str, Any] | list[Any], options: AdapterOptions = DEFAULT_OPTIONS) -> AdapterResult:
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise PayloadError("no OpenAI objects in the payload")
    result = AdapterResult()
    for index, obj in enumerate(items):
        kind = obj.get("object") if isinstance(obj, dict) else None
        if kind in ("chat.completion", "response"):
            try:
                handler = _chat_completion if kind == "chat.completion" else _response
                handler(obj, options, index, result)
            except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:  # costs only itself
                refuse(result, index, DeadLetterReason.schema_violation,
                       f"malformed {kind} ({type(exc).__name__}: {exc})", obj)
        else:
            refuse(result, index, DeadLetterReason.not_an_object,
                   f"expected an OpenAI object with object='chat.completion' or 'response', got {kind!r}", obj)
    return result


def chat_fields(obj: dict[str, Any], options: AdapterOptions) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Inference fields of a ``chat.completion`` (also LiteLLM's ``response``) and its tool calls."""
    choices = [c for c in obj.get("choices") or [] if isinstance(c, dict)]
    usage = obj.get("usage") or {}
    fields: dict[str, Any] = {
        "response_model": obj.get("model"),
        "finish_reasons": [str(c["finish_reason"]) for c in choices if c.get("finish_reason")],
        "input_tokens": usage.get("prompt_tokens"),
        "output_tokens": usage.get("completion_tokens"),
        "reasoning_tokens": (usage.get("completion_tokens_details") or {}).get("reasoning_tokens"),
        "cached_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
    }
    messages = [c.get("message") or {} for c in choices]
    text = "".join(m.get("content") or "" for m in messages if isinstance(m.get("content"), str))
    fields.update(actions.content_fields(text, options))
    refusals = [m["refusal"] for m in messages if m.get("refusal")]
    fields["is_refusal"] = bool(refusals) if choices else None
    calls = [{"id": tc.get("id"), "type": tc.get("type", "function"), "name": (tc.get("function") or {}).get("name"),
              "arguments": (tc.get("function") or {}).get("arguments")}
             for m in messages for tc in m.get("tool_calls") or [] if isinstance(tc, dict)]
    return fields, calls


def tool_call_draft(call: dict[str, Any], base: dict[str, Any], ordinal: int, options: AdapterOptions,
                    *id_parts: object) -> dict[str, Any]:
    """One requested tool call as its own event, correlated with the inference that asked for it."""
    arguments = call.get("arguments")
    if isinstance(arguments, dict):
        arguments = dumps(arguments).decode()
    parsed = _parse_object(arguments)
    ts_ms = int(base["_ts_s"] * 1000)
    draft = {k: v for k, v in base.items() if not k.startswith("_")}
    draft.update({
        "event_id": stable_event_id(ts_ms, *id_parts, "tool_call", call.get("id") or ordinal),
        "event_type": "tool_call", "tool_name": call.get("name"), "tool_type": call.get("type") or "function",
        "tool_call_id": call.get("id"),
        "attributes": {**draft.get("attributes", {}), "overseer.derived_from": "model_response.tool_calls"},
    })
    draft.update(actions.argument_fields(arguments, options))
    draft.update(actions.infer_action(call.get("name"), parsed))
    return draft


def _chat_completion(obj: dict[str, Any], options: AdapterOptions, index: int, result: AdapterResult) -> None:
    created = obj.get("created")
    if not isinstance(created, (int, float)):
        refuse(result, index, DeadLetterReason.schema_violation, "chat.completion without a numeric 'created'", obj)
        return
    fields, calls = chat_fields(obj, options)
    base = {"provider": "openai", "response_model": obj.get("model"), "ts": iso_from_s(created),
            "_ts_s": float(created),
            "attributes": {"openai.id": str(obj.get("id")), **_scalars(obj, ("service_tier", "system_fingerprint"))}}
    inference = {**base, **fields, "event_type": "inference", "operation": "chat",
                 "event_id": stable_event_id(int(created * 1000), "openai", obj.get("id"))}
    finalize(_public(inference), index, obj, result, options)
    for n, call in enumerate(calls):
        finalize(tool_call_draft(call, base, n, options, "openai", obj.get("id")), index, obj, result, options)


def _response(obj: dict[str, Any], options: AdapterOptions, index: int, result: AdapterResult) -> None:
    created = obj.get("created_at")
    if not isinstance(created, (int, float)):
        refuse(result, index, DeadLetterReason.schema_violation, "response without a numeric 'created_at'", obj)
        return
    output = [item for item in obj.get("output") or [] if isinstance(item, dict)]
    usage = obj.get("usage") or {}
    metadata = obj.get("metadata") or {}
    explicit, used = actions.explicit_descriptors(metadata)
    attrs = {"openai.id": str(obj.get("id")), **_scalars(obj, ("service_tier", "previous_response_id", "user")),
             **{f"metadata.{k}": str(v) for k, v in metadata.items() if k not in used}}
    base: dict[str, Any] = {"provider": "openai", "response_model": obj.get("model"), "ts": iso_from_s(created),
                            "_ts_s": float(created), "conversation_id": (obj.get("conversation") or {}).get("id"),
                            "attributes": attrs, **explicit}
    texts, refusals = _message_parts(output)
    incomplete = (obj.get("incomplete_details") or {}).get("reason")
    error = obj.get("error") or {}
    inference = {
        **base, "event_type": "inference", "operation": "chat",
        "event_id": stable_event_id(int(created * 1000), "openai", obj.get("id")),
        "finish_reasons": [str(incomplete or obj.get("status") or "")] if (incomplete or obj.get("status")) else [],
        "error_type": error.get("code") if isinstance(error, dict) else None,
        "input_tokens": usage.get("input_tokens"), "output_tokens": usage.get("output_tokens"),
        "reasoning_tokens": (usage.get("output_tokens_details") or {}).get("reasoning_tokens"),
        "cached_tokens": (usage.get("input_tokens_details") or {}).get("cached_tokens"),
        "request_params": {k: obj[k] for k in ("temperature", "top_p", "max_output_tokens", "tool_choice")
                           if obj.get(k) is not None and not isinstance(obj[k], (dict, list))},
        "is_refusal": bool(refusals), **actions.content_fields("".join(texts), options),
    }
    finalize(_public(inference), index, obj, result, options)
    for n, call in enumerate(_calls(output)):
        finalize(tool_call_draft(call, base, n, options, "openai", obj.get("id")), index, obj, result, options)


def _message_parts(output: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    texts, refusals = [], []
    for item in output:
        if item.get("type") != "message":
            continue
        for part in item.get("content") or []:
            if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "refusal":
                refusals.append(str(part.get("refusal", "")))
    return texts, refusals


def _calls(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    calls = []
    for item in output:
        kind = item.get("type")
        if kind == "function_call":
            calls.append({"id": item.get("call_id") or item.get("id"), "type": "function",
                          "name": item.get("name"), "arguments": item.get("arguments")})
        elif kind in BUILTIN_CALLS:
            args = item.get("action") or ({"code": item["code"]} if "code" in item else None)
            calls.append({"id": item.get("call_id") or item.get("id"), "type": "builtin",
                          "name": item.get("name") or BUILTIN_CALLS[kind], "arguments": args})
    return calls


def _parse_object(arguments: Any) -> dict[str, Any] | None:
    if not isinstance(arguments, str):
        return None
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _scalars(obj: dict[str, Any], keys: tuple[str, ...]) -> dict[str, str]:
    return {f"openai.{k}": str(obj[k]) for k in keys if obj.get(k) is not None}


def _public(draft: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in draft.items() if not k.startswith("_")}
