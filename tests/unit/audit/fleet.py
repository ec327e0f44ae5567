"""A store filled the way a worker fills it: demo fleet events, the built-in rules' detections, chained audit rows."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.detections import Scope
from streams.audit.backtest import Replayer
from streams.audit.chain import AuditChain
from streams.demo.fleet import FleetGenerator
from streams.killswitch.commands import (
    build_manual_issue,
    command_row,
    operator_action_row,
)
from streams.killswitch.signing import Signer
from streams.pipeline.core import build_core
from streams.pipeline.decode import Record, decode_batch
from streams.store import rows
from streams.store.sink import ClickHouseSink

# recent, so the content retention (events.tool_arguments TTL) has not emptied anything yet
T0 = float(int(time.time()) // 3600 * 3600 - 3600)


def fleet_events(steps: int = 40, per_step: int = 150) -> list[dict[str, Any]]:
    """Twenty minutes of demo fleet time (enough for the refusal-collapse detector to warm up and fire),
    decoded exactly like the worker decodes Kafka records."""
    gen = FleetGenerator(start_ts=T0, seed=3)
    raw = [e for s in range(steps) for e in gen.events_between(T0 + s * 30, T0 + (s + 1) * 30, per_step, s / steps)]
    decoded = decode_batch([Record("overseer.events.v1", i % 2, i, None, orjson.dumps(e)) for i, e in enumerate(raw)],
                           max_message_bytes=1 << 20)
    return sorted(decoded.events, key=lambda e: (e["_ts"], e["event_id"]))


def fill(sink: ClickHouseSink, events: list[dict[str, Any]]) -> Replayer:
    """Events, the built-in rules' detections, one manual pause and its release, as the worker writes them."""
    replayer = Replayer(build_core(None, allowed_lateness_s=60), 60)
    for i in range(0, len(events), 500):
        replayer.feed([dict(e) for e in events[i:i + 500]])
    run = replayer.finish()
    chain = AuditChain()
    signer = Signer(Ed25519PrivateKey.generate(), "k1")
    pause = build_manual_issue(Scope(kind="model", value="atlas-7b"), "pause", ["alice"], "exfiltration under review",
                               signer, datetime.fromtimestamp(T0 + 700, UTC), 600)

    async def go() -> None:
        await sink.write_json("events", rows.events_json(events), len(events), settings=rows.EVENT_JSON_SETTINGS)
        await chain.write(sink, "detections", rows.detection_rows(run.detections), rows.DETECTION_COLUMNS)
        row = command_row(pause)
        await chain.write(sink, "killswitch_commands", [list(row.values())], list(row.keys()))
        action = operator_action_row(pause)
        assert action is not None
        await chain.write(sink, "operator_actions", [list(action.values())], list(action.keys()))

    asyncio.run(go())
    return replayer
