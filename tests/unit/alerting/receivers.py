"""Small real HTTP receivers on loopback (aiohttp), recording exactly what they were sent."""

from __future__ import annotations

from typing import Any, Self

from aiohttp import web


class Receiver:
    """Answers ``fail_first`` requests with 503 (``always_fail``: every one), then 200."""

    def __init__(self, fail_first: int = 0, always_fail: bool = False) -> None:
        self.fail_first = fail_first
        self.always_fail = always_fail
        self.requests: list[Any] = []
        self.accepted: list[Any] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if self.always_fail or len(self.requests) <= self.fail_first:
            return web.Response(status=503, text="receiver down")
        self.accepted.append(body)
        return web.json_response({"status": "success"}, status=202)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
