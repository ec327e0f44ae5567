"""Policies: which detections lead to which containment, at which scope, how fast.

A ``policy`` item in a rule file names the detections it reacts to
(``match``), the scope it acts on, a threshold over an event-time window, an
escalation ladder, a cooldown, a lease, a blast-radius cap and a mode
(``enforce`` or ``shadow``). :func:`compile_items` turns the items into a
:class:`PolicyEngine`; the runtime feeds it detections and turns each
:class:`Decision` into a signed command (``outcome == "command"``) or a
critical alert asking a human (``needs_confirmation``).

Decisions depend only on the detections (their event time, ids and order),
never on the wall clock, so a replay — live or in a backtest — yields the
same decisions and idempotency keys. Detections already counted are
recognised by id and not counted twice. Idle state is forgotten relative to
the newest event time seen, not the wall clock.

>>> item = RawItem("policy", "pause_on_critical", {"match": {"severity_at_least": "critical"},
...     "scope": "deployment", "ladder": ["pause"]}, Location("p.yaml", 1, 1))
>>> engine = compile_items([item], RaisingContext())
>>> det = {"detection_id": "d1", "kind": "rule", "rule_id": "r", "rule_version": "1",
...        "severity": "critical", "tags": [], "mode": "enforce",
...        "scope": {"kind": "agent_run", "value": "run-1"}, "ts": "2026-01-01T00:00:00Z",
...        "deployment_id": "dep-1", "event_ids": ["e1"], "evidence": {}, "source_offsets": []}
>>> [(d.outcome, d.action, d.scope_value) for d in engine.on_detection(det, now=0.0)]
[('command', 'pause', 'dep-1')]
>>> engine.on_detection(det, now=0.0)  # the same detection again: already counted
[]
"""

from __future__ import annotations

import fnmatch
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson

from rules.items import CompileContext, Location, RawItem
from schemas.detections import SEVERITY_RANK
from schemas.ids import stable_id
from schemas.killswitch import LADDER

Outcome = Literal["command", "needs_confirmation", "suppressed_cooldown"]
SCOPE_KINDS = ("fleet", "model", "deployment", "tenant", "agent_run", "session")
_SCOPE_FIELD = {"model": "model", "deployment": "deployment_id", "tenant": "tenant_id", "agent_run": "agent_run_id"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_KEYS = {"policy", "description", "version", "match", "scope", "threshold", "ladder", "throttle_rate",
         "revoke_tools", "cooldown", "lease", "blast_radius", "mode", "ladder_reset", "enabled", "tags"}
_MATCH_KEYS = {"severity_at_least", "tags_any", "rule_ids", "kinds", "min_score"}
FLEET_VALUE = "all"


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"30s"``, ``"10m"``, ``"1h"``, ``"2d"``.

    >>> parse_duration("10m"), parse_duration(1.5)
    (600.0, 1.5)
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION.match(str(value))
    if m is None:
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 10m, 1h, 2d)")
    return float(m.group(1)) * _UNIT[m.group(2)]


@dataclass(frozen=True, slots=True)
class Match:
    min_severity: int = 0
    tag_patterns: tuple[str, ...] = ()
    rule_ids: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    min_score: float | None = None

    def __call__(self, det: dict[str, Any]) -> bool:
        if SEVERITY_RANK.get(det.get("severity", ""), -1) < self.min_severity:
            return False
        if self.kinds and det.get("kind") not in self.kinds:
            return False
        if self.rule_ids and det.get("rule_id") not in self.rule_ids:
            return False
        if self.tag_patterns:
            tags = det.get("tags") or ()
            if not any(fnmatch.fnmatchcase(t, p) for t in tags for p in self.tag_patterns):
                return False
        if self.min_score is not None:
            score = (det.get("evidence") or {}).get("score")
            if not isinstance(score, int | float) or score < self.min_score:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Policy:
    policy_id: str
    version: str
    match: Match
    scope: str
    count: int
    window_s: float
    ladder: tuple[str, ...]
    cooldown_s: float
    lease_s: float
    mode: str
    throttle_rate: float | None = None
    revoke_tools: tuple[str, ...] = ()
    max_share: float | None = None
    blast_window_s: float = 3600.0
    fleet_size_hint: int = 0
    ladder_reset_s: float = 86400.0
    description: str = ""


@dataclass(slots=True)
class Decision:
    """What a policy decided about one scope. ``reason`` is for the people reading the audit log."""

    policy_id: str
    policy_version: str
    outcome: Outcome
    scope_kind: str
    scope_value: str
    action: str
    mode: str
    reason: str
    lease_s: float
    idempotency_key: str
    throttle_rate: float | None = None
    revoked_tools: list[str] = field(default_factory=list)
    detection_ids: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    rule_ids: list[str] = field(default_factory=list)
    rule_versions: dict[str, str] = field(default_factory=dict)
    offsets: list[dict[str, Any]] = field(default_factory=list)
    ts: float = 0.0  # event time of the detection that completed the threshold


@dataclass(slots=True)
class _ScopeState:
    window: deque[list[Any]] = field(default_factory=deque)  # [ts, det_id, rule_id, rule_version, event_ids, offsets]
    seen: dict[str, float] = field(default_factory=dict)  # detection id -> ts (dedup on replay)
    level: int = 0
    cooldown_until: float = float("-inf")
    last_breach: float = float("-inf")


class PolicyEngine:
    """Holds every compiled policy and its state; the runtime calls the three verbs below."""

    def __init__(self, policies: list[Policy]) -> None:
        self.policies = policies
        self.state: dict[str, _ScopeState] = {}  # "policy|mode|scope_value" -> state
        self.acted: dict[str, deque[tuple[float, str]]] = {}  # policy|mode -> (ts, scope value) it acted on
        self.known_scopes: dict[str, dict[str, float]] = {}  # kind -> value -> last seen
        self.watermark = float("-inf")  # newest detection event time seen
        self.stats: dict[str, int] = {"detections": 0, "matched": 0, "no_scope": 0, "replayed": 0, "late": 0,
                                      "command": 0, "needs_confirmation": 0, "suppressed_cooldown": 0,
                                      "shadow_decisions": 0}

    # -- fleet size -------------------------------------------------------------
    def observe_scope(self, kind: str, value: str, ts: float) -> None:
        """The runtime saw ``kind=value`` at ``ts``: it counts towards the fleet size of that kind."""
        seen = self.known_scopes.setdefault(kind, {})
        if seen.get(value, float("-inf")) < ts:
            seen[value] = ts

    def fleet_size(self, policy: Policy, ts: float) -> int:
        horizon = ts - max(policy.blast_window_s, 86400.0)
        known = sum(1 for t in self.known_scopes.get(policy.scope, {}).values() if t >= horizon)
        return max(known, policy.fleet_size_hint)

    # -- detections -------------------------------------------------------------
    def on_detection(self, det: dict[str, Any], now: float) -> list[Decision]:
        """Count one detection (``Detection.model_dump(mode="json")``) against every policy.

        ``now`` (processing time) is accepted for the runtime's convenience but
        never changes a decision: every clock here is the detections' event time.
        """
        self.stats["detections"] += 1
        ts = _epoch(det["ts"])
        self.watermark = max(self.watermark, ts)
        out: list[Decision] = []
        for policy in self.policies:
            if not policy.match(det):
                continue
            self.stats["matched"] += 1
            value = _scope_value(policy.scope, det)
            if value is None:
                self.stats["no_scope"] += 1
                continue
            decision = self._count(policy, value, det, ts)
            if decision is not None:
                out.append(decision)
                self.stats[decision.outcome] += 1
                if decision.mode == "shadow":
                    self.stats["shadow_decisions"] += 1
        self._forget_idle()
        return out

    def _count(self, policy: Policy, value: str, det: dict[str, Any], ts: float) -> Decision | None:
        mode = "shadow" if policy.mode == "shadow" or det.get("mode") == "shadow" else "enforce"
        st = self.state.setdefault(f"{policy.policy_id}|{mode}|{value}", _ScopeState())
        det_id = det["detection_id"]
        if det_id in st.seen:
            self.stats["replayed"] += 1
            return None
        newest = max(ts, st.window[-1][0]) if st.window else ts
        cutoff = newest - policy.window_s
        if ts <= cutoff:
            self.stats["late"] += 1  # older than the window of what this scope already saw
            return None
        st.seen = {d: t for d, t in st.seen.items() if t > cutoff}
        st.seen[det_id] = ts
        offsets = [[o["topic"], o["partition"], o["offset"]] for o in det.get("source_offsets") or ()]
        entry = [ts, det_id, det.get("rule_id", ""), det.get("rule_version", "1"),
                 list(det.get("event_ids") or ()), offsets]
        inside = sorted([w for w in st.window if w[0] > cutoff] + [entry], key=lambda w: (w[0], w[1]))
        if len(inside) < policy.count:
            st.window = deque(inside)
            return None
        st.window = deque()  # these detections are spent: the next breach needs fresh ones
        return self._breach(policy, mode, value, inside, ts, st)

    def _breach(self, policy: Policy, mode: str, value: str, inside: list[list[Any]], ts: float,
                st: _ScopeState) -> Decision:
        if ts - st.last_breach > policy.ladder_reset_s:
            st.level = 0
        st.last_breach = ts
        action = policy.ladder[min(st.level, len(policy.ladder) - 1)]
        det_ids = [w[1] for w in inside]
        window_txt = _fmt_duration(policy.window_s)
        why = (f"policy {policy.policy_id} v{policy.version}: {len(inside)} matching detection(s) "
               f"for {policy.scope}={value} within {window_txt} (threshold {policy.count}): "
               f"{', '.join(det_ids[:10])}{' …' if len(det_ids) > 10 else ''}")
        outcome: Outcome = "command"
        if ts < st.cooldown_until:
            outcome = "suppressed_cooldown"
            why += f"; suppressed: cooldown until +{st.cooldown_until - ts:.0f}s"
        elif action != "flag" and self._over_cap(policy, mode, value, ts):
            outcome = "needs_confirmation"
            why += (f"; blast-radius cap: acting on {policy.scope}={value} would exceed "
                    f"{policy.max_share:.0%} of {self.fleet_size(policy, ts)} known {policy.scope}(s) "
                    f"within {_fmt_duration(policy.blast_window_s)} — a human must confirm")
            st.cooldown_until = ts + policy.cooldown_s
        else:
            st.cooldown_until = ts + policy.cooldown_s
            st.level += 1
            if policy.max_share is not None:
                self.acted.setdefault(f"{policy.policy_id}|{mode}", deque()).append((ts, value))
            if st.level > 1:
                why += f"; escalation step {min(st.level, len(policy.ladder))} of {len(policy.ladder)}"
        return _decision(policy, mode, value, action, outcome, why, inside, ts)

    def _over_cap(self, policy: Policy, mode: str, value: str, ts: float) -> bool:
        if policy.max_share is None:
            return False
        acted = self.acted.setdefault(f"{policy.policy_id}|{mode}", deque())
        while acted and acted[0][0] <= ts - policy.blast_window_s:
            acted.popleft()
        targets = {v for _, v in acted}
        if value in targets:
            return False
        size = self.fleet_size(policy, ts)
        return size <= 0 or (len(targets) + 1) / size > policy.max_share

    def _forget_idle(self) -> None:
        """Every 1024 detections, drop per-scope state that can no longer influence a decision."""
        if self.stats["detections"] % 1024:
            return
        by_id = {p.policy_id: p for p in self.policies}
        for key in list(self.state):
            st = self.state[key]
            p = by_id.get(key.split("|", 1)[0])
            keep = max(p.window_s, p.cooldown_s, p.ladder_reset_s) if p else 0.0
            newest = max([*st.seen.values(), st.last_breach, st.cooldown_until])
            if newest < self.watermark - keep:
                del self.state[key]
        horizon = self.watermark - 7 * 86400.0
        for seen in self.known_scopes.values():
            for value in [v for v, t in seen.items() if t < horizon]:
                del seen[value]

    # -- state --------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """All state (windows, ladder levels, cooldowns, blast-radius windows, fleet) as bytes."""
        return orjson.dumps({
            "v": 1,
            "state": {k: {"window": list(s.window), "seen": s.seen, "level": s.level,
                          "cooldown_until": _finite(s.cooldown_until), "last_breach": _finite(s.last_breach)}
                      for k, s in self.state.items()},
            "acted": {k: list(v) for k, v in self.acted.items()},
            "known": self.known_scopes,
            "watermark": _finite(self.watermark),
            "stats": self.stats,
        })

    def restore(self, blob: bytes) -> None:
        data = orjson.loads(blob)
        self.state = {k: _ScopeState(window=deque(s["window"]), seen=s["seen"], level=s["level"],
                                     cooldown_until=_infinite(s["cooldown_until"]),
                                     last_breach=_infinite(s["last_breach"]))
                      for k, s in data["state"].items()}
        self.acted = {k: deque((t, v) for t, v in items) for k, items in data["acted"].items()}
        self.known_scopes = data["known"]
        self.watermark = _infinite(data.get("watermark"))
        self.stats.update(data["stats"])


def _decision(policy: Policy, mode: str, value: str, action: str, outcome: Outcome, why: str,
              inside: list[list[Any]], ts: float) -> Decision:
    det_ids = [w[1] for w in inside]
    key = stable_id("killswitch", policy.policy_id, policy.version, policy.scope, value, action, mode,
                    *sorted(det_ids))
    rule_versions = {w[2]: w[3] for w in inside}
    return Decision(
        policy_id=policy.policy_id, policy_version=policy.version, outcome=outcome, scope_kind=policy.scope,
        scope_value=value, action=action, mode=mode, reason=why, lease_s=policy.lease_s, idempotency_key=key,
        throttle_rate=policy.throttle_rate if action == "throttle" else None,
        revoked_tools=list(policy.revoke_tools) if action == "revoke_tools" else [],
        detection_ids=det_ids, event_ids=list(dict.fromkeys(e for w in inside for e in w[4]))[:1000],
        rule_ids=sorted(rule_versions), rule_versions=rule_versions,
        offsets=[{"topic": t, "partition": p, "offset": o} for w in inside for t, p, o in w[5]], ts=ts)


def _scope_value(kind: str, det: dict[str, Any]) -> str | None:
    if kind == "fleet":
        return FLEET_VALUE
    scope = det.get("scope") or {}
    if scope.get("kind") == kind:
        return scope.get("value")
    name = _SCOPE_FIELD.get(kind)
    value = det.get(name) if name else (det.get("group") or {}).get(kind)
    return value or None


def _epoch(ts: Any) -> float:
    if isinstance(ts, int | float):
        return float(ts)
    return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp()


def _finite(x: float) -> float | None:
    return None if x == float("-inf") else x


def _infinite(x: float | None) -> float:
    return float("-inf") if x is None else x


def _fmt_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# -- compilation ------------------------------------------------------------------
class RaisingContext:
    """A CompileContext that raises on the first error (for doctests and quick scripts)."""

    def compile_condition(self, source: str, location: Location) -> None:
        raise ValueError(f"{location}: conditions are not supported here")

    def error(self, location: Location, code: str, message: str, hint: str = "") -> None:
        raise ValueError(f"{location}: {code} {message}")


def compile_items(items: list[RawItem], ctx: CompileContext) -> PolicyEngine:
    """Compile every ``policy`` item; report each problem through ``ctx.error`` and skip that item."""
    policies: list[Policy] = []
    seen: set[str] = set()
    for item in items:
        if item.kind != "policy":
            continue
        if item.name in seen:
            ctx.error(item.location, "OVR501", f"policy {item.name!r} is defined twice",
                      "give each policy a unique id, or use override/append")
            continue
        policy = _compile_one(item, ctx)
        if policy is not None:
            seen.add(item.name)
            policies.append(policy)
    return PolicyEngine(policies)


def _compile_one(item: RawItem, ctx: CompileContext) -> Policy | None:
    body = item.body
    errors = 0

    def err(key: str, code: str, message: str, hint: str = "") -> None:
        nonlocal errors
        errors += 1
        ctx.error(item.where(key), code, f"policy {item.name!r}: {message}", hint)

    for key in sorted(set(body) - _KEYS):
        err(key, "OVR502", f"unknown key {key!r}", f"allowed keys: {', '.join(sorted(_KEYS - {'policy'}))}")
    if body.get("enabled", True) is False:
        return None
    match = _compile_match(body.get("match"), err)
    scope = body.get("scope", "deployment")
    if scope not in SCOPE_KINDS:
        err("scope", "OVR503", f"scope must be one of {', '.join(SCOPE_KINDS)}, not {scope!r}")
    ladder_raw = body.get("ladder", ["pause"])
    if isinstance(ladder_raw, str):
        ladder_raw = [ladder_raw]
    if not isinstance(ladder_raw, list) or not ladder_raw or any(a not in LADDER for a in ladder_raw):
        err("ladder", "OVR504", f"ladder must be a non-empty list of {', '.join(LADDER)}; got {ladder_raw!r}")
        ladder_raw = ["flag"]
    ladder = tuple(str(a) for a in ladder_raw)
    rate = body.get("throttle_rate")
    if "throttle" in ladder and not (isinstance(rate, int | float) and rate > 0):
        err("throttle_rate", "OVR505", "a ladder with throttle needs throttle_rate > 0 (requests per second)")
    tools = body.get("revoke_tools", [])
    if "revoke_tools" in ladder and not (isinstance(tools, list) and tools and all(isinstance(t, str) for t in tools)):
        err("revoke_tools", "OVR505", "a ladder with revoke_tools needs a non-empty revoke_tools list")
    mode = body.get("mode", "enforce")
    if mode not in ("enforce", "shadow"):
        err("mode", "OVR506", f"mode must be enforce or shadow, not {mode!r}")

    def duration(key: str, raw: Any, default: float, allow_zero: bool = False) -> float:
        if raw is None:
            return default
        try:
            seconds = parse_duration(raw)
        except ValueError as exc:
            err(key, "OVR507", str(exc))
            return default
        if seconds < 0 or (seconds == 0 and not allow_zero):
            err(key, "OVR507", f"{key} must be positive")
        return seconds

    threshold = body.get("threshold") or {}
    if not isinstance(threshold, dict):
        err("threshold", "OVR508", "threshold must be a mapping like {count: 3, window: 10m}")
        threshold = {}
    count = threshold.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        err("threshold", "OVR508", f"threshold.count must be an integer >= 1, not {count!r}")
        count = 1
    window_s = duration("threshold", threshold.get("window"), 600.0)
    blast = body.get("blast_radius") or {}
    if not isinstance(blast, dict):
        err("blast_radius", "OVR509", "blast_radius must be a mapping like {max_share: 0.2, window: 1h}")
        blast = {}
    share = blast.get("max_share")
    if share is not None and not (isinstance(share, int | float) and 0 < share <= 1):
        err("blast_radius", "OVR509", f"blast_radius.max_share must be in (0, 1], not {share!r}")
        share = None
    hint = blast.get("fleet_size_hint", 0)
    if not isinstance(hint, int) or hint < 0:
        err("blast_radius", "OVR509", "blast_radius.fleet_size_hint must be a non-negative integer")
        hint = 0
    policy = Policy(
        policy_id=item.name, version=str(body.get("version", "1")), match=match, scope=scope,
        count=count, window_s=window_s, ladder=ladder,
        cooldown_s=duration("cooldown", body.get("cooldown"), 300.0, allow_zero=True),
        lease_s=duration("lease", body.get("lease"), 3600.0), mode=mode,
        throttle_rate=float(rate) if isinstance(rate, int | float) else None,
        revoke_tools=tuple(tools) if isinstance(tools, list) else (),
        max_share=float(share) if share is not None else None,
        blast_window_s=duration("blast_radius", blast.get("window"), 3600.0), fleet_size_hint=hint,
        ladder_reset_s=duration("ladder_reset", body.get("ladder_reset"), 86400.0),
        description=str(body.get("description", "")))
    return None if errors else policy


def _compile_match(raw: Any, err: Any) -> Match:
    if raw is None:
        err("match", "OVR510", "a policy needs a match (e.g. {severity_at_least: high})")
        return Match()
    if not isinstance(raw, dict):
        err("match", "OVR510", "match must be a mapping")
        return Match()
    for key in sorted(set(raw) - _MATCH_KEYS):
        err("match", "OVR510", f"unknown match key {key!r}", f"allowed: {', '.join(sorted(_MATCH_KEYS))}")
    sev = raw.get("severity_at_least", "info")
    if sev not in SEVERITY_RANK:
        err("match", "OVR510", f"severity_at_least must be one of {', '.join(SEVERITY_RANK)}, not {sev!r}")
        sev = "info"

    def strings(key: str) -> tuple[str, ...]:
        value = raw.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            err("match", "OVR510", f"match.{key} must be a list of strings")
            return ()
        return tuple(value)

    kinds = strings("kinds")
    for k in kinds:
        if k not in ("rule", "detector", "monitor_health"):
            err("match", "OVR510", f"match.kinds: unknown kind {k!r} (rule, detector, monitor_health)")
    score = raw.get("min_score")
    if score is not None and not isinstance(score, int | float):
        err("match", "OVR510", "match.min_score must be a number")
        score = None
    return Match(min_severity=SEVERITY_RANK[sev], tag_patterns=strings("tags_any"),
                 rule_ids=frozenset(strings("rule_ids")), kinds=frozenset(kinds),
                 min_score=float(score) if score is not None else None)
