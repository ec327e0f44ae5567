"""Orchestrates `overseer demo`: Kafka, a worker, traffic, a live view, a summary.

The demo is the main job on the embedded default: a real Apache Kafka broker
from the local launcher (unless ``OVERSEER_KAFKA_BOOTSTRAP`` is set), a real
worker process holding the embedded ClickHouse, and synthetic fleet traffic
sent as producer-side batches. The worker owns the store, so the demo reads
the results through the worker's HTTP API.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.console import Console
from rich.live import Live
from rich.table import Table

from streams.demo.fleet import FleetGenerator, malformed_messages
from streams.kafka.clients import client_kwargs, producer_kwargs
from streams.kafka.launcher import LocalKafka, free_port
from streams.kafka.topics import ensure_topics
from streams.settings import Settings


@dataclass
class DemoOptions:
    duration: float = 40.0
    rate: float = 400.0  # events per wall second
    speed: float = 30.0  # simulated seconds per wall second
    seed: int = 7
    keep_kafka: bool = False
    settle_timeout: float = 60.0  # seconds without progress before the demo gives up waiting


@dataclass
class LiveState:
    sent: int = 0
    messages: int = 0
    feed: deque = field(default_factory=lambda: deque(maxlen=14))
    alerts: Counter = field(default_factory=Counter)
    commands: list[dict[str, Any]] = field(default_factory=list)



class Demo:
    def __init__(self, settings: Settings, options: DemoOptions, console: Console) -> None:
        self.settings = settings
        self.opt = options
        self.console = console
        self.state = LiveState()
        self.worker: subprocess.Popen[bytes] | None = None
        self.started_kafka = False
        self.web_port = free_port()
        self.log_path = settings.home / "logs" / f"worker-{int(time.time())}.log"

    # -- infrastructure -------------------------------------------------------------
    def start_kafka(self) -> str:
        if self.settings.kafka_bootstrap:
            return self.settings.kafka_bootstrap
        launcher = LocalKafka(self.settings.home, self.settings.cache_dir, engine=self.settings.kafka_engine)
        if not launcher.status()["running"]:
            with self.console.status("starting Apache Kafka (KRaft) on loopback…"):
                cluster = launcher.up(brokers=1)
            self.started_kafka = True
        else:
            cluster = launcher.load()
            assert cluster is not None
        if cluster.kind == "tansu":
            self.console.print("[yellow]warning:[/] no Java runtime — running on the Tansu broker, which keeps "
                               "everything in memory (nothing survives a broker restart)")
            self.settings.kafka_idempotence = False
        self.console.print(f"[green]Kafka[/] {cluster.kind} {cluster.version} at {cluster.bootstrap}")
        return cluster.bootstrap

    def start_worker(self, bootstrap: str) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OVERSEER_KAFKA_BOOTSTRAP": bootstrap, "OVERSEER_WORKER_WEB_PORT": str(self.web_port),
               "OVERSEER_HOME": str(self.settings.home.resolve()),
               "OVERSEER_KAFKA_IDEMPOTENCE": str(self.settings.kafka_idempotence).lower()}
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def stop(self) -> None:
        if self.worker and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)
            try:
                self.worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.worker.pid, signal.SIGKILL)
                self.worker.wait()
        if self.started_kafka and not self.opt.keep_kafka:
            LocalKafka(self.settings.home, self.settings.cache_dir).down()

    def _worker_log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    async def wait_worker_ready(self, http: aiohttp.ClientSession, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.worker is not None and self.worker.poll() is not None:
                raise RuntimeError(f"the worker exited during start-up:\n{self._worker_log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(f"{self.base_url}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status in (200, 503):
                        # the runtime is created lazily on first use; /overseer/stats forces it
                        async with http.get(f"{self.base_url}/overseer/stats") as s:
                            if s.status == 200:
                                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"the worker did not become ready in {timeout:.0f}s:\n{self._worker_log_tail()}")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    async def sql(self, http: aiohttp.ClientSession, query: str) -> list[list[Any]]:
        async with http.post(f"{self.base_url}/overseer/sql", json={"sql": query}) as r:
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"query failed: {body.get('error')}")
            return body["rows"]

    # -- the run ---------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        bootstrap = self.start_kafka()
        kw = client_kwargs(self.settings)
        await ensure_topics(bootstrap, self.settings, **kw)
        events_topic = self.settings.topic("events")
        start_offsets = await self._end_offsets(bootstrap, events_topic)
        live_offsets = {t: await self._end_offsets(bootstrap, self.settings.topic(t)) for t in ("alerts", "killswitch")}
        run_started = datetime.now(UTC)
        self.start_worker(bootstrap)
        async with aiohttp.ClientSession() as http:
            with self.console.status("starting the worker (topics, migrations, rules)…"):
                await self.wait_worker_ready(http)
            self.console.print(f"[green]worker[/] ready at {self.base_url} (log: {self.log_path})")
            watcher = asyncio.create_task(self._watch(bootstrap, live_offsets))
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, max_request_size=8 * 1024 * 1024,
                                        **producer_kwargs(self.settings))
            await producer.start()
            t_wall0 = time.time()
            try:
                await self._traffic(producer, events_topic)
            finally:
                await producer.stop()
            gen_seconds = time.time() - t_wall0
            summary = await self._settle(http, events_topic, start_offsets, run_started)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        summary["generation_seconds"] = round(gen_seconds, 1)
        summary["send_rate_events_per_s"] = round(self.state.sent / max(gen_seconds, 1e-9), 1)
        return summary

    async def _end_offsets(self, bootstrap: str, topic: str) -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **client_kwargs(self.settings))
        await consumer.start()
        try:
            parts = consumer.partitions_for_topic(topic) or set()
            if not parts:
                await consumer._client.force_metadata_update()  # noqa: SLF001 - first metadata fetch
                parts = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            ends = await consumer.end_offsets(tps)
            return {tp.partition: off for tp, off in ends.items()}
        finally:
            await consumer.stop()

    async def _traffic(self, producer: AIOKafkaProducer, topic: str) -> None:
        opt = self.opt
        sim_span = opt.duration * opt.speed
        now = time.time()
        gen = FleetGenerator(start_ts=now - sim_span, seed=opt.seed)
        bad = malformed_messages(self.settings.max_message_bytes)
        tick = 0.1
        t0 = time.monotonic()
        sim_t = now - sim_span
        sent_bad = False
        live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False) \
            if self.console.is_terminal else contextlib.nullcontext()
        with live:
            while (elapsed := time.monotonic() - t0) < opt.duration:
                progress = elapsed / opt.duration
                target_sim = now - sim_span + elapsed * opt.speed
                count = max(1, int(opt.rate * tick))
                groups: dict[str, list[dict[str, Any]]] = {}
                for event in gen.events_between(sim_t, target_sim, count, progress):
                    groups.setdefault(gen.key_of(event), []).append(event)
                sim_t = target_sim
                futures = []
                for key, events in groups.items():
                    payload = orjson.dumps({"kind": "batch", "producer_id": "overseer-demo", "events": events})
                    futures.append(await producer.send(topic, key=key.encode(), value=payload))
                    self.state.sent += len(events)
                    self.state.messages += 1
                if not sent_bad and progress > 0.1:
                    for _reason, raw in bad:
                        futures.append(await producer.send(topic, key=b"demo-malformed", value=raw))
                        self.state.sent += 1
                        self.state.messages += 1
                    sent_bad = True
                await asyncio.gather(*futures)
                if isinstance(live, Live):
                    live.update(self._render())
                await asyncio.sleep(max(0.0, tick - ((time.monotonic() - t0) - elapsed)))

    def _render(self) -> Table:
        table = Table(title=f"Overseer demo — {self.state.sent} events sent in {self.state.messages} messages",
                      expand=True)
        table.add_column("time", no_wrap=True)
        table.add_column("what", no_wrap=True)
        table.add_column("severity / action", no_wrap=True)
        table.add_column("scope")
        table.add_column("summary")
        for row in list(self.state.feed):
            table.add_row(*row)
        return table

    async def _watch(self, bootstrap: str, start: dict[str, dict[int, int]]) -> None:
        """Follow the alerts and kill-switch topics from where they were when the demo began."""
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **client_kwargs(self.settings))
        await consumer.start()
        try:
            tps = []
            for short, offsets in start.items():
                for p in offsets:
                    tps.append(TopicPartition(self.settings.topic(short), p))
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, start[tp.topic.split(".")[1]][tp.partition])
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                for tp, messages in batch.items():
                    for m in messages:
                        self._on_live(tp.topic, orjson.loads(m.value))
        finally:
            await consumer.stop()

    def _on_live(self, topic: str, msg: dict[str, Any]) -> None:
        clock = datetime.now(UTC).strftime("%H:%M:%S")
        if topic == self.settings.topic("alerts"):
            self.state.alerts[msg["severity"]] += 1
            if msg.get("count", 1) > 1:
                return  # a repeat folded into an open alert
            row = (clock, "ALERT", msg["severity"], f"{msg['scope']['kind']}={msg['scope']['value']}",
                   msg["title"][:70])
        else:
            self.state.commands.append(msg)
            row = (clock, "KILL-SWITCH", f"{msg['action']} ({msg['mode']})",
                   f"{msg['scope']['kind']}={msg['scope']['value']}", msg["reason"][:70])
        self.state.feed.append(row)
        if not self.console.is_terminal:
            self.console.print("  ".join(row))

    async def _settle(self, http: aiohttp.ClientSession, topic: str, start: dict[int, int],
                      run_started: datetime) -> dict[str, Any]:
        """Wait until every sent event is stored or dead-lettered, then count what happened."""
        since = "(" + " OR ".join(f"(src_partition = {p} AND src_offset >= {o})" for p, o in start.items()) + ")"
        dl_since = since.replace("src_partition", "source_partition").replace("src_offset", "source_offset")
        ts = run_started.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        # a loaded machine may lag behind the sender: wait while the worker makes progress, and give up
        # only after settle_timeout seconds without any (or 10x that in total)
        last_progress = time.monotonic()
        hard_deadline = last_progress + 10 * self.opt.settle_timeout
        stored = dead = 0
        with self.console.status("waiting for the worker to store everything…"):
            while time.monotonic() < hard_deadline:
                now_stored = (await self.sql(http, f"SELECT count() FROM events FINAL WHERE src_topic = '{topic}' "
                                                   f"AND {since}"))[0][0]
                now_dead = (await self.sql(http, f"SELECT count() FROM deadletters FINAL WHERE source_topic = "
                                                 f"'{topic}' AND {dl_since}"))[0][0]
                if now_stored + now_dead > stored + dead:
                    last_progress = time.monotonic()
                stored, dead = now_stored, now_dead
                if stored + dead >= self.state.sent:
                    break
                if time.monotonic() - last_progress > self.opt.settle_timeout:
                    break
                await asyncio.sleep(1.0)
            # detections flow on to policies: give the last ones a moment to land
            previous = -1
            for _ in range(20):
                commands = (await self.sql(http, "SELECT count() FROM killswitch_commands FINAL "
                                                 f"WHERE issued_at >= '{ts}'"))[0][0]
                detections = (await self.sql(http, f"SELECT count() FROM detections FINAL WHERE "
                                                   f"detected_at >= '{ts}'"))[0][0]
                if commands + detections == previous:
                    break
                previous = commands + detections
                await asyncio.sleep(1.5)
        by_rule = await self.sql(http, "SELECT rule_id, severity, count() AS n FROM detections FINAL "
                                       f"WHERE detected_at >= '{ts}' GROUP BY rule_id, severity ORDER BY n DESC")
        cmds = await self.sql(http, "SELECT action, scope_kind, scope_value, mode, issuer FROM killswitch_commands "
                                    f"FINAL WHERE issued_at >= '{ts}' ORDER BY issued_at")
        dl_reasons = await self.sql(http, f"SELECT reason, count() FROM deadletters FINAL WHERE source_topic = "
                                          f"'{topic}' AND {dl_since} GROUP BY reason ORDER BY reason")
        alerts = (await self.sql(http, f"SELECT uniqExact(alert_id) FROM alerts FINAL WHERE updated_at >= '{ts}'"))[0][0]
        async with http.get(f"{self.base_url}/overseer/stats") as r:
            stats = await r.json()
        return {
            "events_sent": self.state.sent,
            "messages_sent": self.state.messages,
            "events_stored": stored,
            "deadlettered": dead,
            "deadletter_reasons": {r: n for r, n in dl_reasons},
            "detections": sum(n for _, _, n in by_rule),
            "detections_by_rule": {f"{rule} ({sev})": n for rule, sev, n in by_rule},
            "alerts": alerts,
            "killswitch_commands": len(cmds),
            "commands": [{"action": a, "scope": f"{k}={v}", "mode": m, "issuer": i} for a, k, v, m, i in cmds],
            "detection_latency_ms": stats.get("detection_latency_ms"),
            "worker": {k: stats.get(k) for k in ("counters", "rules_engine", "metrics", "policies", "sink")},
            "complete": stored + dead == self.state.sent,
        }


def render_summary(console: Console, summary: dict[str, Any]) -> None:
    table = Table(title="Overseer demo — summary", show_header=False)
    for key in ("events_sent", "events_stored", "deadlettered", "detections", "alerts", "killswitch_commands",
                "send_rate_events_per_s"):
        table.add_row(key, str(summary.get(key)))
    console.print(table)
    rules = Table("detections by rule", "count")
    for rule, n in summary["detections_by_rule"].items():
        rules.add_row(rule, str(n))
    console.print(rules)
    for c in summary["commands"]:
        console.print(f"  [bold red]{c['action']}[/] {c['scope']} ({c['mode']}) by {c['issuer']}")
    latency = summary.get("detection_latency_ms") or {}
    if latency.get("p50") is not None:
        console.print(f"event-to-detection latency: p50 {latency['p50']} ms, p99 {latency['p99']} ms "
                      "(from the event's Kafka timestamp to the detection being published)")
    verdict = "[green]every event accounted for[/]" if summary["complete"] else "[red]events missing![/]"
    console.print(f"{verdict}: stored {summary['events_stored']} + dead-lettered {summary['deadlettered']} "
                  f"of {summary['events_sent']} sent")


def run_demo(settings: Settings, options: DemoOptions, as_json: bool) -> dict[str, Any]:
    console = Console(stderr=as_json)
    demo = Demo(settings, options, console)
    try:
        summary = asyncio.run(demo.run())
    finally:
        demo.stop()
    if as_json:
        print(orjson.dumps(summary).decode())
    else:
        render_summary(console, summary)
    return summary


