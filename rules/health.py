"""Loss detection: gaps in a producer's sequence numbers become monitor-health hits.

Every producer (a gateway's :class:`~streams.ingest.emitter.Emitter`, a log
shipper) stamps ``producer_id`` and a ``producer_seq`` that grows by one per
event. A sequence number that never arrives is a lost log line — the thing a
monitor must not be blind to.

Reordering is normal: a producer's events are keyed by agent run and spread
over partitions, so one worker sees them interleaved. The tracker therefore
does not shout at the first hole. Each batch is sorted by sequence number per
producer first (reordering inside a batch costs nothing); a hole is then kept
as a *pending* range with the event time at which it was noticed, and filled
in if its events arrive later. A pending range is declared lost when

* the producer's own event time has moved ``lateness_s`` seconds (default 60,
  like ``Settings.allowed_lateness_s``) past the moment the hole was noticed,
  or the caller's watermark passed it (:meth:`ProducerGapTracker.advance`); or
* the producer has moved ``max_reorder_seq`` sequence numbers past it; or
* more than ``max_pending_ranges`` holes are pending (oldest first) — state is
  bounded, and the bound is counted, never silent.

Work is done on ranges, not single events: :func:`seq_partials` summarises a
batch per producer as contiguous seq ranges (cheap, and JSON-ready), and
:meth:`ProducerGapTracker.observe_partials` consumes them. ``observe`` is the
two together. Because the events topic is keyed by agent run, a producer's
events are spread over partitions; with several workers each sees only part of
the sequence, so each worker should send its partials, keyed by
``producer_id``, to the one tracker that owns that producer — feeding a
tracker a part of a sequence reports the rest as lost.

A sequence number at or below the highest seen that is not pending is a
duplicate (counted; Kafka is at-least-once). A sequence number below the
first one seen arrived before the tracker first met the producer: reordered,
not a duplicate. A second seq 0 with a new ``event_id`` is a producer
restart: counted, and the producer's state starts afresh (pending holes of
the old incarnation are dropped with it — give each process incarnation its
own ``producer_id`` to keep them).

>>> t = ProducerGapTracker(lateness_s=10)
>>> ev = lambda seq, ts: {"producer_id": "gw", "producer_seq": seq, "_ts": ts, "event_id": f"e{seq}"}
>>> t.observe([ev(0, 0.0), ev(1, 1.0), ev(4, 2.0)])   # 2 and 3 missing, maybe just late
[]
>>> t.observe([ev(3, 3.0)])                           # 3 arrives late: only 2 is missing now
[]
>>> [(h.evidence["expected_seq"], h.evidence["missing_count"]) for h in t.observe([ev(5, 20.0)])]
[(2, 1)]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson

from rules.base import Hit

RULE_ID = "monitor.producer_sequence_gap"
SNAPSHOT_VERSION = 1


@dataclass(slots=True)
class _Pending:
    lo: int  # first missing seq (inclusive)
    hi: int  # last missing seq (inclusive)
    noticed_ts: float  # event time of the event that revealed the hole
    got_seq: int  # the seq that revealed it
    event_id: str | None


@dataclass(slots=True)
class _Producer:
    max_seq: int
    max_ts: float
    deployment_id: str | None = None
    tenant_id: str | None = None
    pending: list[_Pending] = field(default_factory=list)  # sorted by lo, disjoint
    min_seq: int = 0  # lowest seq seen: anything below arrived before our first sighting
    zero_id: str | None = None  # event_id of seq 0, to tell a redelivered 0 from a restart


@dataclass(slots=True)
class GapStats:
    """Everything the tracker decided, counted: gaps, lost events, and what it tolerated."""

    gaps: int = 0
    missing_events: int = 0
    reordered: int = 0
    duplicates: int = 0
    restarts: int = 0
    forced_by_bound: int = 0
    producers_evicted: int = 0
    ignored_events: int = 0  # no producer_id / producer_seq


_first = itemgetter(0)


def seq_partials(events: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Summarise one batch per producer as contiguous seq ranges: ``(partials, ignored)``.

    A partial is small and JSON-ready — ``{producer_id, ranges: [[lo, hi, ts_lo,
    event_id_lo], ...], max_ts, deployment_id, tenant_id, duplicates}`` — so
    workers that each see part of a producer's events (the topic is keyed by
    agent run) can send partials, repartitioned by ``producer_id``, to the one
    tracker that owns the producer (:meth:`ProducerGapTracker.observe_partials`).

    >>> ev = lambda s: {"producer_id": "p", "producer_seq": s, "_ts": float(s), "event_id": f"e{s}"}
    >>> parts, ignored = seq_partials([ev(3), ev(1), ev(2), ev(2), ev(7), {"_ts": 0.0}])
    >>> parts[0]["ranges"], parts[0]["duplicates"], ignored
    ([[1, 3, 1.0, 'e1'], [7, 7, 7.0, 'e7']], 1, 1)
    """
    # on the hot path for every event: one (seq, event) pair per event, a stable sort on the seq alone
    by_producer: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    ignored = 0
    for event in events:
        pid, seq = event.get("producer_id"), event.get("producer_seq")
        if pid is None or not isinstance(seq, int) or seq < 0:
            ignored += 1
            continue
        if type(pid) is not str:
            pid = str(pid)
        group = by_producer.get(pid)
        if group is None:
            by_producer[pid] = [(seq, event)]
        else:
            group.append((seq, event))
    partials = []
    for pid, group in by_producer.items():
        group.sort(key=_first)
        ranges: list[list[Any]] = []
        duplicates = 0
        hi = -2
        for seq, e in group:
            if seq <= hi:
                duplicates += 1
            elif seq == hi + 1:
                ranges[-1][1] = hi = seq
            else:
                ranges.append([seq, seq, float(e.get("_ts") or 0.0), e.get("event_id")])
                hi = seq
        partials.append({
            "producer_id": pid, "ranges": ranges, "duplicates": duplicates,
            "max_ts": max(float(e.get("_ts") or 0.0) for _, e in group),
            "deployment_id": next((e["deployment_id"] for _, e in reversed(group) if e.get("deployment_id")), None),
            "tenant_id": next((e["tenant_id"] for _, e in reversed(group) if e.get("tenant_id")), None),
        })
    return partials, ignored


def _subtract(state: _Producer, lo: int, hi: int) -> int:
    """Remove ``lo..hi`` from the pending holes; return how many missing seqs that filled."""
    filled = 0
    kept: list[_Pending] = []
    for p in state.pending:
        a, b = max(p.lo, lo), min(p.hi, hi)
        if a > b:
            kept.append(p)
            continue
        filled += b - a + 1
        kept += [_Pending(x, y, p.noticed_ts, p.got_seq, p.event_id) for x, y in ((p.lo, a - 1), (b + 1, p.hi))
                 if x <= y]
    state.pending = kept
    return filled


class ProducerGapTracker:
    """Per-producer sequence tracking with a reorder allowance; bounded state."""

    def __init__(self, lateness_s: float = 60.0, max_reorder_seq: int = 100_000,
                 max_pending_ranges: int = 64, max_producers: int = 100_000) -> None:
        self.lateness_s = lateness_s
        self.max_reorder_seq = max_reorder_seq
        self.max_pending_ranges = max_pending_ranges
        self.max_producers = max_producers
        self.stats = GapStats()
        self._producers: dict[str, _Producer] = {}

    # -- the verbs the runtime calls ----------------------------------------------
    def observe(self, events: Iterable[dict[str, Any]]) -> list[Hit]:
        """Take one batch of event dicts (any order); return the gaps now declared lost."""
        partials, ignored = seq_partials(events)
        self.stats.ignored_events += ignored
        return self.observe_partials(partials)

    def observe_partials(self, partials: Iterable[dict[str, Any]], *, own_clock: bool = True) -> list[Hit]:
        """Take per-batch summaries from :func:`seq_partials` — possibly made on other workers.

        With ``own_clock`` (one stream), a hole expires once the producer's own events are
        ``lateness_s`` past it. Partials from several partitions must not do that: a partition
        that is merely behind would look like loss. The worker passes ``own_clock=False`` and
        declares holes only through :meth:`advance` with the low watermark of all partitions."""
        hits: list[Hit] = []
        for part in partials:
            pid = str(part["producer_id"])
            self.stats.duplicates += int(part.get("duplicates", 0))
            for lo, hi, ts, eid in part["ranges"]:
                self._range(pid, int(lo), int(hi), float(ts), eid, part)
            state = self._producers[pid]
            state.max_ts = max(state.max_ts, float(part["max_ts"]))
            hits += self._declare(pid, state, watermark=None, own_clock=own_clock)
        self._bound_producers()
        return hits

    process = observe

    def advance(self, watermark: float, *, own_clock: bool = True) -> list[Hit]:
        """Event time reached ``watermark`` everywhere: declare holes older than it minus the lateness.

        ``own_clock`` as in :meth:`observe_partials`."""
        hits: list[Hit] = []
        for pid, state in self._producers.items():
            hits += self._declare(pid, state, watermark=watermark, own_clock=own_clock)
        return hits

    # -- state ----------------------------------------------------------------
    def snapshot(self) -> bytes:
        return orjson.dumps({"v": SNAPSHOT_VERSION, "producers": {
            pid: [s.max_seq, s.max_ts, s.deployment_id, s.tenant_id,
                  [[p.lo, p.hi, p.noticed_ts, p.got_seq, p.event_id] for p in s.pending], s.min_seq, s.zero_id]
            for pid, s in self._producers.items()}})

    def restore(self, blob: bytes) -> None:
        data = orjson.loads(blob)
        if data.get("v") != SNAPSHOT_VERSION:
            raise ValueError(f"unknown ProducerGapTracker snapshot version {data.get('v')!r}")
        self._producers = {
            pid: _Producer(max_seq, max_ts, dep, tenant, [_Pending(*p) for p in pending], min_seq, zero_id)
            for pid, (max_seq, max_ts, dep, tenant, pending, min_seq, zero_id) in data["producers"].items()}

    def pending(self, producer_id: str) -> list[tuple[int, int]]:
        """The holes still waiting for late events, as inclusive (first, last) seq ranges."""
        state = self._producers.get(producer_id)
        return [(p.lo, p.hi) for p in state.pending] if state else []

    # -- internals --------------------------------------------------------------
    def _range(self, pid: str, lo: int, hi: int, ts: float, eid: str | None, part: dict[str, Any]) -> None:
        """Account for the contiguous seqs ``lo..hi``; ``ts``/``eid`` are those of the event at ``lo``."""
        state = self._producers.pop(pid, None)  # re-inserted below: dict order is recency, for eviction
        if state is not None and lo == 0 and state.min_seq == 0 and eid != state.zero_id:
            self.stats.restarts += 1
            state = None
        if state is None:
            state = _Producer(hi, ts, part.get("deployment_id"), part.get("tenant_id"),
                              min_seq=lo, zero_id=eid if lo == 0 else None)
            self._producers[pid] = state
            return
        self._producers[pid] = state
        state.deployment_id = part.get("deployment_id") or state.deployment_id
        state.tenant_id = part.get("tenant_id") or state.tenant_id
        old_min, old_max = state.min_seq, state.max_seq
        mid_lo, mid_hi = max(lo, old_min), min(hi, old_max)
        if mid_lo <= mid_hi:
            filled = _subtract(state, mid_lo, mid_hi)
            self.stats.reordered += filled
            self.stats.duplicates += (mid_hi - mid_lo + 1) - filled
        if lo < old_min:  # older than our first sighting: late, not duplicates
            below_hi = min(hi, old_min - 1)
            self.stats.reordered += below_hi - lo + 1
            if below_hi + 1 < old_min:
                state.pending.insert(0, _Pending(below_hi + 1, old_min - 1, ts, old_min, eid))
            state.min_seq = lo
            state.zero_id = eid if lo == 0 else state.zero_id
        if hi > old_max:
            if lo > old_max + 1:
                state.pending.append(_Pending(old_max + 1, lo - 1, ts, lo, eid))
            state.max_seq = hi

    def _declare(self, pid: str, state: _Producer, watermark: float | None, own_clock: bool = True) -> list[Hit]:
        keep: list[_Pending] = []
        lost: list[_Pending] = []
        overflow = max(0, len(state.pending) - self.max_pending_ranges)
        for i, p in enumerate(state.pending):
            expired = own_clock and state.max_ts - p.noticed_ts >= self.lateness_s
            expired |= watermark is not None and watermark - p.noticed_ts >= self.lateness_s
            expired |= state.max_seq - p.hi > self.max_reorder_seq
            if i < overflow and not expired:
                self.stats.forced_by_bound += 1
                expired = True
            (lost if expired else keep).append(p)
        state.pending = keep
        return [self._hit(pid, state, p) for p in lost]

    def _hit(self, pid: str, state: _Producer, p: _Pending) -> Hit:
        missing = p.hi - p.lo + 1
        self.stats.gaps += 1
        self.stats.missing_events += missing
        scope_kind, scope_value = ("deployment", state.deployment_id) if state.deployment_id else ("fleet", "fleet")
        return Hit(
            rule_id=RULE_ID, rule_version="1", kind="monitor_health",
            title="Producer sequence gap: monitoring logs were lost", severity="high",
            tags=["monitor_health"], mode="enforce",
            output=(f"producer {pid} skipped {missing} event(s): expected seq {p.lo}, got {p.got_seq}; "
                    f"not received within {self.lateness_s:g}s of event time"),
            ts=p.noticed_ts, scope_kind=scope_kind, scope_value=str(scope_value),
            event_ids=[p.event_id] if p.event_id else [], group={"producer_id": pid},
            evidence={"producer_id": pid, "expected_seq": p.lo, "got_seq": p.got_seq, "missing_count": missing},
            tenant_id=state.tenant_id, deployment_id=state.deployment_id,
            dedup_key=f"{RULE_ID}:{pid}:{p.lo}",
        )

    def _bound_producers(self) -> None:
        while len(self._producers) > self.max_producers:
            self._producers.pop(next(iter(self._producers)))
            self.stats.producers_evicted += 1
