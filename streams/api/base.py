"""Shared plumbing for the API handlers: JSON in and out, errors as JSON."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def _default(v: Any) -> Any:
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=UTC)).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, BaseModel):
        return v.model_dump(mode="json")
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    return str(v)


def ok(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body, default=_default, option=orjson.OPT_NON_STR_KEYS), status=status,
                        content_type="application/json")


def fail(status: int, message: str, **extra: Any) -> web.Response:
    return ok({"error": message, **extra}, status=status)


class BadRequest(Exception):
    """Turned into a 400/422 JSON response by `install`'s error middleware."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


async def body(request: web.Request, model: type[M]) -> M:
    """Parse and validate the JSON body; 400 when it is not JSON, 422 when it does not validate."""
    raw = await request.read()
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise BadRequest(400, f"the body is not valid JSON: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()]
        raise BadRequest(422, "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid body",
                         errors) from exc


def query_list(request: web.Request, name: str) -> list[str] | None:
    raw = request.query.get(name)
    return [v for v in raw.split(",") if v] if raw else None


def query_int(request: web.Request, name: str, default: int, lo: int = 1, hi: int = 5000) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(400, f"{name} must be an integer, got {raw!r}") from exc
    if not lo <= value <= hi:
        raise BadRequest(400, f"{name} must be between {lo} and {hi}")
    return value
