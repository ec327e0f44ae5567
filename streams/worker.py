"""Start one Overseer worker: topics, migrations, rules, then the Faust worker.

Start-up order matters: the store is migrated and the rules are compiled
*before* the first record is consumed, so a bad rule file or an unreachable
ClickHouse stops the worker with a clear message instead of half-processing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from streams import gc_tuning
from streams.app import create_app
from streams.faults import Outage
from streams.kafka.clients import client_kwargs, resolve_bootstrap
from streams.kafka.topics import ensure_topics
from streams.pipeline.core import build_core
from streams.runtime import WorkerRuntime
from streams.settings import Settings
from streams.store.client import connect_settings
from streams.store.migrate import migrate
from streams.store.sink import ClickHouseSink

log = logging.getLogger(__name__)


def changelog_topics(app: faust.App) -> dict[str, int]:
    return {table.changelog_topic.get_topic_name(): table.partitions or app.conf.topic_partitions
            for table in app.tables.values()}


def prepare(settings: Settings) -> tuple[str, Any, ClickHouseSink]:
    bootstrap = resolve_bootstrap(settings)
    core = build_core(settings.rules_paths, allowed_lateness_s=settings.allowed_lateness_s)
    sink = ClickHouseSink(lambda: connect_settings(settings), max_backoff_s=settings.sink_retry_max_s,
                          outage=Outage(settings.fault_clickhouse_down))
    sink.call(migrate)
    return bootstrap, core, sink


def faust_worker(app: faust.App, loglevel: str) -> faust.Worker:
    """Faust's worker, without its terminal spinner.

    The spinner sets the root logger to DEBUG (to spin on every record), so every debug call in aiokafka and
    mode built a LogRecord that no handler printed: 4-7% of the main thread under load (py-spy)."""
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    worker.spinner = None
    return worker


def run_worker(settings: Settings, loglevel: str = "WARNING") -> None:
    bootstrap, core, sink = prepare(settings)

    def factory(app: faust.App, **tables: Any) -> WorkerRuntime:
        return WorkerRuntime(settings, bootstrap, core, sink, **tables)

    app = create_app(settings, bootstrap, factory)
    asyncio.run(ensure_topics(bootstrap, settings, changelogs=changelog_topics(app), **client_kwargs(settings)))
    asyncio.set_event_loop(asyncio.new_event_loop())
    worker = faust_worker(app, loglevel)
    gc_tuning.tune(settings.gc_gen0_threshold)
    gc_tuning.freeze()  # the start-up heap (Faust, schemas, compiled rules) is never garbage: stop re-scanning it
    try:
        worker.execute_from_commandline()
    finally:
        sink.close()
