"""`overseer ingest serve` as a real process: an OTLP protobuf export in, a batch on the topic out."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.integration.ingest.conftest import _create, events_of, read_topic
from streams.kafka.launcher import free_port

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ingest"
REPO = Path(__file__).resolve().parents[3]



@pytest.fixture()
def served(kafka_bootstrap: str) -> Iterator[tuple[str, str]]:
    prefix = f"serve{uuid.uuid4().hex[:6]}"
    asyncio.run(_create(kafka_bootstrap, {f"{prefix}.events.v1": 2, f"{prefix}.deadletter.v1": 1}))
    port = free_port()
    env = {**os.environ, "OVERSEER_TOPIC_PREFIX": prefix}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from streams.commands.ingest import ingest_app; ingest_app()", "serve",
         "--port", str(port), "--bootstrap", kafka_bootstrap],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "exited"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", prefix
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_accepts_protobuf_export(served: tuple[str, str], kafka_bootstrap: str) -> None:
    url, prefix = served

    async def post() -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/v1/traces", data=(FIXTURES / "otlp_genai_trace.pb").read_bytes(),
                                    headers={"Content-Type": "application/x-protobuf"}) as resp:
                return resp.status, await resp.read()

    status, body = asyncio.run(post())
    assert status == 200
    assert not ExportTraceServiceResponse.FromString(body).HasField("partial_success")
    events = events_of(asyncio.run(read_topic(kafka_bootstrap, f"{prefix}.events.v1", 1)))
    assert [e["span_id"] for e in events][:2] == ["051581bf3cb55c13", "9f3d1c2b4a5e6f70"] and len(events) == 5
