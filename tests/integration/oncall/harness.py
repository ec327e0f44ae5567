"""An on-call worker for integration and browser tests: tokens, routing, a loopback receiver, events.

`OnCallWorker` is a real `overseer worker` subprocess (see
`tests.integration.workerproc`) configured with an API tokens file and a
routing tree whose receivers are `ThreadedReceiver`s — small aiohttp servers
running in a thread of the test process, recording every body they get.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web
from aiokafka import AIOKafkaProducer

from schemas.ids import new_event_id
from streams.api.auth import hash_token
from tests.integration.workerproc import WorkerProcess

TOKENS = {"admin": ("tok-admin-1", "root", "admin"), "oncall": ("tok-oncall-1", "alice", "oncall"),
          "oncall2": ("tok-oncall-2", "bob", "oncall"), "viewer": ("tok-viewer-1", "victor", "viewer")}


class ThreadedReceiver:
    """POST /<path> records the JSON body; ``/fail`` always answers 503."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[Any]] = {}
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.bodies.setdefault(name, []).append(await request.json())
        return web.Response(status=503, text="down") if name == "fail" else web.json_response({"ok": True})

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> ThreadedReceiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def wait_for(self, name: str, predicate: Any, timeout: float = 60) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = list(self.bodies.get(name, []))
            if predicate(got):
                return got
            time.sleep(0.3)
        raise AssertionError(f"receiver {name}: timed out; got {self.bodies.get(name)}")


def write_config(home: Path, receiver: ThreadedReceiver | None) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    tokens = {"tokens": {hash_token(tok): {"name": name, "role": role} for tok, name, role in TOKENS.values()}}
    (home / "tokens.yaml").write_text(yaml.safe_dump(tokens))
    env = {"OVERSEER_API_TOKENS_FILE": str(home / "tokens.yaml"), "OVERSEER_ALERT_SWEEP_INTERVAL_S": "2"}
    if receiver is not None:
        routing = {
            "receivers": [{"name": "hook", "webhook": {"url": receiver.url("hook")}},
                          {"name": "pager", "pagerduty": {"url": receiver.url("pager"), "routing_key": "RK"}},
                          {"name": "broken", "webhook": {"url": receiver.url("fail")}}],
            "route": {"receiver": "hook", "group_wait": "0s", "group_interval": "1s", "routes": [
                {"matchers": ["severity=critical"], "receiver": "pager", "continue": True},
                {"matchers": ["rule_id=agent_destructive_shell"], "receiver": "broken"}]},
            "delivery": {"attempts": 2, "backoff": "0.1s", "timeout": "5s"},
        }
        (home / "routing.yaml").write_text(yaml.safe_dump(routing))
        env["OVERSEER_ALERT_ROUTING_FILE"] = str(home / "routing.yaml")
    return env


class OnCallWorker(WorkerProcess):
    """A worker with tokens; its own probes (stats, SQL) authenticate as admin."""

    def request(self, method: str, path: str, body: Any = None, token: str | None = "admin") -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {TOKENS[token][0] if token in TOKENS else token}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, headers=headers,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        if status != 200:
            raise OSError(f"GET {path}: {status} {body}")
        return body

    def sql(self, query: str) -> list[list[Any]]:
        status, body = self.request("POST", "/overseer/sql", {"sql": query})
        assert status == 200, body
        return body["rows"]


def exfiltration(t0: datetime, dep: str = "dep-atlas-us") -> list[dict[str, Any]]:
    base = {"tenant_id": "t-acme", "deployment_id": dep, "request_model": "atlas-7b", "agent_run_id": "run-exfil-1",
            "model_checkpoint": "/models/atlas-7b/ckpt-0042", "event_type": "tool_call", "operation": "execute_tool"}
    return [
        {**base, "event_id": new_event_id(), "ts": t0.isoformat(), "tool_name": "read_file",
         "action_category": "weights_access", "resource": "/models/atlas-7b/ckpt-0042/model.safetensors"},
        {**base, "event_id": new_event_id(), "ts": (t0 + timedelta(seconds=30)).isoformat(), "tool_name": "http_post",
         "action_category": "net_egress", "dest_host": "paste.exfil-drop.example", "egress_bytes": 4_000_000_000},
    ]


def destructive(t0: datetime, dep: str, run: str | None = None) -> list[dict[str, Any]]:
    return [{"event_id": new_event_id(), "ts": t0.isoformat(), "tenant_id": "t-acme", "deployment_id": dep,
             "request_model": "cirrus-mini", "agent_run_id": run or f"run-shell-{dep}", "event_type": "tool_call",
             "operation": "execute_tool", "tool_name": "bash", "action_category": "exec",
             "tool_arguments": "rm -rf /var/lib/postgresql"}]


def send(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    async def main() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for e in events:
                await producer.send_and_wait(topic, key=e["agent_run_id"].encode(), value=orjson.dumps(e))
        finally:
            await producer.stop()

    # a thread of its own: the caller may be inside Playwright's sync API, which keeps a loop running here
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run(main, errors))
    thread.start()
    thread.join(60)
    if errors:
        raise errors[0]


def publish_raw(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    async def main() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, key=key, value=value)
        finally:
            await producer.stop()

    errors: list[BaseException] = []
    _run(main, errors)
    if errors:
        raise errors[0]


def _run(main: Any, errors: list[BaseException]) -> None:
    try:
        asyncio.run(main())
    except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
        errors.append(exc)


def now_minus(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)
