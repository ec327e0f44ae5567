"""Safety descriptors of a tool call: what it does, to what, and where to.

Producers that know best say so explicitly with ``overseer.*`` attributes
(OTLP span attributes, or keys of LiteLLM ``requester_metadata``). When they
do not, :func:`infer_action` fills ``action_category``, ``resource``,
``dest_host`` and ``egress_bytes`` for well-known tool names where the
mapping is unambiguous. Explicit values always win over inference; the
inference table is documented in docs/ingestion.md.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any
from urllib.parse import urlsplit

from schemas.events import ActionCategory
from streams.ingest.adapters.base import AdapterOptions, sha256_hex

# tool name (lower-cased) -> category. Only names whose meaning does not
# depend on their arguments; anything else stays uncategorised.
TOOL_CATEGORIES: dict[str, ActionCategory] = {
    **dict.fromkeys(("read_file", "file_read", "read_text_file", "view_file", "open_file", "cat"),
                    ActionCategory.fs_read),
    **dict.fromkeys(("write_file", "file_write", "edit_file", "create_file", "append_file",
                     "delete_file", "apply_patch"), ActionCategory.fs_write),
    **dict.fromkeys(("bash", "shell", "sh", "run_shell_command", "execute_command", "run_command",
                     "terminal", "exec", "code_interpreter", "python", "run_python"), ActionCategory.exec),
    **dict.fromkeys(("http_post", "http_put", "http_request", "http_get", "fetch_url", "web_fetch",
                     "upload_file", "send_email", "curl"), ActionCategory.net_egress),
    **dict.fromkeys(("get_secret", "read_secret", "get_credentials", "vault_read", "get_api_key"),
                    ActionCategory.credential_access),
    **dict.fromkeys(("chmod", "chown", "set_permissions", "grant_role", "add_iam_policy"),
                    ActionCategory.permission_change),
    **dict.fromkeys(("spawn_agent", "create_agent", "delegate_task", "start_subagent"),
                    ActionCategory.spawn_agent),
    **dict.fromkeys(("create_instance", "launch_instance", "run_instances", "provision_gpu",
                     "create_cluster"), ActionCategory.compute_provision),
    **dict.fromkeys(("make_payment", "transfer_funds", "create_charge", "send_payment"),
                    ActionCategory.payment),
}

# A read of one of these is a read of model weights, not an ordinary file read.
WEIGHTS_PATH = re.compile(
    r"(\.(safetensors|ckpt|pt|pth|gguf|ggml|onnx|h5|msgpack)$)|(/ckpt-\d+/)|(pytorch_model.*\.bin$)",
    re.IGNORECASE)

PATH_ARGS = ("path", "file_path", "filepath", "filename", "file", "target", "src", "source")
URL_ARGS = ("url", "uri", "endpoint", "webhook")
SIZE_ARGS = ("content_length", "size_bytes", "bytes", "size")
BODY_ARGS = ("body", "data", "payload", "content")


def infer_action(tool_name: str | None, arguments: dict[str, Any] | None) -> dict[str, Any]:
    """Descriptors inferred from a tool name and its parsed arguments (possibly empty)."""
    out: dict[str, Any] = {}
    category = TOOL_CATEGORIES.get((tool_name or "").lower())
    args = arguments or {}
    path = _first_str(args, PATH_ARGS)
    url = _first_str(args, URL_ARGS)
    if path and category in (ActionCategory.fs_read, ActionCategory.fs_write, None):
        out["resource"] = normalise_path(path)
    if url:
        out.setdefault("resource", url)
        host = urlsplit(url).hostname
        if host:
            out["dest_host"] = host.lower()
    if category is ActionCategory.fs_read and path and WEIGHTS_PATH.search(normalise_path(path)):
        category = ActionCategory.weights_access
    if category is ActionCategory.net_egress:
        size = _egress_size(args)
        if size is not None:
            out["egress_bytes"] = size
    if category is not None:
        out["action_category"] = category.value
    return out


def explicit_descriptors(attrs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``overseer.*`` producer attributes -> event fields; returns (fields, consumed keys)."""
    out: dict[str, Any] = {}
    used: list[str] = []
    simple = {"overseer.action_category": "action_category", "overseer.resource": "resource",
              "overseer.dest_host": "dest_host", "overseer.egress_bytes": "egress_bytes",
              "overseer.is_refusal": "is_refusal", "overseer.privilege": "privilege",
              "overseer.approval": "approval", "overseer.model_checkpoint": "model_checkpoint",
              "overseer.agent_run_id": "agent_run_id", "overseer.step_index": "step_index",
              "overseer.system_prompt_hash": "system_prompt_hash", "overseer.tenant_id": "tenant_id",
              "overseer.deployment_id": "deployment_id"}
    for key, fieldname in simple.items():
        if key in attrs:
            value = attrs[key]
            if fieldname in ("egress_bytes", "step_index") and isinstance(value, float) and value.is_integer():
                value = int(value)
            out[fieldname] = value
            used.append(key)
    scores = {k.removeprefix("overseer.score."): v for k, v in attrs.items() if k.startswith("overseer.score.")}
    if scores:
        out["scores"] = scores
        used.extend("overseer.score." + k for k in scores)
    return out, used


def normalise_path(path: str) -> str:
    return posixpath.normpath(path) if path.startswith("/") else path


def argument_fields(arguments: str | None, options: AdapterOptions) -> dict[str, Any]:
    """Tool arguments as a hash by default, the text too when content is kept."""
    if arguments is None:
        return {}
    out: dict[str, Any] = {"tool_arguments_hash": sha256_hex(arguments)}
    if options.keep_content or options.keep_arguments:
        out["tool_arguments"] = arguments
    return out


def content_fields(text: str | None, options: AdapterOptions) -> dict[str, Any]:
    if not text:
        return {}
    out: dict[str, Any] = {"content_hash": sha256_hex(text)}
    if options.keep_content:
        out["content"] = text
    return out


def _first_str(args: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = args.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _egress_size(args: dict[str, Any]) -> int | None:
    for name in SIZE_ARGS:
        value = args.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return int(value)
    body = _first_str(args, BODY_ARGS)
    return len(body.encode()) if body is not None else None
