"""The pure decision core of the enforcer: active set + heartbeat age -> :class:`Decision`.

No I/O: the Kafka loop (`streams.enforcer.enforcer`) feeds it verified
commands and heartbeats; gateways call :meth:`Checker.check` on every
request. The common case — nothing applies — does one dict lookup per given
scope and returns a shared constant.

>>> from datetime import datetime, timedelta, UTC
>>> from schemas.detections import Scope
>>> from schemas.killswitch import KillSwitchCommand
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> c = Checker(max_heartbeat_age_s=30, fail_closed_action="no_new_runs", started_at=t0.timestamp())
>>> c.heartbeat(t0.timestamp())
>>> _ = c.active.apply(KillSwitchCommand(command_id="c1", idempotency_key="i", key_id="k", reason="tampering",
...     issuer="policy", scope=Scope(kind="deployment", value="dep-1"), action="revoke_tools",
...     revoked_tools=["bash"], issued_at=t0, lease_expires_at=t0 + timedelta(hours=1)), t0.timestamp())
>>> now = t0.timestamp() + 1
>>> c.check(deployment="dep-1", tool="bash", now=now).allowed, c.check(deployment="dep-1", tool="ls", now=now).allowed
(False, True)
>>> c.check(deployment="dep-1", new_run=True, now=now + 60).reasons[-1][:40]
"dead-man's switch: no verified monitor h"
"""

from __future__ import annotations

import time

from streams.enforcer.decision import ALLOW, Decision, FailClosedAction
from streams.killswitch.state import FLEET, ActiveSet, Effect

_DENY_ALWAYS = frozenset({"pause", "terminate"})


class Checker:
    def __init__(self, max_heartbeat_age_s: float = 30.0, fail_closed_action: FailClosedAction = "no_new_runs",
                 started_at: float | None = None) -> None:
        if fail_closed_action not in ("no_new_runs", "pause_all", "allow"):
            raise ValueError(f"fail_closed_action must be no_new_runs, pause_all or allow, not {fail_closed_action!r}")
        self.active = ActiveSet()
        self.max_heartbeat_age_s = max_heartbeat_age_s
        self.fail_closed_action = fail_closed_action
        self.started_at = time.time() if started_at is None else started_at
        self.last_heartbeat: float | None = None

    def heartbeat(self, ts: float) -> None:
        """A verified heartbeat stamped ``ts`` (epoch seconds) arrived."""
        if self.last_heartbeat is None or ts > self.last_heartbeat:
            self.last_heartbeat = ts

    def heartbeat_age(self, now: float) -> float:
        """Seconds since the newest heartbeat (since start when none has arrived yet)."""
        return now - (self.last_heartbeat if self.last_heartbeat is not None else self.started_at)

    def check(self, model: str | None = None, deployment: str | None = None, tenant: str | None = None,
              agent_run: str | None = None, session: str | None = None, tool: str | None = None,
              new_run: bool = False, now: float | None = None) -> Decision:
        if now is None:
            now = time.time()
        index = self.active.index
        hits: list[Effect] | None = None
        if index:
            for kind, value in ((FLEET, FLEET), ("model", model), ("deployment", deployment),
                                ("tenant", tenant), ("agent_run", agent_run), ("session", session)):
                by_value = index.get(kind)
                if not by_value or value is None:
                    continue
                if kind == FLEET:
                    for effects in by_value.values():
                        hits = _collect(effects, now, hits)
                else:
                    effects = by_value.get(value)
                    if effects:
                        hits = _collect(effects, now, hits)
        stale = now - (self.last_heartbeat if self.last_heartbeat is not None else self.started_at) \
            > self.max_heartbeat_age_s
        if hits is None and not stale:
            return ALLOW
        return self._decide(hits or [], tool, new_run, stale, now)

    def _decide(self, hits: list[Effect], tool: str | None, new_run: bool, stale: bool, now: float) -> Decision:
        allowed = True
        strongest: Effect | None = None
        rate: float | None = None
        revoked: set[str] = set()
        reasons: list[str] = []
        ids: list[str] = []
        for e in sorted(hits, key=lambda e: (-e.rank, e.slot)):
            ids.append(e.command_id)
            where = f"{e.scope_kind}={e.scope_value}"
            lease = f"lease {e.expires_at - now:.0f}s left"
            if e.mode == "shadow":
                reasons.append(f"shadow: would {e.action} {where} ({e.command_id}, {lease}): {e.reason}")
                continue
            if strongest is None or e.rank > strongest.rank:
                strongest = e
            if e.action in _DENY_ALWAYS:
                allowed = False
                reasons.append(f"{e.action} {where} ({e.command_id}, {lease}): {e.reason}")
            elif e.action == "revoke_tools":
                revoked |= e.revoked_tools
                if tool is not None and tool in e.revoked_tools:
                    allowed = False
                    reasons.append(f"tool {tool!r} revoked for {where} ({e.command_id}, {lease}): {e.reason}")
                else:
                    reasons.append(f"tools revoked for {where}: {', '.join(sorted(e.revoked_tools))} "
                                   f"({e.command_id}, {lease})")
            elif e.action == "throttle":
                if e.throttle_rate is not None:
                    rate = e.throttle_rate if rate is None else min(rate, e.throttle_rate)
                reasons.append(f"throttle {where} to {e.throttle_rate}/s ({e.command_id}, {lease}): {e.reason}")
            else:
                reasons.append(f"flag {where} ({e.command_id}, {lease}): {e.reason}")
        action = strongest.action if strongest is not None else None
        if stale:
            age = self.heartbeat_age(now)
            why = (f"dead-man's switch: no verified monitor heartbeat for {age:.0f}s "
                   f"(max {self.max_heartbeat_age_s:g}s); fail-closed action {self.fail_closed_action}")
            if self.fail_closed_action == "pause_all":
                allowed, action = False, "pause"
            elif self.fail_closed_action == "no_new_runs" and new_run:
                allowed = False
                action = action or "no_new_runs"
            reasons.append(why)
        return Decision(allowed=allowed, action=action, reasons=tuple(reasons), command_ids=tuple(ids),
                        throttle_rate=rate, revoked_tools=frozenset(revoked), fail_closed=stale)


def _collect(effects: tuple[Effect, ...], now: float, hits: list[Effect] | None) -> list[Effect] | None:
    for e in effects:
        if e.expires_at > now:
            if hits is None:
                hits = [e]
            else:
                hits.append(e)
    return hits
