"""One bench run: the same events through the ceiling, the baseline and Overseer's workers.

Order: generate the events once → produce them to fresh topics (producer-side
batches; one event per message for the baseline) → (a) ceiling, (b) baseline,
(c) Overseer with 1, 2, … workers on as many partitions, each phase reading a
topic that already holds every event, so all three measure consumption from
the first event to the last → event-to-detection latency on live traffic →
state bytes per active key. Each phase runs in its own process; the peak RSS
of each is sampled with psutil.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.bench import traffic
from streams.bench.procs import PeakRss, Worker, python_module, stop
from streams.kafka.launcher import LocalKafka
from streams.settings import Settings


@dataclass
class BenchOptions:
    events: int = 100_000
    batch_size: int = 500
    workers: tuple[int, ...] = (1, 2)
    baseline_events: int = 20_000
    latency_seconds: float = 10.0
    latency_rate: float = 1000.0
    state_keys: int = 1_000_000
    seed: int = 7
    single_message: bool = True
    workdir: Path | None = None
    keep: bool = False
    timeout_s: float = 600.0


@dataclass
class Bench:
    settings: Settings
    opts: BenchOptions
    say: Callable[[str], None] = print
    rss: PeakRss = field(default_factory=PeakRss)
    started_kafka: LocalKafka | None = None

    # -- infrastructure -----------------------------------------------------------
    def bootstrap(self, workdir: Path) -> tuple[str, dict[str, str]]:
        env: dict[str, str] = {}
        if self.settings.kafka_bootstrap:
            if not self.settings.kafka_idempotence:
                env["OVERSEER_KAFKA_IDEMPOTENCE"] = "false"
            return self.settings.kafka_bootstrap, env
        launcher = LocalKafka(workdir, self.settings.cache_dir, base_port=None, engine=self.settings.kafka_engine)
        self.say("starting a Kafka broker for the bench …")
        cluster = launcher.up(brokers=1)
        self.started_kafka = launcher
        if cluster.kind == "tansu":
            env["OVERSEER_KAFKA_IDEMPOTENCE"] = "false"
        return cluster.bootstrap, env

    # -- phases -------------------------------------------------------------------
    def module_json(self, module: str, *args: str, name: str, timeout: float) -> dict[str, Any]:
        proc = python_module(module, *args)
        self.rss.watch(proc.pid)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except Exception:
            stop(proc)
            raise
        if proc.returncode != 0:
            raise RuntimeError(f"{name} failed ({proc.returncode}):\n{out.decode(errors='replace')[-3000:]}")
        result = orjson.loads(out.strip().splitlines()[-1])
        result["peak_rss_mb"] = self.rss.peak_mb(proc.pid)
        return dict(result)

    def baseline(self, bootstrap: str, topic: str, expect: int, workdir: Path) -> dict[str, Any]:
        out = workdir / "baseline.json"
        proc = python_module("streams.bench.baseline", "--bootstrap", bootstrap, "--topic", topic,
                             "--app-id", f"{topic}-baseline", "--expect", str(expect), "--out", str(out),
                             log=workdir / "baseline.log")
        self.rss.watch(proc.pid)
        deadline = time.monotonic() + self.opts.timeout_s
        try:
            while not out.exists():
                if proc.poll() is not None:
                    raise RuntimeError(f"baseline exited with {proc.returncode}:\n"
                                       f"{(workdir / 'baseline.log').read_text(errors='replace')[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError("baseline did not finish in time")
                time.sleep(0.2)
            time.sleep(0.1)
            result = dict(orjson.loads(out.read_bytes()))
            result["peak_rss_mb"] = self.rss.peak_mb(proc.pid)
            return result
        finally:
            stop(proc)

    def overseer(self, n: int, bootstrap: str, prefix: str, events: list[dict[str, Any]], workdir: Path,
                 env: dict[str, str], latency: bool, single: bool = False) -> dict[str, Any]:
        """Start ``n`` workers, wait until each owns a partition, then send every event and time the stores."""
        topic = f"{prefix}.events.v1"
        asyncio.run(traffic.create_topic(bootstrap, topic, n))
        workers = [Worker(workdir / f"{prefix}-w{i}", bootstrap, prefix, n, env) for i in range(n)]
        try:
            for w in workers:
                w.start()
                assert w.proc is not None
                self.rss.watch(w.proc.pid)
            for w in workers:
                w.wait_ready()
            first_ts = datetime.fromisoformat(min(e["ts"] for e in events)).timestamp()
            self._settle_group(bootstrap, topic, workers, before_ts=first_ts)
            base = sum(int(w.sql("SELECT count() FROM events")[0][0]) for w in workers)
            mark = [self._last_ingested(w) for w in workers]
            messages = (traffic.single_messages(events, partitions=n) if single else
                        traffic.batched_messages(events, partitions=n, batch_size=self.opts.batch_size))
            cpu0 = [_cpu_seconds(w) for w in workers]
            sent_at = time.perf_counter()
            asyncio.run(traffic.produce(bootstrap, topic, messages))
            counts = self._wait_stored(workers, base + len(events))
            wall = time.perf_counter() - sent_at
            cpu = sum(_cpu_seconds(w) - c for w, c in zip(workers, cpu0, strict=True))
            rates = [self._store_rate(w, m) for w, m in zip(workers, mark, strict=True)]
            stats = [w.get("/overseer/stats") for w in workers]
            # from the first stored batch to the last; with too few batches for that (tiny runs), from the
            # first message sent to the last event stored, sending included
            by_marks = all(r["batches"] >= 3 for r in rates)
            eps = sum(r["eps"] for r in rates) if by_marks else len(events) / wall
            result: dict[str, Any] = {
                "workers": n, "stored": sum(counts) - base, "stored_per_worker": counts,
                "eps_total": round(eps, 1), "eps_per_worker": round(eps / n, 1),
                "per_worker": rates, "wall_s": round(wall, 3), "rate_from": "batch_marks" if by_marks else "wall",
                "wall_eps_total": round(len(events) / wall, 1), "cpu_seconds": round(cpu, 3),
                "cpu_eps": round(len(events) / cpu, 1) if cpu > 0 else 0.0,
                "deadlettered": sum(int(s["counters"].get("deadlettered", 0)) for s in stats),
                "detections": sum(int(s["counters"].get("detections", 0)) for s in stats),
                "rules": stats[0]["core"].get("rules"), "detectors": stats[0]["core"].get("detectors"),
                # where each worker's time went (seconds per stage), and how busy its ClickHouse thread was
                "stages": [{**(s.get("stages") or {}), "sink_busy_s": s.get("sink", {}).get("busy_s")} for s in stats],
            }
            if latency:
                result["latency"] = asyncio.run(self.live_latency(bootstrap, prefix, n))
            result["peak_rss_mb"] = [self.rss.peak_mb(w.proc.pid) for w in workers if w.proc is not None]
            return result
        finally:
            for w in workers:
                w.stop()

    def _settle_group(self, bootstrap: str, topic: str, workers: list[Worker], *, before_ts: float) -> int:
        """Send one probe event per partition until every worker has stored one: the group is settled.

        The probes' event time lies before the measured traffic's (``before_ts``): probes newer than it
        would move the workers' watermarks past it, and the measured events would all arrive late."""
        n, sent, round_ = len(workers), 0, 0
        deadline = time.monotonic() + self.opts.timeout_s
        while time.monotonic() < deadline:
            probe = traffic.generate(n * 20, seed=9000 + round_, start_ts=before_ts - 7200, span_s=600)
            for e in probe:  # not part of any measured producer's sequence
                e["producer_id"], e["producer_seq"] = "bench-probe", None
            keyed: dict[int, dict[str, Any]] = {}
            for e in probe:
                keyed.setdefault(traffic.partition_of(traffic.key_of(e), n), e)
            msgs = traffic.batched_messages(list(keyed.values()), partitions=n, batch_size=1)
            asyncio.run(traffic.produce(bootstrap, topic, msgs))
            sent += len(msgs)
            round_ += 1
            wait_until = time.monotonic() + 15.0
            while time.monotonic() < wait_until:
                counts = [int(w.sql("SELECT count() FROM events")[0][0]) for w in workers]
                if sum(counts) >= sent:
                    if all(counts):
                        return sent
                    break
                time.sleep(0.2)
        raise RuntimeError(f"{n} workers did not settle into one consumer group:\n{workers[0].log_tail()}")

    @staticmethod
    def _last_ingested(w: Worker) -> float:
        return float(w.sql("SELECT toFloat64(max(ingested_at)) FROM events")[0][0] or 0.0)

    def _wait_stored(self, workers: list[Worker], expect: int) -> list[int]:
        deadline = time.monotonic() + self.opts.timeout_s
        counts = [0] * len(workers)
        while sum(counts) < expect:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(workers)} worker(s) stored {sum(counts)} of {expect} events in time:\n"
                                   f"{workers[0].log_tail()}")
            time.sleep(0.2)
            counts = [int(w.sql("SELECT count() FROM events")[0][0]) for w in workers]
        return counts

    @staticmethod
    def _store_rate(w: Worker, after: float) -> dict[str, Any]:
        """From the first stored batch to the last (``ingested_at`` marks each batch): events/s.

        The first batch's events are not counted — its mark is where the clock starts.
        """
        rows = w.sql(f"SELECT ingested_at, count() FROM events WHERE toFloat64(ingested_at) > {after!r} "
                     "GROUP BY ingested_at ORDER BY ingested_at")
        marks = [(_epoch(r[0]), int(r[1])) for r in rows]
        total = sum(c for _, c in marks)
        if len(marks) < 2:
            return {"events": total, "batches": len(marks), "seconds": 0.0, "eps": 0.0}
        span = marks[-1][0] - marks[0][0]
        counted = total - marks[0][1]
        return {"events": total, "batches": len(marks), "seconds": round(span, 3),
                "eps": round(counted / span, 1) if span > 0 else 0.0}

    async def live_latency(self, bootstrap: str, prefix: str, partitions: int) -> dict[str, Any]:
        """Live traffic at a steady rate; latency = detection's Kafka timestamp − its newest event's."""
        opts = self.opts
        topic, det_topic = f"{prefix}.events.v1", f"{prefix}.detections.v1"
        consumer = AIOKafkaConsumer(det_topic, bootstrap_servers=bootstrap, auto_offset_reset="latest",
                                    group_id=f"{prefix}-bench-latency", enable_auto_commit=False)
        await consumer.start()
        try:
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=200)
            await consumer.seek_to_end()
            stamps = await self._live_traffic(bootstrap, topic, partitions)
            latencies: list[float] = []
            deadline = time.monotonic() + 15.0
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for r in records:
                        det = orjson.loads(r.value)
                        mine = [stamps[i] for i in det.get("event_ids") or () if i in stamps]
                        if mine:
                            latencies.append((r.timestamp / 1000.0 - max(mine)) * 1000.0)
        finally:
            await consumer.stop()
        latencies.sort()

        def pct(q: float) -> float | None:
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) if latencies else None

        return {"p50": pct(0.5), "p99": pct(0.99), "samples": len(latencies), "rate_eps": opts.latency_rate,
                "seconds": opts.latency_seconds}

    async def _live_traffic(self, bootstrap: str, topic: str, partitions: int) -> dict[str, float]:
        opts = self.opts
        total = int(opts.latency_rate * opts.latency_seconds)
        reps = max(1, int(opts.latency_seconds // 5))  # a fleet generator (with its breaches) every 5 s
        t0 = time.time()
        events: list[dict[str, Any]] = []
        for j in range(reps):
            span = opts.latency_seconds / reps
            events += traffic.generate(total // reps, seed=opts.seed + 100 + j, start_ts=t0 + j * span, span_s=span)
        events.sort(key=lambda e: e["ts"])
        tick = 0.1
        stamps: dict[str, float] = {}
        per_tick = max(1, int(opts.latency_rate * tick))
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        await producer.start()
        try:
            for i in range(0, len(events), per_tick):
                due = t0 + (i // per_tick) * tick
                await asyncio.sleep(max(0.0, due - time.time()))
                chunk = events[i:i + per_tick]
                msgs = traffic.batched_messages(chunk, partitions=partitions, batch_size=opts.batch_size)
                ids = [[e["event_id"] for e in orjson.loads(m.value)["events"]] for m in msgs]
                stamps.update(await traffic.produce(bootstrap, topic, msgs, events_of=ids, producer=producer))
        finally:
            await producer.stop()
        return stamps

    def state(self, profile: str, keys: int) -> dict[str, Any]:
        return self.module_json("streams.bench.state", "--keys", str(keys), "--profile", profile,
                                "--traced-keys", str(min(keys, 50_000)), name="state", timeout=self.opts.timeout_s)

    # -- the run ------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        opts = self.opts
        workdir = (opts.workdir or self.settings.home / "bench").resolve() / time.strftime("%Y%m%d-%H%M%S")
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            return self._run(workdir)
        finally:
            self.rss.close()
            if self.started_kafka is not None and not opts.keep:
                self.started_kafka.down()
            if not opts.keep:
                shutil.rmtree(workdir, ignore_errors=True)

    def _run(self, workdir: Path) -> dict[str, Any]:
        opts = self.opts
        bootstrap, env = self.bootstrap(workdir)
        tag = f"bench{uuid.uuid4().hex[:6]}"
        self.say(f"generating {opts.events} fleet events …")
        events = traffic.generate(opts.events, seed=opts.seed)
        n_events = len(events)
        base_n = min(opts.baseline_events, n_events)
        single_topic = f"{tag}.single.v1"
        self.say(f"producing: producer-side batches of {opts.batch_size}, and one event per message for the baseline …")
        asyncio.run(self._produce_all(bootstrap, tag, events, base_n, single_topic))
        main_topic = f"{tag}.batched.v1"
        timeout = opts.timeout_s
        self.say("(a) ceiling: aiokafka getmany + orjson …")
        ceiling = self.module_json("streams.bench.ceiling", "--bootstrap", bootstrap, "--topic", main_topic,
                                   "--expect", str(n_events), name="ceiling", timeout=timeout)
        ceiling_single = self.module_json("streams.bench.ceiling", "--bootstrap", bootstrap, "--topic",
                                          single_topic, "--expect", str(base_n), name="ceiling", timeout=timeout)
        self.say(f"    {ceiling['eps']:.0f} events/s (batched), {ceiling_single['eps']:.0f} (one per message)")
        self.say("storage floor: ClickHouse's CPU per stored event, in-process …")
        floor = self.module_json("streams.bench.store_floor", "--json", "--events", str(min(n_events, 100_000)),
                                 "--batch-size", str(opts.batch_size), "--cores", str(os.cpu_count() or 1),
                                 "--ceiling-eps", str(ceiling["eps"]), name="storage floor", timeout=timeout)
        self.say(f"    {floor['store']['cpu_us_per_event']:.1f} µs per event stored: with only the ceiling's work "
                 f"and the store, (c)/(a) ≤ {floor['max_ratio_vs_ceiling']:.0%} on {floor['cores']} cores")
        self.say("(b) baseline: per-event Faust agent + windowed table …")
        baseline = self.baseline(bootstrap, single_topic, base_n, workdir)
        self.say(f"    {baseline['eps']:.0f} events/s")
        runs: dict[str, dict[str, Any]] = {}
        for i, n in enumerate(opts.workers):
            self.say(f"(c) overseer: {n} worker(s) on {n} partition(s) …")
            runs[str(n)] = self.overseer(n, bootstrap, f"{tag}w{n}", events, workdir, env, latency=i == 0)
            self.say(f"    {runs[str(n)]['eps_total']:.0f} events/s total, "
                     f"{runs[str(n)]['eps_per_worker']:.0f} per worker")
        if opts.single_message:
            self.say("(c′) overseer: 1 worker, one event per message (the baseline's framing) …")
            runs["single_message"] = self.overseer(1, bootstrap, f"{tag}s1", events[:base_n], workdir, env,
                                                   latency=False, single=True)
            self.say(f"    {runs['single_message']['eps_total']:.0f} events/s")
        self.say(f"state: {opts.state_keys} active keys in one process …")
        state = {"window": self.state("window", opts.state_keys),
                 "worst": self.state("worst", max(1000, opts.state_keys // 5))}
        for name, st in state.items():
            self.say(f"    {name}: {st['state_bytes_per_key']:.0f} bytes per key traced, "
                     f"{st['rss_bytes_per_key']:.0f} RSS growth, {st['snapshot_bytes_per_key']:.0f} in a snapshot")
        return {**report(opts, n_events, ceiling, ceiling_single, baseline, runs, state),
                "storage_floor": floor, "ratio_vs_ceiling_storage_bound": floor["max_ratio_vs_ceiling"]}

    async def _produce_all(self, bootstrap: str, tag: str, events: list[dict[str, Any]], base_n: int,
                           single_topic: str) -> None:
        topic = f"{tag}.batched.v1"
        await traffic.create_topic(bootstrap, topic, 1)
        await traffic.produce(bootstrap, topic, traffic.batched_messages(events, partitions=1,
                                                                           batch_size=self.opts.batch_size))
        await traffic.create_topic(bootstrap, single_topic, 1)
        await traffic.produce(bootstrap, single_topic, traffic.single_messages(events[:base_n], partitions=1))


def report(opts: BenchOptions, n_events: int, ceiling: dict[str, Any], ceiling_single: dict[str, Any],
           baseline: dict[str, Any], runs: dict[str, dict[str, Any]], states: dict[str, dict[str, Any]]
           ) -> dict[str, Any]:
    main = runs[str(opts.workers[0])]
    overseer_eps = main["eps_per_worker"]
    latency = main.get("latency", {})
    ratio_c = overseer_eps / ceiling["eps"] if ceiling["eps"] else 0.0
    ratio_b = overseer_eps / baseline["eps"] if baseline["eps"] else 0.0
    state = states["window"]
    single = runs.get("single_message")
    runs = {k: v for k, v in runs.items() if k != "single_message"}
    return {
        "events": n_events, "batch_size": opts.batch_size, "baseline_events": baseline["events"],
        "ceiling_eps": round(ceiling["eps"], 1), "ceiling_single_message_eps": round(ceiling_single["eps"], 1),
        "baseline_eps": round(baseline["eps"], 1), "overseer_eps": overseer_eps,
        "ratio_vs_ceiling": round(ratio_c, 3), "ratio_vs_baseline": round(ratio_b, 2),
        "latency_ms_p50": latency.get("p50"), "latency_ms_p99": latency.get("p99"),
        "latency_samples": latency.get("samples", 0),
        "peak_rss_mb": {"ceiling": ceiling["peak_rss_mb"], "baseline": baseline["peak_rss_mb"],
                        "overseer_worker": max(main["peak_rss_mb"]),
                        "state_probe": state["peak_rss_mb"]},
        "workers": {n: {"eps_total": r["eps_total"], "eps_per_worker": r["eps_per_worker"], "stored": r["stored"],
                        "stored_per_worker": r["stored_per_worker"], "wall_eps_total": r["wall_eps_total"],
                        "per_worker": r["per_worker"], "rate_from": r.get("rate_from"), "cpu_eps": r.get("cpu_eps"),
                        "stages": r.get("stages")}
                    for n, r in runs.items()},
        "overseer_single_message_eps": single["eps_per_worker"] if single else None,
        "ratio_vs_baseline_single_message": round(single["eps_per_worker"] / baseline["eps"], 2)
        if single and baseline["eps"] else None,
        # events per CPU-second of the process doing the work: steadier than events/s on a shared machine
        "cpu_eps": {"ceiling": round(ceiling.get("cpu_eps", 0.0), 1), "baseline": round(baseline.get("cpu_eps", 0.0), 1),
                    "overseer": main.get("cpu_eps", 0.0)},
        "ratio_vs_ceiling_cpu": _ratio(main.get("cpu_eps"), ceiling.get("cpu_eps")),
        "ratio_vs_baseline_cpu": _ratio(main.get("cpu_eps"), baseline.get("cpu_eps")),
        "every_event_stored": all(r["stored"] >= n_events for r in runs.values())
        and (single is None or single["stored"] >= baseline["events"]),
        "rules": main["rules"], "detectors": main["detectors"], "detections": main["detections"],
        "deadlettered": main["deadlettered"],
        "state_bytes_per_key": state["state_bytes_per_key"], "state_rss_bytes_per_key": state["rss_bytes_per_key"],
        "snapshot_bytes_per_key": state["snapshot_bytes_per_key"], "state_keys": state["keys"],
        "state": states,
        "targets": {"overseer_10x_baseline": ratio_b >= 10, "overseer_half_of_ceiling": ratio_c >= 0.5,
                    "state_200_bytes_per_key": state["state_bytes_per_key"] <= 200},
        "cpu_count": os.cpu_count(),
    }


def _epoch(value: Any) -> float:
    """``ingested_at`` as the HTTP API returns it (a string) -> epoch seconds."""
    from datetime import UTC, datetime

    if isinstance(value, (int, float)):
        return float(value)
    dt = datetime.fromisoformat(str(value))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _cpu_seconds(w: Worker) -> float:
    """User + system CPU time of a worker process so far, every thread (the ClickHouse engine's too)."""
    assert w.proc is not None
    t = psutil.Process(w.proc.pid).cpu_times()
    return float(t.user + t.system)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None
