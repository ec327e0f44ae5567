"""``/api/v1/killswitch``: the board (what is contained, by whom, until when) and release.

A release is a signed command on the compacted kill-switch topic, built by
`streams.killswitch.commands.build_release`; the worker's mirror records it
in ``killswitch_commands`` and ``operator_actions`` like any operator
command. Releasing the whole fleet needs two distinct operators: the first
request is held as a *release request* (audited, expires after
``REQUEST_TTL``) until a second, different operator approves it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from schemas.detections import Scope
from schemas.ids import stable_id
from schemas.killswitch import KillSwitchCommand
from streams.api.auth import Identity, require
from streams.api.base import body, fail, ok
from streams.api.models import Approve, Release
from streams.killswitch.commands import OperatorError, build_release

REQUEST_TTL_S = 900.0


@dataclass
class ReleaseRequest:
    request_id: str
    scope: Scope
    mode: str
    reason: str
    requested_by: str
    requested_at: float
    approvals: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "scope": str(self.scope), "mode": self.mode, "reason": self.reason,
                "requested_by": self.requested_by,
                "requested_at": datetime.fromtimestamp(self.requested_at, UTC).isoformat(),
                "expires_at": datetime.fromtimestamp(self.requested_at + REQUEST_TTL_S, UTC).isoformat()}


def parse_scope(text: str) -> Scope:
    kind, _, value = text.partition("=")
    if kind == "fleet":
        return Scope(kind="fleet", value=value or "all")
    if not value:
        raise ValueError(f"scope {text!r}: expected KIND=VALUE (deployment=dep-1, model=m, tenant=t, ...) or fleet")
    return Scope(kind=kind, value=value)


def effect_dict(e: Any, now: float) -> dict[str, Any]:
    cmd: KillSwitchCommand = e.command
    return {"slot": e.slot, "scope": f"{e.scope_kind}={e.scope_value}", "scope_kind": e.scope_kind,
            "scope_value": e.scope_value, "action": e.action, "mode": e.mode, "issuer": e.issuer,
            "operators": list(cmd.operators), "reason": e.reason, "command_id": e.command_id,
            "issued_at": datetime.fromtimestamp(e.issued_at, UTC).isoformat(),
            "lease_expires_at": datetime.fromtimestamp(e.expires_at, UTC).isoformat(),
            "remaining_s": round(e.expires_at - now, 1), "throttle_rate": e.throttle_rate,
            "revoked_tools": sorted(e.revoked_tools), "detection_ids": list(cmd.evidence.detection_ids[:50]),
            "rule_ids": list(cmd.evidence.rule_ids)}


def handlers(runtime: Any) -> dict[str, Any]:
    pending: dict[str, ReleaseRequest] = {}

    def _prune(now: float) -> None:
        for rid in [r for r, req in pending.items() if now - req.requested_at > REQUEST_TTL_S]:
            del pending[rid]

    async def board(request: web.Request) -> web.Response:
        require(request, "viewer")
        rt = runtime()
        now = time.time()
        _prune(now)
        return ok({"active": [effect_dict(e, now) for e in rt.active.active(now)],
                   "release_requests": [r.as_dict() for r in pending.values()]})

    async def _publish(rt: Any, scope: Scope, mode: str, operators: list[str], reason: str) -> KillSwitchCommand:
        now = datetime.now(UTC)
        slot = str(scope) if mode == "enforce" else f"shadow:{scope}"
        effect = rt.active.get(slot, now.timestamp())
        cmd = build_release(scope, operators, reason, rt.signer, now,
                            active=effect.command if effect is not None else None, mode=mode)
        await rt.publish(rt.topics["killswitch"], [(cmd.kafka_key(), cmd.model_dump_json().encode())])
        return cmd

    async def release(request: web.Request) -> web.Response:
        who: Identity = require(request, "oncall")
        form = await body(request, Release)
        rt = runtime()
        try:
            scope = parse_scope(form.scope)
        except (ValueError, ValidationError) as exc:
            return fail(422, str(exc).splitlines()[0])
        now = time.time()
        slot = str(scope) if form.mode == "enforce" else f"shadow:{scope}"
        if rt.active.get(slot, now) is None:
            return fail(409, f"nothing is active on {slot}; see GET /api/v1/killswitch")
        if scope.kind == "fleet":
            req = ReleaseRequest(stable_id("release-request", str(scope), who.name, repr(now)), scope, form.mode,
                                 form.reason, who.name, now)
            pending[req.request_id] = req
            await rt.oncall.audit(req.request_id, who.name, who.role, "killswitch.release_requested", slot,
                                  form.reason, {"scope": str(scope), "mode": form.mode, "needs": "second operator"})
            return ok({"status": "pending_second_operator", "request": req.as_dict()}, status=202)
        try:
            cmd = await _publish(rt, scope, form.mode, [who.name], form.reason)
        except OperatorError as exc:
            return fail(422, str(exc))
        return ok({"status": "released", "command_id": cmd.command_id, "scope": str(scope)})

    async def approve(request: web.Request) -> web.Response:
        who = require(request, "oncall")
        form = await body(request, Approve)
        rt = runtime()
        _prune(time.time())
        req = pending.get(request.match_info["request_id"])
        if req is None:
            return fail(404, "no such release request (or it expired after 15 minutes)")
        if who.name == req.requested_by:
            return fail(403, "a fleet-scope release needs a second, different operator")
        reason = req.reason + (f" (approved: {form.reason})" if form.reason else "")
        cmd = await _publish(rt, req.scope, req.mode, [req.requested_by, who.name], reason)
        del pending[req.request_id]
        return ok({"status": "released", "command_id": cmd.command_id, "scope": str(req.scope),
                   "operators": [req.requested_by, who.name]})

    return {"board": board, "release": release, "approve": approve}
