"""Building signed commands from decisions and operator requests; audit rows."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from rules.policy import Decision
from schemas.detections import Scope
from streams.killswitch.commands import (
    OperatorError,
    build_command,
    build_extend,
    build_manual_issue,
    build_release,
    command_row,
    operator_action_row,
)
from streams.killswitch.signing import KeyRing, Signer
from tests.unit.killswitch.builders import T0

DDL = Path(__file__).resolve().parents[3] / "schemas" / "migrations" / "0001_core_tables.sql"
DEP = Scope(kind="deployment", value="dep-1")


def decision(**kw: object) -> Decision:
    base: dict[str, object] = dict(
        policy_id="p", policy_version="3", outcome="command", scope_kind="deployment", scope_value="dep-1",
        action="pause", mode="enforce", reason="3 detections", lease_s=600.0, idempotency_key="k1",
        detection_ids=["d1"], event_ids=["e1"], rule_ids=["r"], rule_versions={"r": "2"},
        offsets=[{"topic": "overseer.events.v1", "partition": 1, "offset": 9}])
    base.update(kw)
    return Decision(**base)  # type: ignore[arg-type]


def columns(table: str) -> set[str]:
    body = re.search(rf"CREATE TABLE IF NOT EXISTS {table}\s*\((.*?)\n\)", DDL.read_text(), re.S)
    assert body is not None
    return {line.split()[0] for line in body.group(1).splitlines() if line.strip()}


def test_build_command_is_deterministic_signed_and_carries_evidence(signer: Signer) -> None:
    a = build_command(decision(), signer, T0, "worker-1")
    b = build_command(decision(), signer, T0 + timedelta(seconds=3), "worker-2")
    assert a.command_id == b.command_id and a.idempotency_key == "k1"
    assert a.lease_expires_at == T0 + timedelta(minutes=10)
    assert a.evidence.policy_version == "3" and a.evidence.offsets[0].offset == 9
    assert KeyRing({"key-1": signer.public_key}).verify(a).ok
    with pytest.raises(ValueError, match="needs_confirmation"):
        build_command(decision(outcome="needs_confirmation"), signer, T0, "w")


def test_manual_ops_need_operator_and_reason(signer: Signer) -> None:
    with pytest.raises(OperatorError, match="operator"):
        build_manual_issue(DEP, "pause", [""], "why", signer, T0, 60)
    with pytest.raises(OperatorError, match="reason"):
        build_release(DEP, ["alice"], "  ", signer, T0)
    with pytest.raises(OperatorError, match="rate"):
        build_manual_issue(DEP, "throttle", ["alice"], "why", signer, T0, 60)


def test_fleet_release_needs_two_distinct_operators(signer: Signer) -> None:
    fleet = Scope(kind="fleet", value="all")
    with pytest.raises(OperatorError, match="two distinct operators"):
        build_release(fleet, ["alice", "alice"], "all clear", signer, T0)
    ok = build_release(fleet, ["alice", "bob"], "all clear", signer, T0)
    assert ok.op == "release" and ok.operators == ["alice", "bob"]


def test_extend_keeps_the_action_and_moves_the_lease(signer: Signer) -> None:
    issue = build_manual_issue(DEP, "revoke_tools", ["alice"], "odd egress", signer, T0, 600, revoked_tools=["bash"])
    ext = build_extend(issue, 7200, ["bob"], "still investigating", signer, T0 + timedelta(minutes=5))
    assert (ext.op, ext.action, ext.revoked_tools, ext.slot()) == ("extend", "revoke_tools", ["bash"], issue.slot())
    assert ext.lease_expires_at == T0 + timedelta(minutes=5, hours=2) and ext.command_id != issue.command_id
    assert KeyRing({"key-1": signer.public_key}).verify(ext).ok


def test_rows_match_the_clickhouse_tables(signer: Signer) -> None:
    policy_cmd = build_command(decision(), signer, T0, "worker-1")
    row = command_row(policy_cmd)
    assert set(row) == columns("killswitch_commands")
    assert orjson.loads(row["payload"])["signature"] == policy_cmd.signature
    assert operator_action_row(policy_cmd) is None
    manual = build_release(DEP, ["alice", "bob"], "false positive", signer, T0, active=policy_cmd)
    op_row = operator_action_row(manual)
    assert op_row is not None and set(op_row) == columns("operator_actions")
    assert (op_row["operator"], op_row["role"], op_row["action"], op_row["target"]) == \
        ("alice", "two_person", "killswitch.release", "deployment=dep-1")
    assert orjson.loads(op_row["details"])["operators"] == ["alice", "bob"]
