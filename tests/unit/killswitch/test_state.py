"""ActiveSet: ordering, duplicates, releases, leases, shadow slots."""

from __future__ import annotations

from datetime import timedelta

from streams.killswitch.state import ActiveSet
from tests.unit.killswitch.builders import T0, make_command

NOW = T0.timestamp()


def test_latest_command_per_slot_wins_and_duplicates_are_ignored() -> None:
    s = ActiveSet()
    assert s.apply(make_command(action="flag", command_id="a"), NOW) == "applied"
    assert s.apply(make_command(action="pause", command_id="b", issued_at=T0 + timedelta(seconds=5)), NOW) == "applied"
    assert s.apply(make_command(action="pause", command_id="b", issued_at=T0 + timedelta(seconds=5)), NOW) == "duplicate"
    assert [e.action for e in s.active(NOW)] == ["pause"] and len(s) == 1


def test_topic_order_decides_not_issued_at() -> None:
    # a command stamped earlier (a skewed clock) but written later is what compaction keeps: it wins
    s = ActiveSet()
    s.apply(make_command(command_id="new", issued_at=T0 + timedelta(minutes=1)), NOW)
    assert s.apply(make_command(command_id="old", action="flag"), NOW) == "applied"
    assert s.get("deployment=dep-1", NOW).command_id == "old"


def test_release_lifts_and_the_issuer_can_tell_a_replay() -> None:
    s = ActiveSet()
    issue = make_command(command_id="i")
    s.apply(issue, NOW)
    release = make_command(command_id="r", op="release", issued_at=T0 - timedelta(minutes=1), lease=timedelta(0))
    assert s.apply(release, NOW) == "released"  # even from an operator whose clock is behind
    assert s.apply(release, NOW) == "duplicate"
    assert s.lookup("deployment", "dep-1", NOW) == ()
    assert s.seen_key(issue.idempotency_key) and not s.seen_key("never-issued")
    assert s.stats == {"applied": 1, "released": 1, "duplicate": 1, "expired": 0}


def test_an_expired_message_empties_its_slot_like_compaction_would() -> None:
    s = ActiveSet()
    s.apply(make_command(command_id="a"), NOW)
    assert s.apply(make_command(command_id="b", issued_at=T0 - timedelta(hours=3)), NOW) == "expired"
    assert s.lookup("deployment", "dep-1", NOW) == () and len(s) == 0


def test_leases_expire_without_a_message() -> None:
    s = ActiveSet()
    s.apply(make_command(lease=timedelta(minutes=10)), NOW)
    assert len(s.lookup("deployment", "dep-1", NOW + 599)) == 1
    assert s.lookup("deployment", "dep-1", NOW + 600) == ()
    assert [e.command_id for e in s.expire(NOW + 600)] == ["c1"] and s.index == {"deployment": {}}
    assert s.apply(make_command(command_id="late"), NOW + 7200) == "expired"


def test_extend_replaces_the_lease_of_its_slot() -> None:
    s = ActiveSet()
    s.apply(make_command(lease=timedelta(minutes=10)), NOW)
    s.apply(make_command(command_id="x", op="extend", issued_at=T0 + timedelta(minutes=5),
                         lease=timedelta(hours=2)), NOW)
    assert s.get("deployment=dep-1", NOW + 3600).command_id == "x"


def test_shadow_and_enforce_have_separate_slots_and_fleet_matches_everything() -> None:
    s = ActiveSet()
    s.apply(make_command(command_id="e", action="flag"), NOW)
    s.apply(make_command(command_id="s", action="terminate", mode="shadow"), NOW)
    assert sorted(e.slot for e in s.lookup("deployment", "dep-1", NOW)) == ["deployment=dep-1", "shadow:deployment=dep-1"]
    s.apply(make_command("fleet=all", command_id="f", action="pause"), NOW)
    assert [e.command_id for e in s.lookup("fleet", "anything", NOW)] == ["f"]


def test_would_downgrade_protects_a_stronger_command() -> None:
    s = ActiveSet()
    s.apply(make_command(action="pause"), NOW)
    assert s.would_downgrade(make_command(command_id="z", action="flag"), NOW)
    assert not s.would_downgrade(make_command(command_id="z", action="terminate"), NOW)
    assert not s.would_downgrade(make_command(command_id="z", action="flag", mode="shadow"), NOW)
