"""Enforcer semantics without a broker: check(), rejections, the dead-man's switch."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.killswitch import Heartbeat
from streams.enforcer import Checker, Enforcer
from streams.killswitch.signing import KeyRing, Signer
from tests.unit.killswitch.builders import T0, make_command

NOW = T0.timestamp() + 1


def checker(*cmds: object, fail_closed: str = "no_new_runs") -> Checker:
    c = Checker(max_heartbeat_age_s=30, fail_closed_action=fail_closed, started_at=T0.timestamp())  # type: ignore[arg-type]
    c.heartbeat(T0.timestamp())
    for cmd in cmds:
        assert c.active.apply(cmd, T0.timestamp()) == "applied"  # type: ignore[arg-type]
    return c


def test_nothing_active_is_allowed() -> None:
    d = checker().check(model="m", deployment="dep-1", tool="bash", new_run=True, now=NOW)
    assert d.allowed and d.action is None and d.reasons == ()


@pytest.mark.parametrize("action", ["pause", "terminate"])
def test_pause_and_terminate_deny_only_their_scope(action: str) -> None:
    c = checker(make_command("model=m1", action, reason="weights exfiltration"))
    d = c.check(model="m1", deployment="dep-9", now=NOW)
    assert not d.allowed and d.action == action and d.command_ids == ("c1",)
    assert "weights exfiltration" in d.reasons[0] and "model=m1" in d.reasons[0]
    assert c.check(model="m2", deployment="dep-9", now=NOW).allowed


def test_revoke_tools_denies_only_listed_tools() -> None:
    c = checker(make_command(action="revoke_tools", revoked_tools=["bash", "http_post"]))
    assert not c.check(deployment="dep-1", tool="bash", now=NOW).allowed
    ok = c.check(deployment="dep-1", tool="read_file", now=NOW)
    assert ok.allowed and ok.action == "revoke_tools" and ok.revoked_tools == {"bash", "http_post"}
    assert c.check(deployment="dep-1", now=NOW).allowed


def test_throttle_allows_with_the_lowest_rate_and_flag_only_reports() -> None:
    c = checker(make_command("tenant=t1", "throttle", command_id="a", throttle_rate=5.0),
                make_command("deployment=dep-1", "throttle", command_id="b", throttle_rate=2.0),
                make_command("agent_run=r1", "flag", command_id="c"))
    d = c.check(tenant="t1", deployment="dep-1", agent_run="r1", now=NOW)
    assert d.allowed and d.throttle_rate == 2.0 and d.action == "throttle"
    assert set(d.command_ids) == {"a", "b", "c"} and any(r.startswith("flag agent_run=r1") for r in d.reasons)


def test_shadow_never_denies_but_is_reported() -> None:
    c = checker(make_command(action="terminate", mode="shadow"))
    d = c.check(deployment="dep-1", now=NOW)
    assert d.allowed and d.action is None and d.reasons[0].startswith("shadow: would terminate deployment=dep-1")


def test_fleet_and_session_scopes() -> None:
    c = checker(make_command("fleet=all", "pause", command_id="f"))
    assert not c.check(now=NOW).allowed and not c.check(session="s1", now=NOW).allowed
    s = checker(make_command("session=s1", "pause"))
    assert not s.check(session="s1", now=NOW).allowed and s.check(session="s2", now=NOW).allowed


def test_expired_lease_allows_again() -> None:
    c = checker(make_command(lease=timedelta(minutes=1)))
    assert not c.check(deployment="dep-1", now=T0.timestamp() + 59).allowed
    c.heartbeat(T0.timestamp() + 60)
    d = c.check(deployment="dep-1", new_run=True, now=T0.timestamp() + 61)
    assert d.allowed and d.command_ids == () and d.reasons == ()


@pytest.mark.parametrize(("mode", "new_run_allowed", "request_allowed"),
                         [("no_new_runs", False, True), ("pause_all", False, False), ("allow", True, True)])
def test_dead_mans_switch(mode: str, new_run_allowed: bool, request_allowed: bool) -> None:
    c = checker(fail_closed=mode)
    late = T0.timestamp() + 31
    new_run = c.check(deployment="dep-1", new_run=True, now=late)
    ongoing = c.check(deployment="dep-1", now=late)
    assert (new_run.allowed, ongoing.allowed) == (new_run_allowed, request_allowed)
    assert new_run.fail_closed and "no verified monitor heartbeat for 31s (max 30s)" in new_run.reasons[-1]
    assert mode in new_run.reasons[-1]
    c.heartbeat(late)
    assert c.check(deployment="dep-1", new_run=True, now=late).allowed


def test_unknown_fail_closed_action_is_refused() -> None:
    with pytest.raises(ValueError, match="fail_closed_action"):
        Checker(fail_closed_action="shrug")  # type: ignore[arg-type]


def test_enforcer_rejects_and_counts_bad_commands(signer: Signer) -> None:
    clock = [T0.timestamp()]
    enf = Enforcer("127.0.0.1:1", KeyRing({"key-1": signer.public_key}), clock=lambda: clock[0])
    good = signer.sign(make_command())
    forged = Signer(Ed25519PrivateKey.generate(), "key-1").sign(make_command(command_id="f", action="terminate"))
    altered = good.model_copy(update={"scope": make_command("deployment=dep-2").scope})
    unknown = Signer(Ed25519PrivateKey.generate(), "key-x").sign(make_command(command_id="u"))
    expired = signer.sign(make_command(command_id="e", issued_at=T0 - timedelta(hours=2)))
    for cmd in (forged, altered, unknown, expired):
        enf.apply_message(cmd.model_dump_json().encode())
    enf.apply_message(b"garbage")
    assert enf.apply_message(good.model_dump_json().encode()) == "accepted"
    assert enf.apply_message(good.model_dump_json().encode()) == "duplicate"
    assert {k: v for k, v in enf.stats.items() if v} == {
        "received": 7, "accepted": 1, "duplicate": 1, "rejected_bad_signature": 2, "rejected_unknown_key": 1,
        "rejected_malformed": 1, "rejected_expired": 1}
    enf.apply_heartbeat(signer.sign_heartbeat(Heartbeat(monitor_id="m", seq=0, ts=T0, key_id="")).model_dump_json().encode())
    assert not enf.check(deployment="dep-1").allowed and enf.check(deployment="dep-2").allowed


def test_heartbeats_are_verified_and_future_stamps_do_not_extend_life(signer: Signer) -> None:
    clock = [T0.timestamp()]
    enf = Enforcer("127.0.0.1:1", KeyRing({"key-1": signer.public_key}), max_heartbeat_age_s=30,
                   clock=lambda: clock[0])
    future = signer.sign_heartbeat(Heartbeat(monitor_id="m", seq=0, ts=T0 + timedelta(hours=1), key_id=""))
    forged = Signer(Ed25519PrivateKey.generate(), "key-1").sign_heartbeat(
        Heartbeat(monitor_id="m", seq=1, ts=T0 + timedelta(minutes=5), key_id=""))
    assert enf.apply_heartbeat(future.model_dump_json().encode())
    assert not enf.apply_heartbeat(forged.model_dump_json().encode())
    clock[0] += 31
    assert not enf.check(new_run=True).allowed
    assert enf.stats["heartbeats"] == 1 and enf.stats["heartbeats_rejected"] == 1


def test_the_enforcer_never_imports_faust() -> None:
    code = "import sys, streams.enforcer; sys.exit(1 if 'faust' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
