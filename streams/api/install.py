"""Mount the API, the console and the auth middleware on the worker's aiohttp application.

Called from ``App.on_webserver_init``, before the application is frozen, so
routes and middlewares can still be added. The middleware also covers the
Faust pages under ``/overseer/`` (stats, SQL, audit queries): viewer or above.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from streams.api import alerts, killswitch
from streams.api.auth import TokenStore, middleware, require
from streams.api.base import BadRequest, ok
from streams.api.openapi import spec

log = logging.getLogger(__name__)
CONSOLE = Path(__file__).resolve().parent.parent / "console"


@web.middleware
async def errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                 ) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadRequest as exc:
        return ok({"error": exc.message, **({"details": exc.details} if exc.details else {})}, status=exc.status)
    except web.HTTPException:
        raise
    except Exception as exc:
        log.exception("%s %s failed", request.method, request.path)
        return ok({"error": f"internal error: {type(exc).__name__}: {str(exc)[:500]}"}, status=500)


def install(web_app: web.Application, runtime: Callable[[], Any], tokens: TokenStore) -> None:
    """``runtime()`` returns the worker's `WorkerRuntime` (created lazily by the app)."""
    web_app.middlewares.append(middleware(tokens))
    web_app.middlewares.append(errors)
    a = alerts.handlers(runtime)
    k = killswitch.handlers(runtime)
    document = spec()

    async def openapi(request: web.Request) -> web.Response:
        return ok(document)

    async def whoami(request: web.Request) -> web.Response:
        who = require(request, "viewer")
        return ok({"name": who.name, "role": who.role, "tokens_configured": tokens.configured})

    async def console_index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(CONSOLE / "index.html", headers={
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
            # same-origin scripts only: a token pasted here can only be read by the console's own code
            "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'"})

    async def console_redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/console/")

    r = web_app.router
    r.add_get("/api/v1/openapi.json", openapi)
    r.add_get("/api/v1/whoami", whoami)
    r.add_get("/api/v1/alerts", a["list_alerts"])
    r.add_get("/api/v1/alerts/{alert_id}", a["get_alert"])
    r.add_post("/api/v1/alerts/{alert_id}/ack", a["ack"])
    r.add_post("/api/v1/alerts/{alert_id}/resolve", a["resolve"])
    r.add_post("/api/v1/alerts/{alert_id}/silence", a["silence_alert"])
    r.add_get("/api/v1/silences", a["list_silences"])
    r.add_post("/api/v1/silences", a["create_silence"])
    r.add_post("/api/v1/silences/{silence_id}/expire", a["expire_silence"])
    r.add_get("/api/v1/detections", a["detections"])
    r.add_get("/api/v1/detections/{detection_id}", a["detection"])
    r.add_get("/api/v1/killswitch", k["board"])
    r.add_post("/api/v1/killswitch/release", k["release"])
    r.add_post("/api/v1/killswitch/release-requests/{request_id}/approve", k["approve"])
    r.add_get("/console", console_redirect)
    r.add_get("/console/", console_index)
    r.add_static("/console/static/", CONSOLE, show_index=False)
