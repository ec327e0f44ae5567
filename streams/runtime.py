"""What a worker does with each batch, independent of Faust.

The Faust agents in `streams.app` only move records in and out; every
decision lives here, so the same code is driven by tests and benchmarks.

Order of effects for one batch of events (the delivery guarantee):

1. decode + validate the whole batch; invalid input becomes dead letters;
2. evaluate rules, producer-sequence health and metric partials, snapshot
   the state, and send the detections on their way to the policy agent
   (:meth:`WorkerRuntime.prepare`, which the detect agent overlaps with the
   previous batch's step 3–4);
3. write events, dead letters and detections to ClickHouse (awaits the ack,
   retrying with backoff — consumption is paused meanwhile);
4. publish dead letters and partials, await the detections' and the state
   checkpoint's acks (acks=all) (:meth:`WorkerRuntime.commit`);
5. only then does the caller ack the records, so their offsets can commit.

A crash anywhere before 5 replays the batch: ClickHouse collapses the
replayed rows (deterministic ids in the sorting keys, dedup tokens) and
detections keep their deterministic ids, so policies never act twice.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from rules.base import Hit
from rules.health import seq_partials
from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.detections import Detection, Scope
from schemas.ids import stable_id
from streams.alerting.book import AlertBook, Lifecycle
from streams.alerting.service import OnCall
from streams.alerting.store import ALERT_COLUMNS as ONCALL_ALERT_COLUMNS
from streams.alerting.store import alert_rows as oncall_alert_rows
from streams.audit import prepare as prepare_audit
from streams.audit.chain import AuditChain
from streams.faults import Faults
from streams.kafka.clients import client_kwargs, producer_kwargs
from streams.killswitch.commands import build_command, command_row, operator_action_row
from streams.killswitch.heartbeat import HeartbeatPublisher
from streams.killswitch.signing import KeyRing, load_or_create_signing_key
from streams.killswitch.state import ActiveSet
from streams.killswitch.topic import read_state
from streams.pipeline.convert import hit_to_detection
from streams.pipeline.core import DetectionCore
from streams.pipeline.decode import Decoded, Record, decode_safely
from streams.pipeline.state import PartitionedState
from streams.pipeline.state_store import StateTopicReader
from streams.redaction import Redactor
from streams.settings import Settings
from streams.store import rows
from streams.store.sink import DATA_ERRORS, ClickHouseSink, UnstorableData, refine_token
from streams.telemetry import LagProbe, Telemetry

log = logging.getLogger(__name__)


def batch_token(kind: str, records: list[Record]) -> str:
    """Insert deduplication token: the offset ranges of the batch, per partition."""
    spans = _offset_spans(records)
    return kind + ":" + ";".join(f"{t}/{p}/{a}-{b}" for (t, p), (a, b) in sorted(spans.items()))


class Counters(dict[str, int]):
    def add(self, key: str, n: int = 1) -> None:
        self[key] = self.get(key, 0) + n


class StageClock:
    """Where a detect batch's time goes, per stage, so a lagging worker says why it lags.

    Stages are wall time, await time included. ``idle`` is the loop waiting for Kafka (or for
    ``batch_within_s``) between batches; the commit stages (``replay_fence``, ``store_*``,
    ``publish``) overlap the next batch's preparation, so the seconds add up to more than the
    wall clock when the pipeline is full.

    >>> clock = StageClock()
    >>> t = clock.begin(); t = clock.lap("decode", t); clock.prepared(); clock.committed(events=10)
    >>> t = clock.begin(); clock.prepared(); clock.committed(events=5)
    >>> sorted(clock.as_dict()["seconds"]), clock.as_dict()["batches"], clock.as_dict()["events"]
    (['decode', 'idle'], 2, 15)
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.batches = 0
        self.events = 0
        self._prepared_at = 0.0

    def begin(self) -> float:
        now = time.perf_counter()
        if self._prepared_at:
            self.seconds["idle"] = self.seconds.get("idle", 0.0) + now - self._prepared_at
            self._prepared_at = 0.0
        return now

    def lap(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
        return now

    def prepared(self) -> None:
        self._prepared_at = time.perf_counter()

    def waited(self, since: float) -> None:
        """The loop waited ``since`` → now for the previous batch's commit (the pipeline was full)."""
        self.lap("wait_commit", since)
        self._prepared_at = time.perf_counter()

    def committed(self, events: int) -> None:
        self.batches += 1
        self.events += events

    def as_dict(self) -> dict[str, Any]:
        n = max(1, self.batches)
        return {"batches": self.batches, "events": self.events,
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                "mean_ms": {k: round(1000 * v / n, 2) for k, v in self.seconds.items()}}


@dataclass
class PreparedBatch:
    """A detect batch between :meth:`WorkerRuntime.prepare` and :meth:`WorkerRuntime.commit`."""

    records: list[Record]
    decoded: Decoded
    detections: list[Detection]
    partials: list[Any]
    seq_parts: list[dict[str, Any]]
    state_items: list[tuple[int, str, str]]
    published: asyncio.Future[None]  # the detections, already on their way to the policy agent
    now: datetime
    redact: bool
    span: Any  # the batch's trace span, ended by the commit


class WorkerRuntime:
    def __init__(self, settings: Settings, bootstrap: str, core: DetectionCore, sink: ClickHouseSink, *,
                 issued: MutableMapping[str, Any] | None = None,
                 alert_state: MutableMapping[str, Any] | None = None, telemetry: Telemetry | None = None,
                 checkpoints: Mapping[str, Any] | None = None, checkpoint_topic: str | None = None) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.core = core
        self.sink = sink
        self.issued: MutableMapping[str, Any] = issued if issued is not None else {}
        self.alerts = AlertBook(alert_state if alert_state is not None else {},
                                lifecycle=Lifecycle(settings.alert_resolve_after_s, settings.alert_keep_firing_for_s))
        self.oncall = OnCall(self)  # lifecycle sweeps, silences, routing, operator requests (streams/alerting)
        assert settings.signing_key_path is not None
        self.signer = load_or_create_signing_key(settings.signing_key_path, settings.signing_key_id)
        self.keyring = KeyRing.load(settings.signing_key_path.parent / "keyring.json")
        self.active = ActiveSet()
        self.chain = AuditChain()  # detections, commands, operator actions: hash-chained (streams/audit)
        self._start_task: asyncio.Future[None] | None = None
        self._heartbeat: HeartbeatPublisher | None = None
        self.counters = Counters()
        self.stages = StageClock()
        self._fast: tuple[DetectionCore, Any] | None = None
        # detection ids the policy agent has acted on: the fast lane's and the full engine's copies of
        # one detection, and replays, are decided once
        self._decided: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._rules_fingerprint: str | None = None
        self.created_wall = time.time()
        self.last_progress_wall = time.time()
        # per-source-partition detection state, checkpointed to the compacted state topic
        # (see streams/pipeline/state.py and state_store.py)
        cps: dict[str, Any] = dict(checkpoints) if checkpoints is not None else {}
        self._checkpoint_cache = cps
        self.checkpoint_topic = checkpoint_topic
        self._state_reader: StateTopicReader | None = None
        self._state_loaded: dict[int, asyncio.Future[None]] = {}
        self.rules_state = PartitionedState("rules", core.new_engine, cps)
        self.metrics_state = PartitionedState("metrics", core.new_metrics, cps)
        self.health_state = PartitionedState("health", core.new_health, cps)
        self.policy_state = PartitionedState("policy", core.new_policies, cps)
        self.faults = Faults(settings.fault_crash_at)
        self.telemetry = telemetry or Telemetry(otlp_endpoint=settings.otlp_endpoint)
        self.lock = asyncio.Lock()
        self.redactor = Redactor(settings.redact_fields)
        if sink.on_retry is None:
            sink.on_retry = self.telemetry.sink_retry
        self._sink_alerted = False
        self._lag_probe: LagProbe | None = None
        self._background: set[asyncio.Future[Any]] = set()
        # detect batches prepared (their rule state already in the engines) but not yet committed: while any
        # are, rule state may only be checkpointed by the commits themselves, in order (see tick)
        self.uncommitted = 0
        self.max_event_ts = 0.0
        self.last_event_wall = time.time()
        self.max_partial_ts = 0.0
        self.max_seq_ts = 0.0
        self._src_progress: dict[str, tuple[float, float]] = {}  # "topic/partition" -> (max event ts, wall)
        self._active_since = self._last_seq_wall = 0.0
        self.latencies_ms: list[float] = []
        self._producer: AIOKafkaProducer | None = None
        self.topics = {name: settings.topic(name) for name in
                       ("events", "deadletter", "metrics", "health", "detections", "alerts", "killswitch",
                        "heartbeat")}

    # -- Kafka output -----------------------------------------------------------
    async def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5,
                                        max_request_size=16 * 1024 * 1024, **producer_kwargs(self.settings))
            await producer.start()
            self._producer = producer
        return self._producer

    async def publish(self, topic: str, items: list[tuple[bytes | None, bytes]]) -> None:
        """Send and wait until every message is acknowledged by the in-sync replicas."""
        if not items:
            return
        producer = await self.producer()
        futures = [await producer.send(topic, key=k, value=v) for k, v in items]
        await asyncio.gather(*futures)

    async def start(self) -> None:
        """Once, before the first record: rebuild the active kill-switch set from the compacted topic
        (so a restarted worker knows what is already paused), and start publishing heartbeats."""
        if self._start_task is None:
            self._start_task = asyncio.ensure_future(self._start())
        await asyncio.shield(self._start_task)

    async def _start(self) -> None:
        state = await read_state(self.bootstrap, self.topics["killswitch"], self.keyring,
                                 consumer_options=client_kwargs(self.settings))
        self.active = state.active
        await self.sink.run(lambda c: prepare_audit(c, self.chain, self.settings.content_retention_days))
        self._heartbeat = HeartbeatPublisher(await self.producer(), self.topics["heartbeat"], self.signer,
                                             interval_s=self.settings.heartbeat_interval_s)
        self._heartbeat.start()
        await self.oncall.start()

    # -- hot reload of the rule files ---------------------------------------------
    async def maybe_reload_rules(self) -> bool:
        """Timer: when the rule files changed, compile them off the loop and swap atomically.

        Returns True when a new set was swapped in. A set with any error is
        refused: the old rules keep running and a high-severity alert says why."""
        from rules.errors import RuleLoadError
        from streams.pipeline.reload import compile_candidate, fingerprint

        paths = list(self.settings.rules_paths)
        current = await asyncio.to_thread(fingerprint, paths)
        if self._rules_fingerprint is None:
            self._rules_fingerprint = current
            return False
        if current == self._rules_fingerprint:
            return False
        self._rules_fingerprint = current
        try:
            result = await asyncio.to_thread(compile_candidate, paths, self.core,
                                             allowed_lateness_s=self.settings.allowed_lateness_s)
        except RuleLoadError as exc:
            self.counters.add("rules_reload_failures")
            errors = [d for d in exc.diagnostics if d.severity == "error"]
            summary = "; ".join(str(d).splitlines()[0] for d in errors[:5])
            log.error("rule reload refused (%d errors); the previous rules keep running: %s", len(errors), summary)
            alert = self.alerts.raise_system_alert(
                rule_id="monitor.rules_reload_failed", severity="high",
                title="Changed rule files were rejected; the previous rules keep running",
                scope=Scope(kind="fleet", value=self.settings.app_id),
                summary=f"{len(errors)} error(s): {summary}", tags=["monitor_health", "rules"], save=False)
            await self.publish(self.topics["alerts"], [(alert.group_key.encode(), alert.model_dump_json().encode())])
            await self.sink.write("alerts", oncall_alert_rows([alert]), ONCALL_ALERT_COLUMNS)
            return False
        async with self.lock:
            new = result.core
            for partition, old_engine in self.rules_state:
                self.rules_state.instances[partition] = new.new_engine().swap_from(old_engine)
                self.rules_state.dirty.add(partition)
            self.rules_state.factory = new.new_engine
            if result.detectors_changed:
                self.metrics_state.instances.clear()
            self.metrics_state.factory = new.new_metrics
            if result.policies_changed:
                self.policy_state.instances.clear()
            self.policy_state.factory = new.new_policies
            self.core = new
        self.counters.add("rules_reloads")
        log.warning("rules reloaded: %s", new.describe())
        await self.checkpoint(*self._checkpointable_now())
        return True

    async def ensure_state(self, partitions: Any) -> None:
        """Before a partition's first record: load its checkpoints (once per ownership)."""
        if self.checkpoint_topic is None:
            return
        for partition in set(partitions):
            fut = self._state_loaded.get(partition)
            if fut is None:
                fut = self._state_loaded[partition] = asyncio.ensure_future(self._load_state(partition))
            try:
                await asyncio.shield(fut)
            except Exception:
                self._state_loaded.pop(partition, None)  # retried with the next batch
                raise

    async def _load_state(self, partition: int) -> None:
        if self._state_reader is None:
            assert self.checkpoint_topic is not None
            self._state_reader = StateTopicReader(self.bootstrap, self.checkpoint_topic,
                                                  **client_kwargs(self.settings))
        latest = await self._state_reader.read_partition(partition)
        for key, blob in latest.items():
            self._checkpoint_cache[key] = blob
        self.counters.add("state_partitions_loaded")

    async def checkpoint(self, *states: PartitionedState[Any]) -> None:
        """Write changed per-partition state to the state topic and await the acks (before offsets commit)."""
        await self._send_checkpoints(self._state_items(*states))

    def _state_items(self, *states: PartitionedState[Any]) -> list[tuple[int, str, str]]:
        """Snapshots of the changed partitions, taken now (sent later by :meth:`_send_checkpoints`)."""
        if self.checkpoint_topic is None:
            for state in states:
                state.dirty.clear()
            return []
        return [item for state in states for item in state.drain()]

    async def _send_checkpoints(self, items: list[tuple[int, str, str]]) -> None:
        if not items:
            return
        assert self.checkpoint_topic is not None
        producer = await self.producer()
        futures = [await producer.send(self.checkpoint_topic, key=orjson.dumps(key), value=orjson.dumps(blob),
                                       partition=partition) for partition, key, blob in items]
        await asyncio.gather(*futures)
        self.counters.add("checkpoints", len(items))

    def forget(self, revoked: list[tuple[str, int]]) -> None:
        """A rebalance took these partitions away: drop their state (the new owner restores it)."""
        states = {self.topics["events"]: self.rules_state, self.topics["metrics"]: self.metrics_state,
                  self.topics["health"]: self.health_state, self.topics["detections"]: self.policy_state}
        for topic, partition in revoked:
            if topic in states:
                states[topic].forget({partition})
                self._checkpoint_cache.pop(states[topic].key(partition), None)
                self._state_loaded.pop(partition, None)  # re-read if the partition comes back

    async def close(self) -> None:
        if self._state_reader is not None:
            await self._state_reader.close()
            self._state_reader = None
        if self._lag_probe is not None:
            await self._lag_probe.close()
            self._lag_probe = None
        self.telemetry.shutdown()
        await self.oncall.close()
        if self._heartbeat is not None:
            await self._heartbeat.stop()
            self._heartbeat = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    # -- watermark --------------------------------------------------------------
    def watermark(self) -> float:
        """Event-time watermark; advances with wall-clock time once the input goes quiet."""
        lateness = self.settings.allowed_lateness_s
        wm = self.max_event_ts - lateness
        if time.time() - self.last_event_wall > lateness:
            wm = max(wm, time.time() - 2 * lateness)
        return wm

    # -- events -> detections -------------------------------------------------
    async def handle_events(self, records: list[Record]) -> None:
        """One batch, start to finish (tests, benchmarks, backfills): :meth:`prepare` then :meth:`commit`."""
        await self.commit(await self.prepare(records))

    async def fastlane(self, records: list[Record], decoded: Decoded | None = None) -> int:
        """The fast lane: critical single-event rules on a batch as soon as it is fetched.

        Runs beside the detect agent on the same records (its own Faust agent on the events
        topic), so a breach becomes a detection — and a signed command — without waiting for the
        batches ahead of it to be evaluated and stored. The same rules also run in the full engine
        and yield the same detection ids: the policy agent acts on whichever copy comes first and
        skips the other; both are stored once (the audit chain skips ids it already holds).
        Returns the number of detections."""
        engine = self._fastlane_engine()
        if engine is None:
            return 0
        if decoded is None:
            decoded = decode_safely(records, max_message_bytes=self.settings.max_message_bytes)
        events = decoded.events
        hits = engine.process(events) + engine.advance(self.watermark())
        self.counters.add("fastlane_events", len(events))
        if not hits:
            return 0
        now = datetime.now(UTC)
        detections = [hit_to_detection(h, now) for h in hits]
        if self.redactor:
            detections = self.redactor.scrub_detections(detections, self.redactor.originals(events))
        await self._publish_detections(detections, timed_against=events)
        await self._store_detections(detections, token=batch_token("fast", records))
        self.counters.add("fastlane_detections", len(detections))
        return len(detections)

    def _fastlane_engine(self) -> Any:
        if self._fast is None or self._fast[0] is not self.core:  # built again after a rule reload
            self._fast = (self.core, self.core.new_fastlane_engine(self.settings.fastlane_min_severity))
        return self._fast[1]

    async def prepare(self, records: list[Record], decoded: Decoded | None = None) -> PreparedBatch:
        """Decode, evaluate and publish the batch's detections: everything but storing it.

        The worker's detect agent overlaps this with the earlier batches' :meth:`commit` (up to
        ``commits_in_flight`` of them), so ClickHouse parsing those on its thread does not stall the
        rules on this one, and a breach reaches the policy agent without waiting for any store.
        Detections go out first: a crash before the commit replays the batch, and the replayed
        detections carry the same ids, so policies never act twice."""
        clock = self.stages
        t = clock.begin()
        span = self.telemetry.start_batch_span("detect.batch", _offset_spans(records))
        span.set_attribute("overseer.messages", len(records))
        await self.ensure_state(r.partition for r in records)
        t = clock.lap("load_state", t)
        if decoded is None:  # else decoded already (shared with the fast lane: streams/pipeline/shared_decode.py)
            decoded = decode_safely(records, max_message_bytes=self.settings.max_message_bytes)
        events = decoded.events
        t = clock.lap("decode", t)
        async with self.lock:
            by_partition: dict[int, list[dict[str, Any]]] = {}
            for e in events:
                by_partition.setdefault(e["_src"][1], []).append(e)
            seq_parts, _ = seq_partials(events)
            if seq_parts:  # each partial says how far every source partition of the batch got
                progress = {f"{records[0].topic}/{p}": max(e["_ts"] for e in evs) for p, evs in by_partition.items()}
                for part in seq_parts:
                    part["src"] = progress
            if events:
                self.max_event_ts = max(self.max_event_ts, max(e["_ts"] for e in events))
                self.last_event_wall = time.time()
            watermark = self.watermark()
            hits: list[Hit] = []
            for partition, part_events in by_partition.items():
                engine = self.rules_state.touch(partition)
                hits += engine.process(part_events)
                hits += engine.advance(watermark)
            t = clock.lap("rules", t)
            partials = self.core.metrics.partials(events)
            t = clock.lap("partials", t)
            # the state as of this batch: checkpointed by its commit, before its offsets may commit
            state_items = self._state_items(self.rules_state)
        now = datetime.now(UTC)
        detections = [hit_to_detection(h, now) for h in hits]
        secrets: list[str] = []
        if self.redactor:
            secrets = self.redactor.originals(events)
            detections = self.redactor.scrub_detections(detections, secrets)
        published = asyncio.ensure_future(self._publish_detections(detections, timed_against=events))
        self._background.add(published)
        published.add_done_callback(self._background.discard)
        clock.lap("prepare_rest", t)
        clock.prepared()
        self.uncommitted += 1
        return PreparedBatch(records, decoded, detections, partials, seq_parts, state_items, published, now,
                             bool(secrets), span)

    async def commit(self, batch: PreparedBatch) -> None:
        """Store the batch and publish the rest; on return its records may be acked (offsets commit).

        Order (the delivery guarantee in the module docstring): events, dead letters, detections
        into ClickHouse; then dead letters, partials, health partials and the state checkpoint to
        Kafka — every write acknowledged before this returns."""
        try:
            await self._commit(batch)
        finally:
            self.uncommitted -= 1
            batch.span.end()

    async def _commit(self, batch: PreparedBatch) -> None:
        clock = self.stages
        t = time.perf_counter()
        records, decoded, detections = batch.records, batch.decoded, batch.detections
        events = decoded.events
        self.faults.point("before_sink")
        fresh, replayed = await self.sink.unstored_events(events, _offset_spans(records))
        t = clock.lap("replay_fence", t)
        token = batch_token("ev", records)
        if batch.redact:  # on copies: the fast lane shares these dicts and may not have evaluated them yet
            fresh = [dict(e) for e in fresh]
            self.counters.add("redacted_values", self.redactor.apply(fresh))
        decoded.deadletters += await self._write_events(fresh, batch.now,
                                                        refine_token(token, fresh) if replayed else token, records)
        t = clock.lap("store_events", t)
        await self.sink.write("deadletters", rows.deadletter_rows(decoded.deadletters), rows.DEADLETTER_COLUMNS,
                              token=batch_token("dl", records))
        await self._store_detections(detections, token=batch_token("det", records))
        t = clock.lap("store_detections", t)
        self.faults.point("after_sink")
        await asyncio.gather(
            self.publish(self.topics["deadletter"],
                         [(self._b64key(d.original_key_b64), d.model_dump_json().encode()) for d in decoded.deadletters]),
            self.publish(self.topics["metrics"], [(p.route_key.encode(), p.to_bytes()) for p in batch.partials]),
            self.publish(self.topics["health"],
                         [(str(p["producer_id"]).encode(), orjson.dumps(p)) for p in batch.seq_parts]),
            batch.published,
            self._send_checkpoints(batch.state_items),
        )
        clock.lap("publish", t)
        self.faults.point("before_ack")
        self.last_progress_wall = time.time()
        self.counters.add("messages_in", decoded.messages)
        self.counters.add("events_in", len(events))
        self.counters.add("deadlettered", len(decoded.deadletters))
        self.counters.add("detections", len(detections))
        self.counters.add("partials_out", len(batch.partials))
        self.telemetry.events_in(len(events))
        self.telemetry.stored("events", len(events))
        self.telemetry.deadlettered([d.reason for d in decoded.deadletters])
        self.telemetry.detections(len(detections))
        clock.committed(len(events))

    async def _write_events(self, events: list[dict[str, Any]], now: datetime, token: str,
                            records: list[Record]) -> list[DeadLetter]:
        """Insert events; those ClickHouse can never store (a number beyond its column's range, JSON
        nested too deep to serialise) are found by halving the batch and returned as dead letters."""
        if not events:
            return []
        try:
            document = rows.events_json(events, now)
            await self.sink.write_json("events", document, len(events), settings=rows.EVENT_JSON_SETTINGS,
                                       token=token, data_errors_raise=True)
            return []
        except (UnstorableData, *DATA_ERRORS) as exc:
            if len(events) == 1:
                return [_unstorable(events[0], exc, records, now)]
        mid = len(events) // 2
        left, right = events[:mid], events[mid:]
        return (await self._write_events(left, now, refine_token(token, left), records)
                + await self._write_events(right, now, refine_token(token, right), records))

    def _record_latency(self, detections: list[Detection], events: list[dict[str, Any]]) -> None:
        """Event-to-detection latency: from the event's Kafka timestamp to the detection being published."""
        if not detections:
            return
        wall = time.time()
        cited = {i for d in detections for i in d.event_ids}  # a few ids; the batch has thousands of events
        kts = {e["event_id"]: e["_kts"] for e in events if e["event_id"] in cited and "_kts" in e}
        for d in detections:
            stamps = [kts[i] for i in d.event_ids if i in kts]
            if stamps:
                latency = (wall - max(stamps)) * 1000
                self.latencies_ms.append(latency)
                self.telemetry.detection_latency_ms(latency)
        del self.latencies_ms[:-5000]

    @staticmethod
    def _b64key(b64: str | None) -> bytes | None:
        import base64

        return None if b64 is None else base64.b64decode(b64)

    async def _emit_hits(self, hits: list[Hit], counter: str | None = None) -> None:
        """Hits found outside an event batch (timers, partials): store, publish, count."""
        if not hits:
            return
        detections = [hit_to_detection(h) for h in hits]
        await self._store_detections(detections, token=None)
        await self._publish_detections(detections)
        self.counters.add("detections", len(detections))
        if counter:
            self.counters.add(counter, len(detections))

    async def _store_detections(self, detections: list[Detection], token: str | None) -> None:
        await self.chain.write(self.sink, "detections", rows.detection_rows(detections), rows.DETECTION_COLUMNS,
                               token=token)

    async def _publish_detections(self, detections: list[Detection],
                                  timed_against: list[dict[str, Any]] | None = None) -> None:
        await self.publish(self.topics["detections"],
                           [(str(d.scope).encode(), d.model_dump_json().encode()) for d in detections])
        if timed_against is not None:
            self._record_latency(detections, timed_against)

    async def tick(self) -> None:
        """Timer: let event time pass (absences, window closes) even when no event arrives."""
        async with self.lock:
            watermark = self.watermark()
            hits: list[Hit] = []
            for partition, engine in self.rules_state:
                fired = engine.advance(watermark)
                if fired:
                    self.rules_state.dirty.add(partition)
                    hits += fired
            seq_wm = self.seq_watermark()
            if seq_wm is not None:
                for partition, tracker in self.health_state:
                    fired = tracker.advance(seq_wm, own_clock=False)
                    if fired:
                        self.health_state.dirty.add(partition)
                        hits += fired
        await self._emit_hits(hits)
        await self.checkpoint(*self._checkpointable_now(), self.health_state)
        await self._advance_idle_metrics()

    def _checkpointable_now(self) -> list[PartitionedState[Any]]:
        """The rule state, unless detect batches are between prepare and commit.

        Their effects are already in the engines; a snapshot taken now and written before their commit
        would, after a crash, restore state ahead of the committed offsets, and the replay would count
        those events twice. The partitions stay dirty instead, and the next batch's commit writes them."""
        return [] if self.uncommitted else [self.rules_state]

    async def _advance_idle_metrics(self) -> None:
        """When partials stop arriving, wall-clock time closes the last buckets of the detectors."""
        lateness = self.settings.allowed_lateness_s
        if not self.max_partial_ts or time.time() - self.last_event_wall <= lateness:
            return
        watermark = max(self.max_partial_ts, time.time() - lateness) - lateness
        hits: list[Hit] = []
        async with self.lock:
            for partition, runtime in self.metrics_state:
                fired = runtime.advance(watermark)
                if fired:
                    self.metrics_state.dirty.add(partition)
                    hits += fired
        await self._emit_hits(hits, "detector_hits")
        await self.checkpoint(self.metrics_state)

    # -- monitor health -----------------------------------------------------------
    async def check_sink_health(self) -> None:
        """Timer: a monitor-health alert once ClickHouse writes have failed for ``sink_alert_after_s``.

        Published to Kafka first (ClickHouse is the thing that is down); its audit row is written
        in the background and lands when ClickHouse is back."""
        failing = self.sink.stats.failing_for_s
        if failing <= 0:
            self._sink_alerted = False
            return
        if self._sink_alerted or failing < self.settings.sink_alert_after_s:
            return
        self._sink_alerted = True
        alert = self.alerts.raise_system_alert(
            rule_id="monitor.clickhouse_unavailable", severity="critical",
            title="ClickHouse writes are failing; consumption is paused",
            scope=Scope(kind="fleet", value=self.settings.app_id),
            summary=f"inserts failing for {failing:.0f}s ({self.sink.stats.last_error}); retrying with backoff, "
                    "events wait in Kafka (lag grows), nothing is dropped",
            tags=["monitor_health", "clickhouse"], save=False)  # a timer: no stream event to key a table write
        self.counters.add("sink_failing_alerts")
        self.telemetry.monitor_alert("clickhouse_unavailable")
        log.error("monitor health: %s — %s", alert.title, alert.summary)
        await self.publish(self.topics["alerts"], [(alert.group_key.encode(), alert.model_dump_json().encode())])
        await self.oncall.observe([alert])  # routed like any alert (no partition: ClickHouse is not needed)
        task = asyncio.ensure_future(self.sink.write("alerts", oncall_alert_rows([alert]), ONCALL_ALERT_COLUMNS))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        self.counters.add("alerts")

    def stalled(self) -> str | None:
        """Why the worker is stuck, or None: input is waiting (lag) but no batch finished for a while.

        Served by /healthz, so an orchestrator's liveness probe restarts a wedged worker; restarting
        loses nothing (offsets commit only after a batch is stored and published)."""
        limit = self.settings.stall_after_s
        now = time.time()
        if now - max(self.created_wall, self.last_progress_wall) < limit:
            return None
        lag = self.telemetry.topic_lag(self.topics["events"])
        if lag <= 0:
            return None
        return (f"{lag} events are waiting on {self.topics['events']} but no batch finished for "
                f"{now - self.last_progress_wall:.0f}s")

    async def poll_lag(self) -> None:
        """Timer: refresh the consumer-lag gauge of the events topic (log end - committed, per partition)."""
        if self._lag_probe is None:
            self._lag_probe = LagProbe(self.bootstrap, self.settings.app_id, [self.topics["events"]],
                                       **client_kwargs(self.settings))
        for (topic, partition), lag in (await self._lag_probe.poll()).items():
            self.telemetry.consumer_lag(topic, partition, lag)

    # -- partial aggregates -> detector hits ------------------------------------
    async def handle_partials(self, items: list[tuple[int, bytes]]) -> None:
        """Partials arrive repartitioned by metric key: each partition's runtime owns its keys."""
        from rules.metrics import Partial

        await self.ensure_state(p for p, _ in items)
        by_partition: dict[int, list[Partial]] = {}
        for partition, value in items:
            try:
                p = Partial.from_bytes(value)
            except ValueError:
                self.counters.add("malformed_partials")  # counted, never fatal for the batch
                continue
            by_partition.setdefault(partition, []).append(p)
            self.max_partial_ts = max(self.max_partial_ts, p.max_ts)
        hits: list[Hit] = []
        async with self.lock:
            for partition, partials in by_partition.items():
                runtime = self.metrics_state.touch(partition)
                runtime.merge(partials)
                hits += runtime.advance(self.max_partial_ts - self.settings.allowed_lateness_s)
        await self._emit_hits(hits, "detector_hits")
        await self.checkpoint(self.metrics_state)

    # -- producer sequence summaries -> loss detection ---------------------------
    def seq_watermark(self) -> float | None:
        """Event time up to which a missing producer sequence number counts as lost (None: not yet).

        The low watermark of the events topic's partitions: events of one producer are spread over
        partitions (keyed by agent run), so a gap may only be declared once every partition has
        passed it — else a partition that is merely behind (a backlog, a restarted worker) would
        look like loss. A partition silent for ``allowed_lateness_s`` of wall time stops holding it
        back; when nothing arrives at all — neither events here nor partials from any worker — wall
        time lets the last gaps be declared."""
        lateness = self.settings.allowed_lateness_s
        if not self.max_seq_ts:
            return None
        now = time.time()
        if now - max(self.last_event_wall, self._last_seq_wall) > lateness:  # idle: time moves on without events
            return max(self.max_seq_ts, now - lateness) - lateness
        low = self.max_seq_ts
        for p in range(self.settings.topic_partitions):
            # silence counts from when traffic (re)started, not from the worker's start or a report before an
            # idle spell: after minutes of quiet, every partition but the first to speak would look silent
            ts, heard = self._src_progress.get(f"{self.topics['events']}/{p}", (None, 0.0))
            if now - max(heard, self._active_since) > lateness:  # silent: no longer holds the watermark back
                continue
            if ts is None:
                return None
            low = min(low, ts)
        return low - lateness

    async def handle_seq_partials(self, items: list[tuple[int, bytes]]) -> None:
        """Partials are keyed by producer_id, so one tracker sees each producer's whole sequence."""
        await self.ensure_state(p for p, _ in items)
        by_partition: dict[int, list[dict[str, Any]]] = {}
        now = time.time()
        if now - self._last_seq_wall > self.settings.allowed_lateness_s:
            self._active_since = now  # partials again after an idle spell (or for the first time)
        self._last_seq_wall = now  # partials from any worker: the stream is not idle
        for partition, value in items:
            part = orjson.loads(value)
            by_partition.setdefault(partition, []).append(part)
            self.max_seq_ts = max(self.max_seq_ts, float(part["max_ts"]))
            for src, ts in (part.get("src") or {}).items():
                seen = self._src_progress.get(src)
                self._src_progress[src] = (max(float(ts), seen[0] if seen else float(ts)), now)
        seq_wm = self.seq_watermark()
        hits: list[Hit] = []
        async with self.lock:
            for partition, parts in by_partition.items():
                tracker = self.health_state.touch(partition)
                hits += tracker.observe_partials(parts, own_clock=False)  # partials of every partition
                if seq_wm is not None:
                    hits += tracker.advance(seq_wm, own_clock=False)
        await self._emit_hits(hits, "producer_gaps")
        await self.checkpoint(self.health_state)

    # -- detections -> alerts and kill-switch commands --------------------------
    async def handle_detection(self, value: bytes, partition: int = 0) -> None:
        """One detection, decided and its bookkeeping awaited (tests and tools; the agent batches)."""
        await self.decide_detections([(value, partition)])

    async def decide_detections(self, items: list[tuple[bytes, int]],
                                focus: Callable[[int], None] | None = None,
                                defer: bool = False) -> Callable[[], Any] | None:
        """Policies over a batch of detections (the ``policy`` agent): containment first.

        Every decision of the batch is made, then all its signed commands are published in one
        round of acks — before the alerts are stored and routed, so a kill-switch never waits
        behind the on-call bookkeeping. Then one alert insert and publish, one checkpoint.
        Per detection, this path used to cost one ClickHouse insert and three Kafka round trips;
        at a few dozen detections a second the commands fell tens of seconds behind.

        ``focus(i)`` is called before item ``i``'s state changes: the Faust agent makes item ``i``
        the stream's current event, so table writes (alert state, issued keys) go to its partition.
        With ``defer``, the alerts' store/publish/routing and the policy-state checkpoint are
        returned as a coroutine function instead of awaited: the caller runs it (one at a time, in
        order) and acks the batch after it."""
        if not items:
            return None
        await self.ensure_state(partition for _, partition in items)
        now = datetime.now(UTC)
        alerts: list[Any] = []
        commands: list[tuple[int, Any, Any]] = []  # (item index, decision, command)
        pending_keys: set[str] = set()
        for i, (value, partition) in enumerate(items):
            if focus is not None:
                focus(i)
            det = Detection.model_validate_json(value)
            if det.detection_id in self._decided:  # counted, never silent
                self.counters.add("detections_already_decided")
                self.telemetry.suppressed(1, "already_decided")
                continue
            self._decided[det.detection_id] = None
            if len(self._decided) > 100_000:
                self._decided.popitem(last=False)
            policies = self.policy_state.touch(partition)
            alert = self.alerts.on_detection(det, now, partition=partition)
            if alert is not None:
                alerts.append(alert)
            else:  # folded into an open alert, shadow mode or below the minimum severity: counted, never silent
                self.telemetry.suppressed(1, "folded_or_filtered")
            for scope_kind, scope_value in ((("deployment", det.deployment_id), ("model", det.model),
                                            ("tenant", det.tenant_id))):
                if scope_value:
                    policies.observe_scope(scope_kind, scope_value, det.ts.timestamp())
            for decision in policies.on_detection(det.model_dump(mode="json"), now.timestamp()):
                command, alert = self._decide(decision, now, pending_keys)
                if command is not None:
                    commands.append((i, decision, command))
                    pending_keys.add(decision.idempotency_key)
                if alert is not None:
                    alerts.append(alert)
        if commands:
            for _ in commands:
                self.faults.point("before_command")
            await self.publish(self.topics["killswitch"],
                               [(cmd.kafka_key(), cmd.model_dump_json().encode()) for _, _, cmd in commands])
            for i, decision, cmd in commands:
                self.faults.point("after_command")
                if focus is not None:
                    focus(i)
                self.issued[decision.idempotency_key] = {"command_id": cmd.command_id, "issued_at": now.isoformat()}
                self.counters.add("killswitch_commands")
                self.telemetry.command(cmd.action, cmd.mode)
        state_items = self._state_items(self.policy_state)

        async def bookkeeping() -> None:
            if alerts:
                await self._emit_alerts(alerts)
            await self._send_checkpoints(state_items)

        if defer:  # the policy agent runs it while it decides the next batch (and acks after it)
            return bookkeeping
        await bookkeeping()
        return None

    def _decide(self, decision: Any, now: datetime, pending_keys: set[str]) -> tuple[Any, Any]:
        """``(signed command or None, alert or None)`` for one policy decision."""
        if decision.outcome == "needs_confirmation":
            self.counters.add("blast_radius_holds")
            alert = self.alerts.raise_system_alert(
                rule_id=f"policy.{decision.policy_id}.needs_confirmation", severity="critical",
                title=f"Policy {decision.policy_id} needs a human's confirmation",
                scope=Scope(kind=decision.scope_kind, value=decision.scope_value),
                summary=decision.reason, tags=["monitor_health", "killswitch.blast_radius"], now=now)
            return None, alert
        if decision.outcome != "command":
            self.counters.add(f"policy_{decision.outcome}")
            self.telemetry.suppressed(1, f"policy_{decision.outcome}")
            return None, None
        key = decision.idempotency_key
        if key in self.issued or key in pending_keys or self.active.seen_key(key):
            self.counters.add("killswitch_replays_suppressed")
            self.telemetry.suppressed(1, "killswitch_replay")
            return None, None
        cmd = build_command(decision, self.signer, now, issuer=f"policy:{decision.policy_id}")
        if self.active.would_downgrade(cmd, now.timestamp()):
            self.counters.add("killswitch_downgrades_skipped")
            return None, None
        return cmd, None

    async def _emit_alerts(self, alerts: list[Any]) -> None:
        await self.emit_alerts(alerts)

    async def emit_alerts(self, alerts: list[Any]) -> None:
        """Store and publish alert changes, then hand them to the notifier (silences, inhibition, routing)."""
        await self.sink.write("alerts", oncall_alert_rows(alerts), ONCALL_ALERT_COLUMNS)
        await self.publish(self.topics["alerts"], [(a.group_key.encode(), a.model_dump_json().encode())
                                                   for a in alerts])
        self.counters.add("alerts", len(alerts))
        await self.oncall.observe(alerts)

    async def handle_alert_op(self, value: bytes, partition: int = 0) -> None:
        """An operator's ack/resolve or the quiet-period sweep, applied by the partition's owner."""
        await self.oncall.handle_op(value, partition)

    # -- kill-switch topic -> audit tables --------------------------------------
    async def handle_command(self, value: bytes) -> None:
        verdict = self.keyring.verify(value)
        if not verdict.ok or verdict.command is None:
            # forged, altered or unknown-key commands are recorded nowhere as active; count and keep going
            self.counters.add(f"killswitch_rejected_{verdict.reason}")
            log.warning("rejected a kill-switch command: %s %s", verdict.reason, verdict.detail)
            return
        cmd = verdict.command
        self.active.apply(cmd, time.time())
        row = command_row(cmd)
        await self.chain.write(self.sink, "killswitch_commands", [list(row.values())], list(row.keys()),
                               token=stable_id("cmd", cmd.command_id, cmd.signature or ""))
        action = operator_action_row(cmd)
        if action is not None:
            await self.chain.write(self.sink, "operator_actions", [list(action.values())], list(action.keys()))
        self.counters.add("killswitch_recorded")

    # -- introspection ----------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)

        def pct(q: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None

        return {"counters": dict(self.counters), "sink": self.sink.stats.as_dict(), "stages": self.stages.as_dict(),
                "consumer_lag": self.telemetry.lag_by_partition(),
                "watermark": self.watermark(), "detection_latency_ms": {"p50": pct(0.5), "p99": pct(0.99)},
                "alerts": self.alerts.stats, "oncall": self.oncall.stats(), "core": self.core.describe(),
                "rules_engine": _sum_stats(e.stats for _, e in self.rules_state),
                "metrics": _sum_stats(m.stats for _, m in self.metrics_state),
                "policies": _sum_stats(p.stats for _, p in self.policy_state),
                "state": {s.name: {"partitions": sorted(s.instances), "restored": s.restored,
                                   "restore_failures": s.restore_failures}
                          for s in (self.rules_state, self.metrics_state, self.health_state, self.policy_state)}}


def _sum_stats(stats: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for one in stats:
        for k, v in dict(one).items():
            if isinstance(v, (int, float)):
                total[k] = total.get(k, 0) + v
    return total


def _unstorable(event: dict[str, Any], exc: BaseException, records: list[Record], now: datetime) -> DeadLetter:
    topic, partition, offset = event.get("_src") or ("", 0, 0)
    rec = next((r for r in records if (r.topic, r.partition, r.offset) == (topic, partition, offset)), None)
    raw = rec.value if rec is not None and rec.value is not None else b""
    return DeadLetter(reason=DeadLetterReason.schema_violation,
                      error=f"event {event.get('event_id')} cannot be stored: {type(exc).__name__}: {exc}"[:2000],
                      source_topic=topic, source_partition=partition, source_offset=offset, index_in_message=None,
                      original_key_b64=DeadLetter.encode(rec.key) if rec is not None else None,
                      original_b64=DeadLetter.encode(raw) or "", original_size=len(raw), received_at=now)


def _offset_spans(records: list[Record]) -> dict[tuple[str, int], tuple[int, int]]:
    spans: dict[tuple[str, int], tuple[int, int]] = {}
    for r in records:
        lo, hi = spans.get((r.topic, r.partition), (r.offset, r.offset))
        spans[(r.topic, r.partition)] = (min(lo, r.offset), max(hi, r.offset))
    return spans


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=str)
