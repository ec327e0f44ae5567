"""Turning policy decisions and operator requests into signed commands, and commands into audit rows.

Command ids are derived from the idempotency key, so the same breach
replayed builds the byte-identical command (same id, same slot) and the
active set treats it as a duplicate. Manual operations carry the operators
who asked for them; every such command becomes one ``operator_actions`` row
when the worker records it (the worker is the only ClickHouse writer; the
CLI only publishes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from rules.policy import Decision
from schemas.detections import Scope, SourceOffset
from schemas.ids import stable_id
from schemas.killswitch import KillSwitchAction, KillSwitchCommand, KillSwitchEvidence, canonical_ts
from streams.killswitch.signing import Signer


class OperatorError(ValueError):
    """A manual operation is missing its operator, its reason, or its second operator."""


def build_command(decision: Decision, signer: Signer, now: datetime, issuer: str) -> KillSwitchCommand:
    """The signed command for a policy decision with ``outcome == "command"``.

    ``issued_at`` is ``now``; replays of the same breach keep the same
    ``command_id``, so downstream deduplication is by id.
    """
    if decision.outcome != "command":
        raise ValueError(f"decision {decision.idempotency_key} is {decision.outcome!r}, not a command")
    evidence = KillSwitchEvidence(
        detection_ids=decision.detection_ids[:1000], event_ids=decision.event_ids[:1000],
        rule_ids=decision.rule_ids, rule_versions=decision.rule_versions,
        policy_id=decision.policy_id, policy_version=decision.policy_version,
        offsets=[SourceOffset(**o) for o in decision.offsets])
    cmd = KillSwitchCommand(
        command_id=stable_id("command", decision.idempotency_key), idempotency_key=decision.idempotency_key,
        op="issue", scope=Scope(kind=decision.scope_kind, value=decision.scope_value),
        action=KillSwitchAction(decision.action), throttle_rate=decision.throttle_rate,
        revoked_tools=list(decision.revoked_tools), reason=decision.reason, evidence=evidence,
        issued_at=now, lease_expires_at=now + timedelta(seconds=decision.lease_s), mode=decision.mode,
        issuer=issuer, key_id=signer.key_id)
    return signer.sign(cmd)


def _operators(operators: Sequence[str], reason: str) -> list[str]:
    ops = [o.strip() for o in operators if o and o.strip()]
    if not ops:
        raise OperatorError("an operator identity is required (--operator NAME)")
    if not reason or not reason.strip():
        raise OperatorError("a reason is required (--reason TEXT): it goes into the audit log")
    return list(dict.fromkeys(ops))


def _manual_key(op: str, scope: Scope, operators: list[str], reason: str, now: datetime) -> str:
    return stable_id("manual", op, scope.kind, scope.value, ",".join(operators), reason, canonical_ts(now))


def build_manual_issue(scope: Scope, action: KillSwitchAction | str, operators: Sequence[str], reason: str,
                       signer: Signer, now: datetime, lease_s: float, mode: str = "enforce",
                       throttle_rate: float | None = None, revoked_tools: Sequence[str] = ()) -> KillSwitchCommand:
    """An operator contains a scope by hand (``overseer killswitch issue``)."""
    ops = _operators(operators, reason)
    action = KillSwitchAction(action)
    if action == KillSwitchAction.throttle and not throttle_rate:
        raise OperatorError("action throttle needs a rate (--rate REQUESTS_PER_S)")
    if action == KillSwitchAction.revoke_tools and not revoked_tools:
        raise OperatorError("action revoke_tools needs at least one tool (--tool NAME)")
    key = _manual_key("issue", scope, ops, reason, now)
    cmd = KillSwitchCommand(
        command_id=stable_id("command", key), idempotency_key=key, op="issue", scope=scope, action=action,
        throttle_rate=throttle_rate if action == KillSwitchAction.throttle else None,
        revoked_tools=list(revoked_tools) if action == KillSwitchAction.revoke_tools else [],
        reason=reason, issued_at=now, lease_expires_at=now + timedelta(seconds=lease_s), mode=mode,
        issuer=f"operator:{ops[0]}", operators=ops, key_id=signer.key_id)
    return signer.sign(cmd)


def build_release(scope: Scope, operators: Sequence[str], reason: str, signer: Signer, now: datetime,
                  active: KillSwitchCommand | None = None, mode: str = "enforce") -> KillSwitchCommand:
    """Lift the containment on ``scope``. Fleet scope needs two distinct operators."""
    ops = _operators(operators, reason)
    if scope.kind == "fleet" and len(ops) < 2:
        raise OperatorError("releasing a fleet-scope command needs two distinct operators "
                            "(--operator A --second-operator B)")
    key = _manual_key("release", scope, ops, reason, now)
    evidence = active.evidence if active is not None else KillSwitchEvidence()
    cmd = KillSwitchCommand(
        command_id=stable_id("command", key), idempotency_key=key, op="release", scope=scope,
        action=active.action if active is not None else KillSwitchAction.flag,
        reason=reason, evidence=evidence, issued_at=now, lease_expires_at=now,
        mode=active.mode if active is not None else mode, issuer=f"operator:{ops[0]}", operators=ops,
        key_id=signer.key_id)
    return signer.sign(cmd)


def build_extend(active: KillSwitchCommand, lease_s: float, operators: Sequence[str], reason: str,
                 signer: Signer, now: datetime) -> KillSwitchCommand:
    """A new lease on an active command: the same action and evidence, a new expiry."""
    ops = _operators(operators, reason)
    key = _manual_key("extend", active.scope, ops, reason, now)
    cmd = active.model_copy(update={
        "command_id": stable_id("command", key), "idempotency_key": key, "op": "extend",
        "reason": f"{reason} (extends {active.command_id}: {active.reason})", "issued_at": now,
        "lease_expires_at": now + timedelta(seconds=lease_s), "issuer": f"operator:{ops[0]}",
        "operators": ops, "signature": None})
    return signer.sign(KillSwitchCommand.model_validate(cmd.model_dump()))


def command_row(cmd: KillSwitchCommand) -> dict[str, Any]:
    """One row of the ClickHouse table ``killswitch_commands``."""
    return {
        "command_id": cmd.command_id, "idempotency_key": cmd.idempotency_key, "op": cmd.op,
        "scope_kind": str(cmd.scope.kind), "scope_value": cmd.scope.value, "action": str(cmd.action),
        "throttle_rate": cmd.throttle_rate, "revoked_tools": list(cmd.revoked_tools), "reason": cmd.reason,
        "evidence": cmd.evidence.model_dump_json(), "issued_at": cmd.issued_at,
        "lease_expires_at": cmd.lease_expires_at, "mode": cmd.mode, "issuer": cmd.issuer,
        "operators": list(cmd.operators), "key_id": cmd.key_id, "signature": cmd.signature or "",
        "payload": cmd.model_dump_json(),
    }


def operator_action_row(cmd: KillSwitchCommand) -> dict[str, Any] | None:
    """One row of ``operator_actions`` for a command a human asked for; None for policy commands."""
    if not cmd.operators:
        return None
    details = {"command_id": cmd.command_id, "op": cmd.op, "action": str(cmd.action), "mode": cmd.mode,
               "operators": cmd.operators, "lease_expires_at": canonical_ts(cmd.lease_expires_at),
               "key_id": cmd.key_id}
    return {
        "action_id": cmd.command_id, "ts": cmd.issued_at, "operator": cmd.operators[0],
        "role": "two_person" if len(cmd.operators) > 1 else "operator", "action": f"killswitch.{cmd.op}",
        "target": cmd.slot(), "reason": cmd.reason, "details": orjson.dumps(details).decode(),
    }
