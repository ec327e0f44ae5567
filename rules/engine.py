"""The rule engine: compiled rules evaluated over batches of event dicts.

>>> engine = engine_from_text('''
... - rule: shell_exec
...   title: Shell command executed
...   severity: low
...   tags: [agent.exec]
...   condition: action_category = "exec" and tool_name in (bash, sh)
...   output: "{tool_name}: {tool_arguments}"
... ''')
>>> hits = engine.process([{"event_id": "e1", "event_type": "tool_call", "action_category": "exec",
...                         "tool_name": "bash", "tool_arguments": "ls", "deployment_id": "d1", "_ts": 1.0}])
>>> [(h.rule_id, h.output, h.scope_kind, h.scope_value) for h in hits]
[('shell_exec', 'bash: ls', 'deployment', 'd1')]

Evaluation is batch-first: each rule's condition is indexed by the
``action_category``/``event_type`` values it requires (extracted at compile
time), so an event runs only the rules that can match it, through one
dictionary lookup. A batch is sorted by event time once; after it, event
time advances to the batch's newest event, closing windows and firing
absences that are due.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from rules.base import Hit
from rules.conditions import ConditionContext
from rules.errors import Diagnostics
from rules.hits import make_hit, reduce_event
from rules.items import Diagnostic, Predicate, RawItem
from rules.loader import LoadedSet, load_paths, load_sources
from rules.rule import RuleDef, compile_rule
from rules.sequences import Sequence
from rules.suppression import Suppressor
from rules.windows import SlidingWindow, TumblingWindow

__all__ = ['Engine', 'build_engine', 'builtin_packs', 'engine_from_text', 'load_engine']

SNAPSHOT_VERSION = 1
_TS = itemgetter("_ts")
Unit = tuple[Predicate, Callable[[dict[str, Any], int, list[Hit]], None], int]
Bucket = tuple[Callable[[dict[str, Any]], tuple[int, ...]], tuple[Unit, ...]]


def _json(rows: Iterator[Any], brackets: bytes, out: list[bytes], chunk: int = 4096) -> None:
    """Append the bytes of ``orjson.dumps(list(rows))`` (``b"[]"``) or ``orjson.dumps(dict(rows))`` (``b"{}"``)
    to ``out``, serialized ``chunk`` rows at a time: a snapshot of a million keys never holds them all as
    Python rows, nor its bytes more than twice (the pieces, then the joined snapshot)."""
    as_dict = brackets == b"{}"
    out.append(brackets[:1])
    sep = b""
    while batch := list(islice(rows, chunk)):
        piece = orjson.dumps(dict(batch) if as_dict else batch)
        out += (sep, piece[1:-1])
        sep = b","
    out.append(brackets[1:])


class _EventRule:
    """Per-event rule: every match is a hit."""

    def __init__(self, rule: RuleDef, emit: Callable[[Hit, dict[str, Any], list[Hit]], None]) -> None:
        self.rule, self.emit = rule, emit

    def on_event(self, e: dict[str, Any], step: int, out: list[Hit]) -> None:
        evidence = {"fields": reduce_event(e, self.rule.evidence_fields)}
        self.emit(make_hit(self.rule, e, e["_ts"], [str(e.get("event_id"))], evidence=evidence), e, out)


class Engine:
    """Implements `rules.base.BatchEvaluator`. Build it with :func:`load_engine`."""

    def __init__(self, loaded: LoadedSet, rules: list[RuleDef], context: ConditionContext,
                 diagnostics: list[Diagnostic], *, allowed_lateness_s: float = 60.0) -> None:
        self.loaded, self.rules, self.context = loaded, rules, context
        self.diagnostics = diagnostics
        self.lateness = float(allowed_lateness_s)
        self.watermark = -math.inf
        self.counters = {"events": 0, "late_events": 0, "hits": 0, "eval_errors": 0, "state_dropped": 0}
        self._stateful: dict[str, Any] = {}
        self._suppressors: dict[str, Suppressor] = {}
        self._units: list[tuple[dict[str, frozenset[Any]] | None, Unit, str]] = []
        self._cache: dict[tuple[Any, Any], Bucket] = {}
        self._namespace: dict[str, Any] = context.namespace()
        for rule in rules:
            if rule.enabled:
                self._add(rule)

    # -- construction ---------------------------------------------------------------------------
    def _add(self, rule: RuleDef) -> None:
        if rule.dedup_key is not None:
            self._suppressors[rule.id] = Suppressor(rule)
        emit = self._emitter(rule)
        if rule.sequence is not None:
            seq = Sequence(rule, self.lateness, emit)
            self._stateful[rule.id] = seq
            for i in reversed(range(len(rule.sequence.steps))):  # advance partials before starting new ones
                step = rule.sequence.steps[i]
                self._units.append((step.condition.prereq, (self._guard(rule, step.condition.predicate),
                                                            seq.on_event, i), self._code(rule, step.condition.code)))
            return
        assert rule.condition is not None
        handler: Any
        if rule.window is not None:
            handler = (SlidingWindow if rule.window.type == "sliding" else TumblingWindow)(rule, self.lateness, emit)
            self._stateful[rule.id] = handler
        else:
            handler = _EventRule(rule, emit)
        self._units.append((rule.condition.prereq, (self._guard(rule, rule.condition.predicate), handler.on_event, 0),
                            self._code(rule, rule.condition.code)))

    def _code(self, rule: RuleDef, code: str) -> str:
        if not rule.exceptions:
            return code
        name = f"_X{len(self._units)}_"
        self._namespace[name] = rule.excepted
        return f"({code} and not {name}(e))"

    @staticmethod
    def _guard(rule: RuleDef, pred: Predicate) -> Predicate:
        if not rule.exceptions:
            return pred
        excepted = rule.excepted
        return lambda e: pred(e) and not excepted(e)

    def _emitter(self, rule: RuleDef) -> Callable[[Hit, dict[str, Any], list[Hit]], None]:
        sup = self._suppressors.get(rule.id)
        if sup is None:
            return lambda hit, e, out: out.append(hit)
        return sup.admit

    def _bucket(self, key: tuple[Any, Any]) -> Bucket:
        """The rules an event with this (event_type, action_category) can match, fused into one function.

        The function evaluates every candidate condition inline (no call per rule) and returns the
        indexes of the matching units; their handlers run afterwards, so when a malformed event makes
        a condition raise, the event is re-run rule by rule without any handler having run twice.
        """
        event_type, action_category = key
        units: list[Unit] = []
        lines = ["def _bucket(e):", "    m = ()"]  # most events match nothing: no allocation for them
        for prereq, unit, code in self._units:
            if prereq is not None:
                if "action_category" in prereq and action_category not in prereq["action_category"]:
                    continue
                if "event_type" in prereq and event_type not in prereq["event_type"]:
                    continue
            # every event of this bucket has these two values: read them from constants, not the event
            code = code.replace("e.get('event_type')", "_ET_").replace("e.get('action_category')", "_AC_")
            lines += [f"    if {code}:", f"        m += ({len(units)},)"]
            units.append(unit)
        lines.append("    return m")
        namespace = dict(self._namespace)
        namespace["_ET_"], namespace["_AC_"] = event_type, action_category
        exec("\n".join(lines), namespace)  # noqa: S102 - generated from compiled, checked conditions
        self._cache[key] = (namespace["_bucket"], tuple(units))
        return self._cache[key]

    def _one_by_one(self, e: dict[str, Any], units: tuple[Unit, ...]) -> tuple[int, ...]:
        matched: list[int] = []
        for i, (pred, _, _) in enumerate(units):
            try:
                if pred(e):
                    matched.append(i)
            except (TypeError, AttributeError, ValueError):  # a malformed event dict never stops a batch
                self.counters["eval_errors"] += 1
        return tuple(matched)

    # -- BatchEvaluator -------------------------------------------------------------------------
    def process(self, events: list[dict[str, Any]]) -> list[Hit]:
        """Evaluate one batch (any order); returns the hits, including windows/absences now due."""
        out: list[Hit] = []
        if not events:
            return out
        events = sorted(events, key=_TS)
        late_before = self.watermark - self.lateness
        if events[0]["_ts"] < late_before:
            self.counters["late_events"] += bisect.bisect_left(events, late_before, key=_TS)
        cache_get = self._cache.get
        for e in events:
            key = (e.get("event_type"), e.get("action_category"))
            bucket = cache_get(key)
            if bucket is None:
                bucket = self._bucket(key)
            fused, units = bucket
            try:
                matched = fused(e)
            except (TypeError, AttributeError, ValueError):
                matched = self._one_by_one(e, units)
            for i in matched:
                _, on_event, step = units[i]
                on_event(e, step, out)
        self.counters["events"] += len(events)
        self._advance(events[-1]["_ts"], out)
        self.counters["hits"] += len(out)
        return out

    def advance(self, watermark: float) -> list[Hit]:
        """Event time reached ``watermark``: close windows, fire absences, end dedup periods."""
        out: list[Hit] = []
        self._advance(watermark, out)
        self.counters["hits"] += len(out)
        return out

    def _advance(self, watermark: float, out: list[Hit]) -> None:
        if watermark > self.watermark:
            self.watermark = watermark
        for evaluator in self._stateful.values():
            evaluator.advance(self.watermark, out)
        for sup in self._suppressors.values():
            sup.advance(self.watermark, out)

    def snapshot(self) -> bytes:
        """Window, sequence and dedup state of every rule, tagged with its definition hash (JSON)."""
        # the bytes of orjson.dumps({"v": ..., "watermark": ..., "rules": {id: {"hash", "state", "dedup"}}}),
        # assembled piece by piece (see _json)
        wm = self.watermark if math.isfinite(self.watermark) else None
        out: list[bytes] = [orjson.dumps({"v": SNAPSHOT_VERSION, "watermark": wm})[:-1], b',"rules":{']
        sep = b""
        for rule in self.rules:
            ev, sup = self._stateful.get(rule.id), self._suppressors.get(rule.id)
            if ev is None and sup is None:
                continue
            out += (sep, orjson.dumps(rule.id), b':{"hash":', orjson.dumps(rule.hash), b',"state":')
            if ev is not None:
                _json(ev.rows(), b"[]", out)
            else:
                out.append(b"null")
            out.append(b',"dedup":')
            if sup is not None:
                _json(sup.rows(), b"{}", out)
            else:
                out.append(b"null")
            out.append(b"}")
            sep = b","
        out.append(b"}}")
        return b"".join(out)

    def restore(self, blob: bytes) -> None:
        """Load state; rules whose definition changed (or vanished) start empty, counted in ``state_dropped``."""
        data = orjson.loads(blob)
        if data.get("watermark") is not None:
            self.watermark = max(self.watermark, float(data["watermark"]))
        by_id = {r.id: r for r in self.rules}
        for rule_id, entry in data.get("rules", {}).items():
            rule = by_id.get(rule_id)
            if rule is None or rule.hash != entry.get("hash") or not rule.enabled:
                self.counters["state_dropped"] += 1
                continue
            if entry.get("state") is not None and rule_id in self._stateful:
                self._stateful[rule_id].load(entry["state"])
            if entry.get("dedup") is not None and rule_id in self._suppressors:
                self._suppressors[rule_id].load(entry["dedup"])

    # -- hot swap and introspection --------------------------------------------------------------
    def fresh(self) -> Engine:
        """A new engine with the same compiled rules and empty state (one per source partition)."""
        return Engine(self.loaded, self.rules, self.context, self.diagnostics, allowed_lateness_s=self.lateness)

    def swap_from(self, old: Engine) -> Engine:
        """Carry over state of rules whose compiled definition is unchanged; returns ``self``."""
        self.restore(old.snapshot())
        return self

    def items(self, kind: str) -> list[RawItem]:
        """Merged raw items of a kind (``detector``, ``policy``) for their own compilers."""
        return self.loaded.of_kind(kind)

    def rule(self, rule_id: str) -> RuleDef:
        return next(r for r in self.rules if r.id == rule_id)

    @property
    def stats(self) -> dict[str, int]:
        return {**self.counters,
                "suppressed": sum(s.suppressed for s in self._suppressors.values()),
                "window_overflow": sum(getattr(e, "overflow", 0) for e in self._stateful.values()),
                "state_keys": sum(e.size() for e in self._stateful.values()),
                "rules": len(self.rules), "rules_enabled": sum(r.enabled for r in self.rules)}


def builtin_packs() -> Path:
    """The directory of the built-in packs (package data next to this module)."""
    return Path(__file__).resolve().with_name("packs")


def build_engine(loaded: LoadedSet, diags: Diagnostics, *, allowed_lateness_s: float = 60.0) -> Engine:
    """Compile merged items; raises `RuleLoadError` with every diagnostic if anything is wrong."""
    ctx = ConditionContext(diags, loaded.of_kind("list"), loaded.of_kind("macro"), loaded.offset_maps)
    ctx.check_all()
    rules = [r for r in (compile_rule(i, ctx) for i in loaded.of_kind("rule")) if r is not None]
    diags.raise_if_errors()
    return Engine(loaded, rules, ctx, diags.sorted(), allowed_lateness_s=allowed_lateness_s)


def load_engine(paths: Iterable[Path] | None = None, *, allowed_lateness_s: float = 60.0,
                previous: Engine | None = None) -> Engine:
    """Load rule files/directories (None: the built-in packs) into an engine.

    With ``previous``, state of unchanged rules is carried over (hot swap). A
    failing load raises `RuleLoadError` and leaves ``previous`` untouched.
    """
    diags = Diagnostics()
    loaded = load_paths(list(paths) if paths is not None else [builtin_packs()], diags)
    engine = build_engine(loaded, diags, allowed_lateness_s=allowed_lateness_s)
    return engine.swap_from(previous) if previous is not None else engine


def engine_from_text(text: str, path: str = "<rules>.yaml", *, allowed_lateness_s: float = 60.0) -> Engine:
    """An engine from one inline rule file (tests, examples)."""
    diags = Diagnostics()
    return build_engine(load_sources([(path, text)], diags), diags, allowed_lateness_s=allowed_lateness_s)
