"""The Faust app: topics, agents, timers, tables and web pages.

Agents only move records; the work happens in `streams.runtime`.

- ``detect``  — events topic, batch-first (``take_events``): a batch is
  decoded and evaluated, its detections published, then stored while the
  next batches are evaluated (up to ``commits_in_flight``); it is acked only after
  ClickHouse and Kafka acknowledged, so offsets commit after the sink.
- ``fleet``   — partial aggregates, repartitioned by metric key: merges them
  and runs the statistical detectors (fleet-level, never raw events).
- ``policy``  — detections, in batches: signed kill-switch commands first,
  then alerts; the issued idempotency keys live in a Faust table (changelog-backed), so a
  replayed breach never issues a second command.
- ``killswitch_mirror`` — the compacted kill-switch topic: audit rows in
  ClickHouse for every command, including those issued by operators.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import faust
from faust.web import Request, Response, View

from streams.alerting.ops import is_alert_op
from streams.api import TokenStore
from streams.api import install as install_api
from streams.faust_recovery import StreamSafeTableManager
from streams.kafka.clients import faust_credentials
from streams.pipeline.decode import Record
from streams.pipeline.shared_decode import SharedDecode
from streams.runtime import PreparedBatch, WorkerRuntime
from streams.settings import Settings

log = logging.getLogger(__name__)

READ_ONLY_PREFIXES = ("select", "with", "show", "describe", "desc", "explain", "exists")


def _records(batch: list[faust.EventT]) -> list[Record]:
    return [Record(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value,
                   e.message.timestamp) for e in batch]


def faust_datadir(home: Path, app_id: str) -> str:
    """Where Faust keeps its per-app directories: under the worker's home, not the current directory.

    Faust's default is ``{app_id}-data`` in the working directory, so every worker, test and bench
    run left a directory wherever it was started. Faust formats the path (``{conf.name}``), hence the
    escaped braces.

    >>> import tempfile
    >>> home = Path(tempfile.mkdtemp())
    >>> faust_datadir(home, "overseer") == f"{home}/faust/overseer", (home / "faust").is_dir()
    (True, True)
    """
    path = home / "faust" / app_id
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path).replace("{", "{{").replace("}", "}}")


def create_app(settings: Settings, bootstrap: str, runtime_factory: Any) -> faust.App:
    """Build the app. ``runtime_factory(app) -> WorkerRuntime`` runs at worker start-up."""
    brokers = [f"kafka://{b}" for b in bootstrap.split(",")]
    app = faust.App(
        settings.app_id,
        broker=brokers,
        store="memory://",
        datadir=faust_datadir(settings.home, settings.app_id),
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        web_enabled=True,
        web_port=settings.worker_web_port,
        web_bind=settings.worker_web_host,
        web_host=settings.worker_web_host,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        table_standby_replicas=0,
        broker_credentials=faust_credentials(settings),
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_s / 6),
        # Faust's recovery could drop stream records fetched while it resumed them: streams/faust_recovery.py
        TableManager=StreamSafeTableManager,
    )
    t = settings.topic
    events = app.topic(t("events"), value_serializer="raw", key_serializer="raw", internal=False)
    partials = app.topic(t("metrics"), value_serializer="raw", key_serializer="raw", internal=False)
    detections = app.topic(t("detections"), value_serializer="raw", key_serializer="raw", internal=False)
    health = app.topic(t("health"), value_serializer="raw", key_serializer="raw", internal=False)
    killswitch = app.topic(t("killswitch"), value_serializer="raw", key_serializer="raw", internal=False)

    # str keys, JSON values (Faust's table default); co-partitioned with the detections topic
    issued = app.Table("killswitch-issued", partitions=settings.topic_partitions,
                       help="idempotency key -> command id of every kill-switch command issued")
    alert_state = app.Table("alert-state", partitions=settings.topic_partitions,
                            help="alert group key -> current alert")
    holder: dict[str, WorkerRuntime] = {}

    async def started() -> WorkerRuntime:
        rt = runtime()
        await rt.start()
        return rt

    def runtime() -> WorkerRuntime:
        rt = holder.get("rt")
        if rt is None:
            rt = runtime_factory(app, issued=issued, alert_state=alert_state,
                                 checkpoint_topic=settings.topic("state"))
            holder["rt"] = rt
        return rt

    app.overseer_runtime = runtime  # type: ignore[attr-defined]
    # /api/v1, /console and token auth (also over /overseer/*): see streams/api and docs/oncall.md
    tokens = TokenStore(settings.api_tokens_file)
    app.on_webserver_init = lambda web: install_api(web.web_app, runtime, tokens)  # type: ignore[method-assign]

    @app.timer(1.0)
    async def oncall_tick() -> None:
        try:
            await (await started()).oncall.tick()
        except Exception as exc:  # noqa: BLE001 - a missed sweep or flush is retried next second
            log.warning("on-call tick failed: %s", exc)

    shared = SharedDecode(max_message_bytes=settings.max_message_bytes)  # one decode per message, both lanes

    async def commit_then_ack(runtime: WorkerRuntime, prepared: PreparedBatch, batch: list[faust.EventT],
                              previous: asyncio.Future[None] | None) -> None:
        if previous is not None:
            await previous  # commits run one at a time, in offset order (a failed one fails the rest)
        await runtime.commit(prepared)
        for event in batch:
            event.ack()  # drops the reference held since the batch arrived: now its offset may commit

    @app.agent(events, name="detect")
    async def detect(stream: faust.StreamT) -> None:
        """Batch-first and pipelined: batches are decoded, evaluated and their detections published as
        they arrive, while earlier batches are stored (up to ``commits_in_flight`` batches and
        ``events_in_flight`` events wait for their commit; then the loop waits: backpressure).

        ``take_events`` acks a batch when the loop body returns, which is before its commit has
        finished; each message therefore holds one more reference until its batch is stored and
        published (``commit_then_ack``), so no offset commits ahead of its events."""
        in_flight: collections.deque[tuple[asyncio.Future[None], int]] = collections.deque()
        try:
            async for batch in stream.take_events(settings.batch_max, within=settings.batch_within_s):
                runtime = await started()
                for event in batch:
                    event.message.incref()
                records = _records(batch)
                prepared = await runtime.prepare(records, shared.decode([e.message for e in batch], records))
                previous = in_flight[-1][0] if in_flight else None
                in_flight.append((asyncio.ensure_future(commit_then_ack(runtime, prepared, list(batch), previous)),
                                  len(prepared.decoded.events)))
                t = time.perf_counter()
                waited = False
                while in_flight and (in_flight[0][0].done() or len(in_flight) > settings.commits_in_flight
                                     or sum(n for _, n in in_flight) > settings.events_in_flight):
                    waited = waited or not in_flight[0][0].done()
                    await in_flight.popleft()[0]
                if waited:
                    runtime.stages.waited(t)
            while in_flight:
                await in_flight.popleft()[0]
        finally:
            for future, _ in in_flight:
                if not future.done():
                    with contextlib.suppress(BaseException):  # stopping: unacked records are simply replayed
                        await asyncio.shield(future)

    if settings.fastlane_min_severity:
        @app.agent(events, name="fastlane")
        async def fastlane(stream: faust.StreamT) -> None:
            """Critical single-event rules on each batch as it arrives (see WorkerRuntime.fastlane)."""
            async for batch in stream.take_events(settings.batch_max, within=settings.fastlane_within_s):
                records = _records(batch)
                await (await started()).fastlane(records, shared.decode([e.message for e in batch], records))

    @app.agent(partials, name="fleet")
    async def fleet(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(500, within=0.2):
            await (await started()).handle_partials([(e.message.partition, e.message.value) for e in batch])

    @app.agent(health, name="producer_health")
    async def producer_health(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(500, within=0.2):
            await (await started()).handle_seq_partials([(e.message.partition, e.message.value) for e in batch])

    async def then_ack(bookkeeping: Any, batch: list[faust.EventT]) -> None:
        await bookkeeping()
        for event in batch:
            event.ack()

    @app.agent(detections, name="policy")
    async def policy(stream: faust.StreamT) -> None:
        """Detections in batches: commands are decided and published at once; the batch's alert
        bookkeeping (ClickHouse insert, routing, state checkpoint) runs while the next batch is
        decided, and the batch is acked after it (each message holds a reference until then)."""
        in_flight: asyncio.Future[None] | None = None
        try:
            async for batch in stream.take_events(500, within=settings.policy_within_s):
                runtime = await started()
                run: list[faust.EventT] = []  # consecutive detections, decided as one batch
                tails: list[Any] = []

                async def decide(run: list[faust.EventT], runtime: WorkerRuntime = runtime,
                                 tails: list[Any] = tails) -> None:
                    # table writes need their event as the stream's current one (it names the partition)
                    tails.append(await runtime.decide_detections(
                        [(e.message.value, e.message.partition) for e in run],
                        focus=lambda i: stream._set_current_event(run[i]), defer=True))

                for event in batch:
                    event.message.incref()
                    if is_alert_op(event.message.headers):  # ack/resolve/sweep: applied by the group's owner
                        await decide(run)
                        run = []
                        if in_flight is not None:  # operator actions see every earlier alert stored
                            await in_flight
                        stream._set_current_event(event)
                        await runtime.handle_alert_op(event.message.value, event.message.partition)
                    else:
                        run.append(event)
                await decide(run)

                async def bookkeeping(tails: list[Any] = tails) -> None:
                    for tail in tails:
                        if tail is not None:
                            await tail()

                if in_flight is not None:  # one batch's bookkeeping at a time, in order
                    await in_flight
                in_flight = asyncio.ensure_future(then_ack(bookkeeping, list(batch)))
            if in_flight is not None:
                await in_flight
        finally:
            if in_flight is not None and not in_flight.done():
                with contextlib.suppress(BaseException):  # stopping: unacked detections are replayed
                    await asyncio.shield(in_flight)

    @app.agent(killswitch, name="killswitch_mirror")
    async def killswitch_mirror(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await (await started()).handle_command(event.message.value)

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        rt = holder.get("rt")
        if rt is not None:
            rt.forget([(tp.topic, tp.partition) for tp in revoked])

    @app.on_before_shutdown.connect
    async def close_runtime(app: faust.App, **kwargs: Any) -> None:
        rt = holder.get("rt")
        if rt is not None:
            await rt.close()

    if settings.rules_reload_interval_s > 0:
        @app.timer(settings.rules_reload_interval_s)
        async def reload_rules() -> None:
            await (await started()).maybe_reload_rules()

    @app.timer(1.0)
    async def advance_event_time() -> None:
        await (await started()).tick()

    @app.timer(1.0)
    async def watch_sink() -> None:
        await (await started()).check_sink_health()

    @app.timer(settings.lag_poll_interval_s)
    async def consumer_lag() -> None:
        try:
            await (await started()).poll_lag()
        except Exception as exc:  # noqa: BLE001 - a missed gauge update must not stop the worker
            log.warning("consumer lag poll failed: %s", exc)

    @app.page("/overseer/tasks")
    class Tasks(View):
        """What every asyncio task is waiting on: the first thing to look at when a worker stalls."""

        async def get(self, request: Request) -> Response:
            import asyncio
            import gc
            import inspect

            out = []
            for task in asyncio.all_tasks():
                frames = []
                coro: Any = task.get_coro()
                while coro is not None and len(frames) < 40:  # follow the await chain, outermost first
                    frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
                    if frame is not None:
                        frames.append(f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno} "
                                      f"{frame.f_code.co_name}")
                    nxt = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
                    if nxt is None and type(coro).__name__ == "async_generator_asend":
                        # `async for` over an async generator (an agent's stream, take_events, getmany):
                        # the awaitable hides its generator; the garbage collector still sees it
                        nxt = next((r for r in gc.get_referents(coro) if inspect.isasyncgen(r)), None)
                    coro = nxt
                out.append({"name": task.get_name(), "stack": frames})
            return self.json({"tasks": out})

    @app.page("/healthz")
    class Healthz(View):
        """Liveness: 503 when input waits but the pipeline makes no progress (see WorkerRuntime.stalled)."""

        async def get(self, request: Request) -> Response:
            rt = holder.get("rt")
            reason = rt.stalled() if rt is not None else None
            if reason:
                return self.json({"status": "stalled", "reason": reason}, status=503)
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Readyz(View):
        async def get(self, request: Request) -> Response:
            rt = holder.get("rt")
            failing = rt is not None and rt.sink.stats.failing_since is not None
            ready = rt is not None and not failing
            return self.json({"ready": ready, "clickhouse_failing": failing}, status=200 if ready else 503)

    @app.page("/overseer/stats")
    class Stats(View):
        async def get(self, request: Request) -> Response:
            rt = runtime()
            try:
                stored = await rt.sink.run(lambda c: {
                    table: int(c.command(f"SELECT count() FROM {table} FINAL"))
                    for table in ("events", "deadletters", "detections", "alerts", "killswitch_commands",
                                  "operator_actions")})
            except Exception as exc:  # noqa: BLE001 - ClickHouse down: the counters still answer
                return self.json({**rt.stats(), "stored": None, "stored_error": f"{type(exc).__name__}: {exc}"})
            return self.json({**rt.stats(), "stored": stored, "consumer": _consumer_state(app)})

    @app.page("/overseer/query/{name}/")
    class NamedQuery(View):
        async def get(self, request: Request, name: str) -> Response:
            from streams.audit.web import named_query

            status, body = await named_query(runtime().sink, name, dict(request.query))
            return self.json(body, status=status)

    @app.page("/overseer/audit/verify")
    class AuditVerify(View):
        async def post(self, request: Request) -> Response:
            from streams.audit.web import verify_chain

            body = await request.json()
            status, report = await verify_chain(runtime().sink, body.get("anchor") if isinstance(body, dict) else None)
            return self.json(report, status=status)

    @app.page("/overseer/sql")
    class Sql(View):
        async def post(self, request: Request) -> Response:
            try:
                body = await request.json()
            except ValueError as exc:  # not JSON (or not UTF-8): the caller's mistake
                return self.json({"error": f"the body must be a JSON object like {{\"sql\": \"SELECT 1\"}}: "
                                           f"{str(exc)[:200]}"}, status=400)
            if not isinstance(body, dict) or not isinstance(body.get("sql"), str):
                return self.json({"error": "the body must be a JSON object with a string field \"sql\""},
                                 status=400)
            sql = body["sql"].strip().rstrip(";")
            if not sql.lower().startswith(READ_ONLY_PREFIXES) or ";" in sql:
                return self.json({"error": "only one read-only statement (SELECT, WITH, SHOW, DESCRIBE, "
                                           "EXPLAIN) is allowed"}, status=400)
            rt = runtime()
            try:
                result = await rt.sink.run(lambda c: c.query(sql, settings={"readonly": 1}))
            except Exception as exc:  # noqa: BLE001 - reported to the caller as a 400
                return self.json({"error": str(exc)[:2000]}, status=400)
            return self.json({"columns": list(result.column_names),
                              "rows": [[_jsonable(v) for v in row] for row in result.result_rows]})

    return app


def _consumer_state(app: faust.App) -> dict[str, Any]:
    """What Faust's consumer is doing: assigned and paused partitions, flow, recovery (for a stuck worker)."""
    try:
        consumer = app.consumer
        assigned = sorted(f"{tp.topic}/{tp.partition}" for tp in consumer.assignment())
        paused = sorted(f"{tp.topic}/{tp.partition}" for tp in getattr(consumer, "_paused_partitions", ()))
        return {"assigned": assigned, "paused": paused, "flow_active": bool(getattr(consumer, "flow_active", True)),
                "in_recovery": bool(getattr(app, "in_recovery", False)),
                "rebalancing": bool(getattr(app, "rebalancing", False))}
    except Exception as exc:  # noqa: BLE001 - introspection only
        return {"error": f"{type(exc).__name__}: {exc}"}


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    return str(v)
