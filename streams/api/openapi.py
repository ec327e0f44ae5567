"""The OpenAPI 3.1 description of ``/api/v1`` (request bodies generated from the pydantic models)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from schemas.alerts import Alert
from streams.api.models import (
    AlertAction,
    AlertSilence,
    Approve,
    Release,
    ResolveAction,
    SilenceCreate,
    SilenceExpire,
)

ERR = {"$ref": "#/components/responses/Error"}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


def _op(summary: str, role: str, *, body: str | None = None, params: list[dict[str, Any]] | None = None,
        ok: int = 200, extra: dict[int, str] | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {str(ok): {"description": "success", "content": {"application/json": {
        "schema": {"type": "object"}}}}, "401": ERR, "403": ERR}
    for code, text in (extra or {}).items():
        responses[str(code)] = {"description": text, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}
    op: dict[str, Any] = {"summary": summary, "description": f"Needs role `{role}` or above.",
                          "parameters": params or [], "responses": responses}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body}"}}}}
        op["responses"]["400"] = ERR
        op["responses"]["422"] = ERR
    return op


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": {"type": kind}}


def spec() -> dict[str, Any]:
    models: dict[str, type[BaseModel]] = {
        "Alert": Alert, "AlertAction": AlertAction, "ResolveAction": ResolveAction, "AlertSilence": AlertSilence,
        "SilenceCreate": SilenceCreate, "SilenceExpire": SilenceExpire, "Release": Release, "Approve": Approve}
    schemas: dict[str, Any] = {"Error": {"type": "object", "required": ["error"],
                                         "properties": {"error": {"type": "string"}}}}
    for name, model in models.items():
        s = _schema(model)
        schemas.update(s.pop("$defs", {}))
        schemas[name] = s
    alert_id, conflict = [_path("alert_id")], {409: "the alert's state does not allow it"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Overseer on-call API", "version": "1.0.0",
                 "description": "Alerts, detections with their evidence, silences and the kill-switch board. "
                                "Every action is audited in operator_actions. See docs/oncall.md."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/whoami": {"get": _op("The caller's identity and role", "viewer")},
            "/api/v1/alerts": {"get": _op("List alerts (latest record of each)", "viewer", params=[
                _query("state", "comma-separated: firing,acknowledged,resolved"),
                _query("severity", "comma-separated severities"), _query("rule_id", "exact rule id"),
                _query("scope", "KIND=VALUE"), _query("limit", "at most this many (default 200)", "integer")])},
            "/api/v1/alerts/{alert_id}": {"get": _op("One alert with its rule, detections, events and timeline",
                                                     "viewer", params=alert_id, extra={404: "no such alert"})},
            "/api/v1/alerts/{alert_id}/ack": {"post": _op("Acknowledge", "oncall", body="AlertAction",
                                                          params=alert_id, extra={**conflict, 202: "accepted"})},
            "/api/v1/alerts/{alert_id}/resolve": {"post": _op("Resolve", "oncall", body="ResolveAction",
                                                              params=alert_id, extra={**conflict, 202: "accepted"})},
            "/api/v1/alerts/{alert_id}/silence": {"post": _op("Silence this alert's rule and scope", "oncall",
                                                              body="AlertSilence", params=alert_id, ok=201)},
            "/api/v1/silences": {"get": _op("Active silences (all=1: every one)", "viewer",
                                            params=[_query("all", "include expired")]),
                                 "post": _op("Create a silence", "oncall", body="SilenceCreate", ok=201)},
            "/api/v1/silences/{silence_id}/expire": {"post": _op("Expire a silence now", "oncall",
                                                                 body="SilenceExpire", params=[_path("silence_id")],
                                                                 extra={404: "no such silence"})},
            "/api/v1/detections": {"get": _op("Recent detections", "viewer", params=[
                _query("rule_id", "exact"), _query("deployment_id", "exact"), _query("severity", "exact"),
                _query("agent_run_id", "exact"), _query("limit", "default 100", "integer")])},
            "/api/v1/detections/{detection_id}": {"get": _op("One detection with its rule and evidence events",
                                                             "viewer", params=[_path("detection_id")],
                                                             extra={404: "no such detection"})},
            "/api/v1/killswitch": {"get": _op("Active containments and pending fleet release requests", "viewer")},
            "/api/v1/killswitch/release": {"post": _op(
                "Release a scope (fleet: held until a second operator approves)", "oncall", body="Release",
                extra={409: "nothing active on that scope", 202: "fleet release pending a second operator"})},
            "/api/v1/killswitch/release-requests/{request_id}/approve": {"post": _op(
                "Approve a pending fleet release (a different operator)", "oncall", body="Approve",
                params=[_path("request_id")], extra={404: "no such request"})},
            "/api/v1/openapi.json": {"get": {"summary": "This document", "security": [],
                                             "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "a token whose SHA-256 is in OVERSEER_API_TOKENS_FILE"}},
            "responses": {"Error": {"description": "error", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": schemas,
        },
    }
