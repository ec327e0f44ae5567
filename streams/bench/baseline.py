"""The baseline: an idiomatic per-event Faust agent doing the same detection work.

One Kafka message per event (keyed by its trajectory); for each event the agent
validates it with the pydantic ``Event`` model, evaluates the built-in rule packs
on that one event (``Engine.process([event])``), and counts it per key in a
Faust tumbling-window table (changelog-backed, like any Faust table). That is
how the per-event style is written — and what DESIGN.md's "Known pitfalls"
measured at about 1,500 events/s.

Runs as its own process (``python -m streams.bench.baseline``) and writes one
JSON object to ``--out`` once ``--expect`` events were handled: events, seconds
from the first event to the last, events/s, rule hits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import faust
import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from rules.engine import load_engine
from schemas.events import Event
from streams.app import faust_datadir
from streams.pipeline.decode import event_to_dict


def build_app(bootstrap: str, topic: str, app_id: str, partitions: int, expect: int, out: Path) -> faust.App:
    app = faust.App(app_id, broker=[f"kafka://{b}" for b in bootstrap.split(",")], store="memory://",
                    datadir=faust_datadir(out.parent, app_id), topic_partitions=partitions,
                    topic_replication_factor=1, web_enabled=False,
                    consumer_auto_offset_reset="earliest", table_standby_replicas=0, stream_wait_empty=False)
    source = app.topic(topic, key_serializer="raw", value_serializer="json", internal=False)
    counts = app.Table("run-counts", default=int, partitions=partitions).tumbling(60.0, expires=3600.0)
    engine = load_engine(None, allowed_lateness_s=60.0)
    state: dict[str, Any] = {"n": 0, "hits": 0, "first": 0.0, "cpu0": 0.0}

    @app.agent(source, name="detect")
    async def detect(stream: faust.StreamT) -> None:
        async for value in stream:
            if not state["first"]:
                state["first"], state["cpu0"] = time.perf_counter(), time.process_time()
            event = event_to_dict(Event.model_validate(value))
            state["hits"] += len(engine.process([event]))
            key = event.get("agent_run_id") or event.get("conversation_id") or event.get("deployment_id") or ""
            counts[key] += 1
            state["n"] += 1
            if state["n"] == expect:
                elapsed = time.perf_counter() - state["first"]
                cpu = time.process_time() - state["cpu0"]
                out.write_bytes(orjson.dumps({"events": state["n"], "seconds": elapsed, "eps": state["n"] / elapsed,
                                              "cpu_seconds": cpu, "cpu_eps": state["n"] / cpu if cpu > 0 else 0.0,
                                              "rule_hits": state["hits"], "complete": True}))

    return app


async def create_changelog(bootstrap: str, app: faust.App) -> None:
    """Faust creates changelog topics with CreateTopics v1, which Kafka 4 removed (see README)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(t.changelog_topic.get_topic_name(), t.partitions or app.conf.topic_partitions, 1)
                  for t in app.tables.values() if t.changelog_topic.get_topic_name() not in existing]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--app-id", required=True)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    app = build_app(args.bootstrap, args.topic, args.app_id, args.partitions, args.expect, args.out)
    asyncio.run(create_changelog(args.bootstrap, app))
    asyncio.set_event_loop(asyncio.new_event_loop())
    faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
