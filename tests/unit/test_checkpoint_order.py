"""Rule state is checkpointed in commit order: the on-call tick never writes a snapshot that holds
batches whose commit (store, then offsets) has not happened yet.

Such a snapshot, followed by a crash, would restore windows that already counted the uncommitted
events, and their replay would count them again.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from streams.pipeline.core import build_core
from streams.pipeline.decode import Record
from streams.runtime import WorkerRuntime
from streams.settings import Settings
from streams.store.sink import ClickHouseSink


def _runtime(tmp_path: Path) -> tuple[WorkerRuntime, list[list[tuple[int, str, str]]]]:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", home=tmp_path, topic_partitions=1, allowed_lateness_s=60)
    sink = ClickHouseSink(lambda: (_ for _ in ()).throw(AssertionError("no store in this test")))
    rt = WorkerRuntime(settings, "127.0.0.1:1", build_core(None, allowed_lateness_s=60), sink)
    rt.checkpoint_topic = "state"
    sent: list[list[tuple[int, str, str]]] = []

    async def send(items: list[tuple[int, str, str]]) -> None:
        if items:
            sent.append(items)

    async def publish(topic: str, items: list[Any]) -> None:
        return None

    async def loaded() -> None:
        return None

    rt._send_checkpoints = send  # type: ignore[method-assign]
    rt.publish = publish  # type: ignore[method-assign]
    rt._state_loaded[0] = asyncio.ensure_future(loaded())  # nothing to restore for partition 0
    return rt, sent


def _records() -> list[Record]:
    now = datetime.now(UTC).isoformat()
    event = {"event_id": "e1", "event_type": "inference", "ts": now, "conversation_id": "c1",
             "deployment_id": "d1", "request_model": "m", "is_refusal": True}
    return [Record("overseer.events.v1", 0, 7, None, orjson.dumps(event))]


def test_tick_leaves_rule_state_to_the_commits_while_a_batch_is_uncommitted(tmp_path: Path) -> None:
    async def scenario() -> None:
        rt, sent = _runtime(tmp_path)
        prepared = await rt.prepare(_records())
        assert [key for _, key, _ in prepared.state_items] == ["rules/0"]  # the batch carries its own snapshot
        assert rt.uncommitted == 1
        rt.rules_state.dirty.add(0)  # the tick's watermark closed a window of partition 0
        await rt.tick()
        assert not any(key.startswith("rules/") for items in sent for _, key, _ in items)
        assert 0 in rt.rules_state.dirty  # left for the next batch's commit to write, in order

        async def stored(batch: Any) -> None:
            return None

        rt._commit = stored  # type: ignore[method-assign]
        await rt.commit(prepared)
        assert rt.uncommitted == 0
        await rt.tick()  # nothing in flight: the tick writes it itself
        assert any(key == "rules/0" for items in sent for _, key, _ in items)
        assert not rt.rules_state.dirty

    asyncio.run(scenario())

