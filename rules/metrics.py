"""Metrics for statistical detectors: compile ``detector`` items, pre-aggregate, merge, close buckets.

A ``detector`` item in a rule file names a *metric* (what to measure per key
and time bucket) and an *algorithm* from :mod:`rules.detectors` (how to decide
that a bucket is abnormal). See docs/detectors.md for the item format.

The runtime is fleet-level by construction and never moves raw events:

1. every worker calls :meth:`MetricRuntime.partials` on its batch and gets one
   compact :class:`Partial` per (metric, key, bucket) — counts, sums, a KLL
   sketch for quantiles, an HLL sketch for distinct counts, the values seen for
   first-seen metrics;
2. the runtime repartitions partials by :attr:`Partial.route_key`;
3. the owner of that key calls :meth:`MetricRuntime.merge`, then
   :meth:`MetricRuntime.advance` with the event-time watermark: buckets whose
   end plus the allowed lateness has passed are closed, their value computed,
   the key's detector updated, and :class:`rules.base.Hit` values returned.

Empty buckets: for ``count`` metrics a bucket with no events between two
observed buckets of the same key *is* an observation of 0 (a tool that stops
being called is a change); for ``rate``, ``mean``, ``quantile`` and
``distinct`` an empty bucket has no value and is skipped, and buckets with fewer
than ``min_count`` observations are skipped as too sparse (counted in
``stats["sparse_buckets"]``). Partials for buckets that are already closed are
counted as late (``stats["late_partials"]``, ``stats["late_events"]``).

State (:meth:`MetricRuntime.snapshot`) holds the open buckets and, per key, the
detector and the last closed bucket; keys per metric are capped (``max_keys``,
least recently updated evicted first and counted in ``stats["evicted_keys"]``).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from rules.base import Hit
from rules.detectors.base import Detector
from rules.detectors.distinct import hll_merge, hll_of
from rules.detectors.quantile import kll_load, kll_of
from rules.detectors.registry import REGISTRY, create
from rules.items import CompileContext, Location, Predicate, RawItem

__all__ = ["MetricRuntime", "MetricSpec", "Partial", "compile_items", "parse_duration"]

KINDS = ("count", "rate", "mean", "quantile", "distinct", "first_seen")
DEFAULT_ALGORITHM = {"count": "ewma_zscore", "rate": "ewma_zscore", "mean": "ewma_zscore",
                     "quantile": "mad", "distinct": "distinct_spike", "first_seen": "novelty"}
SCOPE_FIELDS = {"model": "request_model", "deployment": "deployment_id", "tenant": "tenant_id",
                "agent_run": "agent_run_id", "session": "conversation_id"}
SCOPES = ("fleet", *SCOPE_FIELDS)
SEVERITIES = ("info", "low", "medium", "high", "critical")
ITEM_KEYS = frozenset({"detector", "title", "description", "metric", "key", "bucket", "lateness", "algorithm",
                       "params", "min_count", "severity", "tags", "scope", "mode", "runbook", "version",
                       "max_keys", "enabled"})
MAX_VALUES_PER_BUCKET = 256  # first_seen: distinct values carried per partial; the rest are counted
MAX_OPEN_PER_KEY = 8  # open buckets per metric are capped at max_keys * this; beyond, the oldest closes early
MAX_GAP_FILL = 1440  # count metrics: at most this many empty buckets are observed as 0 in one gap
DEFAULT_LATENESS = 0.0  # on top of the runtime's watermark, which already holds back its allowed lateness
DEFAULT_MAX_KEYS = 10_000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: Any) -> float:
    """Seconds in ``30s``, ``1m``, ``2h``, ``1d`` or a plain number of seconds.

    >>> parse_duration("1m"), parse_duration(90), parse_duration("1.5h")
    (60.0, 90.0, 5400.0)
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 1m, 1h, 1d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _getter(path: str) -> Callable[[dict[str, Any]], Any]:
    """Field access for event dicts; ``scores.jailbreak`` reads a map entry."""
    if "." not in path:
        return lambda ev: ev.get(path)
    head, _, tail = path.partition(".")

    def get(ev: dict[str, Any]) -> Any:
        inner = ev.get(head)
        return inner.get(tail) if isinstance(inner, dict) else None

    return get


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One compiled ``detector`` item."""

    id: str
    title: str
    kind: str
    key: tuple[str, ...]
    bucket: float
    algorithm: str
    params: dict[str, Any]
    where: Predicate | None = None
    match: Predicate | None = None
    field: str | None = None
    q: float = 0.99
    lateness: float = DEFAULT_LATENESS
    min_count: int = 1
    severity: str = "medium"
    tags: tuple[str, ...] = ()
    scope: str = "fleet"
    mode: str = "enforce"
    runbook: str | None = None
    version: str = "1"
    description: str = ""
    max_keys: int = DEFAULT_MAX_KEYS

    @property
    def counts_matches(self) -> bool:
        """count/rate numerator: events passing ``match``, or (without it) events having ``field``."""
        return self.match is not None or (self.kind in ("count", "rate") and self.field is not None)

    def new_detector(self) -> Detector:
        return create(self.algorithm, **self.params)

    @property
    def signature(self) -> str:
        """Changes when restored detector state would no longer mean the same thing."""
        return orjson.dumps([self.kind, self.field, self.q, self.key, self.bucket, self.algorithm, self.params],
                            option=orjson.OPT_SORT_KEYS).decode()


PARTIAL_FIELDS = 15
SNAPSHOT_VERSION = 1


def _b64(blob: bytes | None) -> str | None:
    return base64.b64encode(blob).decode() if blob is not None else None


def _unb64(text: str | None) -> bytes | None:
    if text is None:
        return None
    blob = base64.b64decode(text, validate=True)
    if not blob:
        raise ValueError("empty sketch")
    return blob


@dataclass(slots=True)
class Partial:
    """Pre-aggregate of one metric, for one key, over one bucket, from one batch (or merged)."""

    metric_id: str
    key: tuple[str, ...]
    bucket_start: float
    count: int = 0  # events passing `where`
    matched: int = 0  # of those, events passing `match`
    n: int = 0  # numeric field values observed (mean, quantile)
    sum: float = 0.0
    sumsq: float = 0.0
    min: float | None = None
    max: float | None = None
    kll: bytes | None = None
    hll: bytes | None = None
    values: list[str] | None = None
    values_overflow: int = 0
    max_ts: float = 0.0

    @property
    def route_key(self) -> str:
        """The fleet key to repartition by: metric id plus key tuple."""
        return orjson.dumps([self.metric_id, *self.key]).decode()

    def to_list(self) -> list[Any]:
        return [self.metric_id, list(self.key), self.bucket_start, self.count, self.matched, self.n, self.sum,
                self.sumsq, self.min, self.max, _b64(self.kll), _b64(self.hll), self.values,
                self.values_overflow, self.max_ts]

    @classmethod
    def from_list(cls, data: list[Any]) -> Partial:
        return cls(data[0], tuple(data[1]), float(data[2]), int(data[3]), int(data[4]), int(data[5]),
                   float(data[6]), float(data[7]), data[8], data[9], _unb64(data[10]), _unb64(data[11]),
                   data[12], int(data[13]), float(data[14]))

    def to_bytes(self) -> bytes:
        """Compact JSON (orjson); sketches as base64."""
        return orjson.dumps(self.to_list())

    @classmethod
    def from_bytes(cls, blob: bytes) -> Partial:
        """Inverse of :meth:`to_bytes`; anything else raises ValueError (for the dead-letter path)."""
        try:
            data = orjson.loads(blob)
            if not isinstance(data, list) or len(data) != PARTIAL_FIELDS:
                raise ValueError(f"expected a list of {PARTIAL_FIELDS} fields")
            return cls.from_list(data)
        except (ValueError, TypeError, IndexError, binascii.Error) as exc:
            raise ValueError(f"malformed partial aggregate: {exc}") from None

    def merge(self, other: Partial) -> None:
        """Fold ``other`` (same metric, key and bucket) into this partial."""
        self.count += other.count
        self.matched += other.matched
        self.n += other.n
        self.sum += other.sum
        self.sumsq += other.sumsq
        if other.min is not None:
            self.min = other.min if self.min is None else min(self.min, other.min)
        if other.max is not None:
            self.max = other.max if self.max is None else max(self.max, other.max)
        if other.kll is not None:
            if self.kll is None:
                self.kll = other.kll
            else:
                sketch = kll_load(self.kll)
                sketch.merge(kll_load(other.kll))
                self.kll = sketch.serialize()
        if other.hll is not None:
            self.hll = other.hll if self.hll is None else hll_merge([self.hll, other.hll]).serialize_compact()
        if other.values is not None:
            merged = dict.fromkeys(self.values or [])
            for value in other.values:
                if value in merged or len(merged) < MAX_VALUES_PER_BUCKET:
                    merged[value] = None
                else:
                    self.values_overflow += 1
            self.values = list(merged)
        self.values_overflow += other.values_overflow
        self.max_ts = max(self.max_ts, other.max_ts)


class _Acc:
    """Mutable per-batch accumulator behind one partial (plain lists are cheap)."""

    __slots__ = ("count", "matched", "max_ts", "nums", "values")

    def __init__(self) -> None:
        self.count = 0
        self.matched = 0
        self.max_ts = 0.0
        self.nums: list[float] = []
        self.values: dict[str, None] = {}


class _KeyState:
    __slots__ = ("detector", "last_bucket")

    def __init__(self, detector: Detector, last_bucket: float | None = None) -> None:
        self.detector = detector
        self.last_bucket = last_bucket


STAT_NAMES = ("events_seen", "missing_key", "non_numeric", "partials_out", "partials_merged", "late_partials",
              "late_events", "buckets_closed", "sparse_buckets", "gap_buckets", "gap_buckets_skipped",
              "warming_up", "hits", "evicted_keys", "values_overflow", "state_reset_on_restore",
              "unknown_metric_partials", "forced_closes")


class MetricRuntime:
    """Per-key metric buckets and detectors for a compiled set of ``detector`` items.

    Tool calls per deployment and minute, scored by a z-score; a burst fires:

    >>> spec = MetricSpec(id="tool_calls", title="Tool calls", kind="count", key=("deployment_id",),
    ...                   bucket=60.0, algorithm="ewma_zscore", params={"warmup": 3, "min_std": 1.0})
    >>> rt = MetricRuntime([spec])
    >>> hits = []
    >>> for minute, calls in enumerate([10, 11, 9, 10, 10, 60]):
    ...     batch = [{"_ts": 60.0 * minute + i, "deployment_id": "d1"} for i in range(calls)]
    ...     rt.merge(rt.partials(batch))          # on one worker here; fleet-wide in production
    ...     hits += rt.advance(60.0 * (minute + 1))
    >>> [(h.evidence["bucket_start"], h.evidence["observed"], round(h.evidence["baseline"], 1)) for h in hits]
    [('1970-01-01T00:05:00Z', 60.0, 10.0)]
    >>> rt.stats["buckets_closed"], rt.stats["warming_up"]
    (6, 3)
    """

    def __init__(self, specs: list[MetricSpec]) -> None:
        self.specs: dict[str, MetricSpec] = {s.id: s for s in specs}
        self._getters = {s.id: [_getter(f) for f in s.key] for s in specs}
        self._field = {s.id: _getter(s.field) if s.field else None for s in specs}
        self._open: dict[str, dict[tuple[tuple[str, ...], float], Partial]] = {s.id: {} for s in specs}
        self._keys: dict[str, OrderedDict[tuple[str, ...], _KeyState]] = {s.id: OrderedDict() for s in specs}
        self._watermark = -math.inf
        self._stats = dict.fromkeys(STAT_NAMES, 0)
        self._forced: list[Hit] = []  # hits of buckets closed early by the open-bucket cap
        self._dirty: set[tuple[str, tuple[str, ...]]] = set()  # (metric, key) changed since dirty_state()

    # -- per worker ------------------------------------------------------
    def partials(self, events: list[dict[str, Any]]) -> list[Partial]:
        """Pre-aggregate one batch: one partial per (metric, key, bucket)."""
        out: list[Partial] = []
        self._stats["events_seen"] += len(events)
        for spec in self.specs.values():
            out.extend(self._partials_of(spec, events))
        self._stats["partials_out"] += len(out)
        return out

    def _partials_of(self, spec: MetricSpec, events: list[dict[str, Any]]) -> list[Partial]:
        # the hot path's second-largest stage: filter with a comprehension, read a one-field key without
        # building a tuple per event (the built-in detectors all have one), tuples only per slot
        value_of, where, match = self._field[spec.id], spec.where, spec.match
        size, kind = spec.bucket, spec.kind
        if where is not None:
            events = [ev for ev in events if where(ev)]
        if not events:
            return []
        single = len(spec.key) == 1
        keys = self._keys_of(spec, events)
        presence = value_of if kind in ("count", "rate") else None
        numeric = kind not in ("distinct", "first_seen")
        accs: dict[tuple[Any, float], _Acc] = {}
        missing = non_numeric = 0
        for ev, key in zip(events, keys):
            if key is None:
                missing += 1
                continue
            if single:
                if type(key) is not str:
                    key = str(key)
            elif not all(type(k) is str for k in key):
                key = tuple(str(k) for k in key)
            ts = ev["_ts"]
            slot = (key, ts - ts % size)
            acc = accs.get(slot)
            if acc is None:
                acc = accs[slot] = _Acc()
            acc.count += 1
            if ts > acc.max_ts:
                acc.max_ts = ts
            if match is not None:
                if match(ev):
                    acc.matched += 1
            elif presence is not None:
                if presence(ev) is not None:
                    acc.matched += 1
                continue
            if value_of is None:
                continue
            value = value_of(ev)
            if value is None:
                continue
            if not numeric:
                acc.values[str(value)] = None
            elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                acc.nums.append(float(value))
            else:
                non_numeric += 1
        self._stats["missing_key"] += missing
        self._stats["non_numeric"] += non_numeric
        return [self._to_partial(spec, (key,) if single else key, start, acc) for (key, start), acc in accs.items()]

    def _keys_of(self, spec: MetricSpec, events: list[dict[str, Any]]) -> list[Any]:
        """Each event's key: the value itself for a one-field key, else a tuple; None where a field is missing."""
        getters = self._getters[spec.id]
        if len(getters) == 1:
            path = spec.key[0]
            if "." not in path:
                return [ev.get(path) for ev in events]
            get = getters[0]
            return [get(ev) for ev in events]
        keys: list[Any] = []
        for ev in events:
            key = tuple(g(ev) for g in getters)
            keys.append(None if None in key else key)
        return keys

    def _to_partial(self, spec: MetricSpec, key: tuple[str, ...], start: float, acc: _Acc) -> Partial:
        p = Partial(spec.id, key, start, acc.count, acc.matched, max_ts=acc.max_ts)
        if acc.nums:
            p.n = len(acc.nums)
            p.sum = math.fsum(acc.nums)
            p.sumsq = math.fsum(v * v for v in acc.nums)
            p.min, p.max = min(acc.nums), max(acc.nums)
            if spec.kind == "quantile":
                p.kll = kll_of(acc.nums).serialize()
        if spec.kind == "distinct" and acc.values:
            p.hll = hll_of(acc.values).serialize_compact()
        elif spec.kind == "first_seen" and acc.values:
            values = list(acc.values)
            p.values = values[:MAX_VALUES_PER_BUCKET]
            p.values_overflow = len(values) - len(p.values)
            self._stats["values_overflow"] += p.values_overflow
        return p

    # -- per key owner ---------------------------------------------------
    def merge(self, partials: list[Partial]) -> None:
        """Fold partials (from every worker) into the open buckets; late ones are counted."""
        for p in partials:
            spec = self.specs.get(p.metric_id)
            if spec is None:
                self._stats["unknown_metric_partials"] += 1
                continue
            if p.bucket_start + spec.bucket + spec.lateness <= self._watermark:
                self._stats["late_partials"] += 1
                self._stats["late_events"] += p.count
                continue
            self._stats["partials_merged"] += 1
            self._dirty.add((spec.id, p.key))
            buckets = self._open[spec.id]
            slot = (p.key, p.bucket_start)
            open_ = buckets.get(slot)
            if open_ is not None:
                open_.merge(p)
                continue
            buckets[slot] = replace(p, key=tuple(p.key), values=list(p.values) if p.values is not None else None)
            if len(buckets) > spec.max_keys * MAX_OPEN_PER_KEY:
                # event time stalled while keys keep arriving: close the oldest bucket now rather
                # than grow without bound; its hits are returned by the next advance()
                oldest = min(buckets, key=lambda s: (s[1], s[0]))
                self._stats["forced_closes"] += 1
                self._forced.extend(self._close(spec, buckets.pop(oldest)))

    def advance(self, watermark: float) -> list[Hit]:
        """Close every bucket with ``end + lateness <= watermark``; score it; return hits."""
        self._watermark = max(self._watermark, watermark)
        hits, self._forced = self._forced, []
        for spec in self.specs.values():
            open_ = self._open[spec.id]
            due = sorted((start, key) for key, start in open_ if start + spec.bucket + spec.lateness <= watermark)
            for start, key in due:
                hits.extend(self._close(spec, open_.pop((key, start))))
        self._stats["hits"] += len(hits)
        return hits

    def _state_of(self, spec: MetricSpec, key: tuple[str, ...]) -> _KeyState:
        keys = self._keys[spec.id]
        state = keys.get(key)
        if state is None:
            state = keys[key] = _KeyState(spec.new_detector())
            if len(keys) > spec.max_keys:
                evicted, _ = keys.popitem(last=False)
                self._dirty.add((spec.id, evicted))
                self._stats["evicted_keys"] += 1
        else:
            keys.move_to_end(key)
        return state

    def _close(self, spec: MetricSpec, p: Partial) -> list[Hit]:
        self._stats["buckets_closed"] += 1
        self._dirty.add((spec.id, p.key))
        state = self._state_of(spec, p.key)
        hits: list[Hit] = []
        if spec.kind == "count" and state.last_bucket is not None:
            gap = round((p.bucket_start - state.last_bucket) / spec.bucket) - 1
            skipped = max(gap - MAX_GAP_FILL, 0)
            self._stats["gap_buckets_skipped"] += skipped
            for i in range(skipped + 1, gap + 1):
                start = state.last_bucket + i * spec.bucket
                self._stats["gap_buckets"] += 1
                empty = Partial(spec.id, p.key, start, max_ts=start + spec.bucket)
                hits.extend(self._observe(spec, state, empty, 0.0))
        state.last_bucket = max(p.bucket_start, state.last_bucket or p.bucket_start)
        if spec.kind == "first_seen":
            for value in sorted(p.values or []):
                hits.extend(self._observe(spec, state, p, value))
            return hits
        observed = self._value(spec, p)
        if observed is None:
            self._stats["sparse_buckets"] += 1
            return hits
        hits.extend(self._observe(spec, state, p, observed))
        return hits

    @staticmethod
    def _value(spec: MetricSpec, p: Partial) -> float | None:
        if spec.kind == "count":
            return float(p.matched if spec.counts_matches else p.count)
        if spec.kind in ("rate", "distinct"):
            if p.count < spec.min_count or p.count == 0:
                return None
            if spec.kind == "rate":
                return p.matched / p.count
            return float(round(hll_merge([p.hll]).get_estimate())) if p.hll else 0.0
        if p.n < spec.min_count or p.n == 0:
            return None
        if spec.kind == "mean":
            return p.sum / p.n
        return float(kll_load(p.kll).get_quantile(spec.q)) if p.kll else None

    def _observe(self, spec: MetricSpec, state: _KeyState, p: Partial, observed: Any) -> list[Hit]:
        det = state.detector
        n = p.count if spec.kind == "rate" else None  # sampling noise of a share depends on its denominator
        peek = det.score(observed, ts=p.bucket_start, n=n)
        why = det.explain() if det.fires(peek) else None  # the baseline the observation was judged against
        score = det.update(observed, ts=p.bucket_start, n=n)
        if score is None:
            self._stats["warming_up"] += 1
            return []
        if why is None:
            return []
        why["deviation"] = det.last_deviation
        return [self._hit(spec, p, observed, score, det, why)]

    def _hit(self, spec: MetricSpec, p: Partial, observed: Any, score: float, det: Detector,
             why: dict[str, Any]) -> Hit:
        group = dict(zip(spec.key, p.key, strict=True))
        end = p.bucket_start + spec.bucket
        evidence = {
            "metric": spec.kind, "field": spec.field, "key": group,
            "bucket_start": _iso(p.bucket_start), "bucket_end": _iso(end), "bucket_seconds": spec.bucket,
            "observed": observed, "baseline": why.get("baseline"), "spread": why.get("spread"),
            "deviation": why.get("deviation"), "score": round(score, 6), "detector": det.name,
            "params": det.params, "count": p.count, "matched": p.matched, "n": p.n,
        }
        if spec.kind == "quantile":
            evidence["q"] = spec.q
        scope_field = SCOPE_FIELDS.get(spec.scope)
        scope_value = group.get(scope_field, "/".join(p.key)) if scope_field else "fleet"
        key_text = ", ".join(f"{k}={v}" for k, v in group.items()) or "fleet"
        baseline = why.get("baseline")
        output = (f"{spec.title}: {spec.kind}{'(' + spec.field + ')' if spec.field else ''} = "
                  f"{observed if isinstance(observed, str) else format(observed, '.4g')} for {key_text} "
                  f"in [{_iso(p.bucket_start)}, {_iso(end)}); baseline "
                  f"{format(baseline, '.4g') if isinstance(baseline, float) else baseline}, score {score:.2f}")
        return Hit(
            rule_id=spec.id, rule_version=spec.version, kind="detector", title=spec.title,
            severity=spec.severity, tags=list(spec.tags), mode=spec.mode,  # type: ignore[arg-type]
            output=output, ts=min(p.max_ts or end, end), scope_kind=spec.scope, scope_value=scope_value,
            group=group, evidence=evidence, tenant_id=group.get("tenant_id"),
            deployment_id=group.get("deployment_id"), model=group.get("request_model"),
            agent_run_id=group.get("agent_run_id"), runbook_url=spec.runbook,
            dedup_key=f"{spec.id}|{orjson.dumps(list(p.key)).decode()}|{p.bucket_start:.0f}"
                      + (f"|{observed}" if spec.kind == "first_seen" else ""),
        )

    # -- state -----------------------------------------------------------
    @property
    def stats(self) -> dict[str, int]:
        out = dict(self._stats)
        out["open_buckets"] = sum(len(o) for o in self._open.values())
        out["keys"] = sum(len(k) for k in self._keys.values())
        return out

    @property
    def watermark(self) -> float:
        return self._watermark

    def snapshot(self) -> bytes:
        """Open buckets, per-key detector state and counters as compact JSON."""
        metrics = {}
        for mid, spec in self.specs.items():
            metrics[mid] = {
                "sig": spec.signature,
                "open": [p.to_list() for p in self._open[mid].values()],
                "keys": [[list(k), s.last_bucket, s.detector.snapshot()] for k, s in self._keys[mid].items()],
            }
        wm = self._watermark if math.isfinite(self._watermark) else None
        forced = [asdict(h) for h in self._forced]
        return orjson.dumps({"v": SNAPSHOT_VERSION, "wm": wm, "stats": self._stats, "m": metrics, "forced": forced})

    def dirty_state(self) -> dict[str, bytes | None]:
        """Per-key state changed since the last call: ``{route_key: blob}``, None = delete.

        For a key-value changelog (a Faust table keyed like the metrics topic):
        each entry holds one key's open buckets, detector and last closed
        bucket, so a batch rewrites only the keys it touched, and the state of a
        key lives on the partition that owns it. Call it after :meth:`advance`.
        """
        open_by_key: dict[tuple[str, tuple[str, ...]], list[Partial]] = {}
        for mid, buckets in self._open.items():
            for (key, _), p in buckets.items():
                if (mid, key) in self._dirty:
                    open_by_key.setdefault((mid, key), []).append(p)
        wm = self._watermark if math.isfinite(self._watermark) else None
        out: dict[str, bytes | None] = {}
        for mid, key in sorted(self._dirty):
            state = self._keys[mid].get(key)
            partials = sorted(open_by_key.get((mid, key), []), key=lambda p: p.bucket_start)
            route = orjson.dumps([mid, *key]).decode()
            if state is None and not partials:
                out[route] = None
                continue
            out[route] = orjson.dumps({
                "v": SNAPSHOT_VERSION, "sig": self.specs[mid].signature, "wm": wm,
                "last": state.last_bucket if state else None, "det": state.detector.snapshot() if state else None,
                "open": [p.to_list() for p in partials]})
        self._dirty.clear()
        return out

    def load_state(self, entries: Iterable[tuple[str, bytes]]) -> None:
        """Load per-key entries written by :meth:`dirty_state` (e.g. a Faust table after a rebalance)."""
        for route, blob in entries:
            mid, *key_list = orjson.loads(route)
            spec = self.specs.get(mid)
            data = orjson.loads(blob)
            if spec is None or data.get("v") != SNAPSHOT_VERSION:
                continue
            key = tuple(key_list)
            if data["wm"] is not None:
                self._watermark = max(self._watermark, data["wm"])
            for row in data["open"]:
                p = Partial.from_list(row)
                self._open[mid][(p.key, p.bucket_start)] = p
            if data["det"] is not None:
                same = data["sig"] == spec.signature
                if not same:
                    self._stats["state_reset_on_restore"] += 1
                det = Detector.restore(data["det"]) if same else spec.new_detector()
                self._keys[mid][key] = _KeyState(det, data["last"])
                if len(self._keys[mid]) > spec.max_keys:
                    self._keys[mid].popitem(last=False)
                    self._stats["evicted_keys"] += 1

    def restore(self, blob: bytes) -> None:
        """Load :meth:`snapshot`; metrics whose definition changed keep buckets but relearn."""
        data = orjson.loads(blob)
        if not isinstance(data, dict) or data.get("v") != SNAPSHOT_VERSION:
            version = data.get("v") if isinstance(data, dict) else None
            raise ValueError(f"not a metric runtime snapshot of version {SNAPSHOT_VERSION} (got version {version!r})")
        self._watermark = data["wm"] if data["wm"] is not None else -math.inf
        self._forced = [Hit(**{**h, "sources": [tuple(s) for s in h["sources"]]}) for h in data.get("forced", [])]
        for name, value in data["stats"].items():
            if name in self._stats:
                self._stats[name] = value
        for mid, saved in data["m"].items():
            spec = self.specs.get(mid)
            if spec is None:
                continue
            self._open[mid] = {}
            for row in saved["open"]:
                p = Partial.from_list(row)
                self._open[mid][(p.key, p.bucket_start)] = p
            self._keys[mid] = OrderedDict()
            same = saved["sig"] == spec.signature
            if not same and saved["keys"]:
                self._stats["state_reset_on_restore"] += len(saved["keys"])
            for key, last, snap in saved["keys"][-spec.max_keys:]:
                det = Detector.restore(snap) if same else spec.new_detector()
                self._keys[mid][tuple(key)] = _KeyState(det, last)


# -- compiling detector items ------------------------------------------------
@dataclass
class _Compiler:
    item: RawItem
    ctx: CompileContext
    ok: bool = field(default=True)

    def fail(self, where: str | Location, code: str, message: str, hint: str = "") -> None:
        location = where if isinstance(where, Location) else self.item.where(where)
        self.ctx.error(location, code, f"detector {self.item.name!r}: {message}", hint)
        self.ok = False

    def compile(self) -> MetricSpec | None:
        body, name = self.item.body, self.item.name
        for unknown in sorted(set(body) - ITEM_KEYS):
            self.fail(unknown, "OVR409", f"unknown key {unknown!r}", f"known keys: {', '.join(sorted(ITEM_KEYS))}")
        metric = body.get("metric")
        if not isinstance(metric, dict):
            self.fail("metric", "OVR401", "needs a 'metric' mapping with at least 'kind'",
                      "e.g. metric: {kind: rate, where: 'event_type = \"inference\"', match: 'is_refusal = true'}")
            return None
        kind = metric.get("kind")
        if kind not in KINDS:
            self.fail("metric", "OVR402", f"unknown metric kind {kind!r}", f"use one of {', '.join(KINDS)}")
            return None
        where = self._condition(metric, "where")
        match = self._condition(metric, "match")
        if kind == "rate" and "match" not in metric and "field" not in metric:
            self.fail("metric", "OVR403", "a rate metric needs 'match' (the numerator condition) or 'field' "
                      "(the numerator is then the events where that field is present)")
        field_name = metric.get("field")
        if kind in ("mean", "quantile", "distinct", "first_seen") and not isinstance(field_name, str):
            self.fail("metric", "OVR403", f"a {kind} metric needs 'field' (the event field to measure)",
                      "e.g. field: latency_ms")
        q = metric.get("q", 0.99)
        if kind == "quantile" and (not isinstance(q, int | float) or not 0.0 < q < 1.0):
            self.fail("metric", "OVR403", f"q must be a number in (0, 1), got {q!r}")
        key = body.get("key", [])
        if isinstance(key, str):
            key = [key]
        if not isinstance(key, list) or not all(isinstance(k, str) and k for k in key):
            self.fail("key", "OVR404", "key must be a list of event field names", "e.g. key: [deployment_id]")
            key = []
        bucket = self._duration("bucket", "1m")
        lateness = self._duration("lateness", DEFAULT_LATENESS)
        algorithm = body.get("algorithm", DEFAULT_ALGORITHM[kind])
        params = body.get("params") or {}
        detector = self._detector(kind, algorithm, params)
        severity = body.get("severity", "medium")
        if severity not in SEVERITIES:
            self.fail("severity", "OVR408", f"unknown severity {severity!r}", f"use one of {', '.join(SEVERITIES)}")
        scope = body.get("scope", self._default_scope(key))
        if scope not in SCOPES:
            self.fail("scope", "OVR408", f"unknown scope {scope!r}", f"use one of {', '.join(SCOPES)}")
        mode = body.get("mode", "enforce")
        if mode not in ("enforce", "shadow"):
            self.fail("mode", "OVR408", f"mode must be enforce or shadow, got {mode!r}")
        min_count = body.get("min_count", 1)
        if not isinstance(min_count, int) or isinstance(min_count, bool) or min_count < 1:
            self.fail("min_count", "OVR408", f"min_count must be an integer >= 1, got {min_count!r}")
        max_keys = body.get("max_keys", DEFAULT_MAX_KEYS)
        if not isinstance(max_keys, int) or isinstance(max_keys, bool) or max_keys < 1:
            self.fail("max_keys", "OVR408", f"max_keys must be an integer >= 1, got {max_keys!r}")
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            self.fail("tags", "OVR408", "tags must be a list of strings")
        if not self.ok or detector is None or bucket is None or lateness is None:
            return None
        return MetricSpec(
            id=name, title=str(body.get("title", name)), kind=kind, key=tuple(key), bucket=bucket,
            algorithm=algorithm, params=dict(params), where=where, match=match, field=field_name,
            q=float(q), lateness=lateness, min_count=min_count, severity=severity, tags=tuple(tags),
            scope=scope, mode=mode, runbook=body.get("runbook"), version=str(body.get("version", "1")),
            description=str(body.get("description", "")), max_keys=max_keys,
        )

    @staticmethod
    def _default_scope(key: list[str]) -> str:
        for scope, field_name in SCOPE_FIELDS.items():
            if field_name in key:
                return scope
        return "fleet"

    def _condition(self, metric: dict[str, Any], name: str) -> Predicate | None:
        source = metric.get(name)
        if source is None:
            return None
        if not isinstance(source, str):
            self.fail("metric", "OVR403", f"metric.{name} must be a condition string, got {source!r}")
            return None
        predicate = self.ctx.compile_condition(source, self.item.where("metric"))
        if predicate is None:
            self.ok = False  # the context already recorded why
        return predicate

    def _duration(self, name: str, default: Any) -> float | None:
        try:
            seconds = parse_duration(self.item.body.get(name, default))
        except ValueError as exc:
            self.fail(name, "OVR405", str(exc))
            return None
        if seconds < 0 or (name == "bucket" and seconds <= 0):
            self.fail(name, "OVR405", f"{name} must be positive, got {seconds}")
            return None
        return seconds

    def _detector(self, kind: str, algorithm: Any, params: Any) -> Detector | None:
        if algorithm not in REGISTRY:
            self.fail("algorithm", "OVR406", f"unknown algorithm {algorithm!r}",
                      f"use one of {', '.join(sorted(REGISTRY))}")
            return None
        if (kind == "first_seen") != (REGISTRY[algorithm].observation == "hashable"):
            self.fail("algorithm", "OVR406", f"algorithm {algorithm!r} cannot score a {kind} metric",
                      "first_seen metrics use novelty; numeric metrics use any other detector")
            return None
        if not isinstance(params, dict):
            self.fail("params", "OVR407", "params must be a mapping")
            return None
        try:
            return create(algorithm, **params)
        except (TypeError, ValueError) as exc:
            self.fail("params", "OVR407", f"bad params for {algorithm}: {exc}")
            return None


def compile_items(items: list[RawItem], ctx: CompileContext) -> MetricRuntime:
    """Compile ``detector`` items; problems go to ``ctx.error`` and the item is left out."""
    specs = []
    seen: set[str] = set()
    for item in items:
        if item.kind != "detector" or item.body.get("enabled", True) is False:
            continue
        if item.name in seen:
            ctx.error(item.location, "OVR410", f"detector {item.name!r} is defined twice",
                      "use `override:` or `append:` to change an existing item")
            continue
        seen.add(item.name)
        spec = _Compiler(item, ctx).compile()
        if spec is not None:
            specs.append(spec)
    return MetricRuntime(specs)
