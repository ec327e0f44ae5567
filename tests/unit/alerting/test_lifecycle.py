"""firing → acknowledged → resolved, auto-resolve after quiet, and hysteresis against flapping."""

from __future__ import annotations

from datetime import timedelta

import pytest

from streams.alerting.book import AlertBook, Lifecycle, TransitionError
from tests.unit.alerting.conftest import T0, det

LC = Lifecycle(resolve_after_s=60, keep_firing_for_s=30)


def test_ack_then_manual_resolve_records_who_and_when() -> None:
    book = AlertBook({}, lifecycle=LC)
    a = book.on_detection(det(1), T0)
    assert a is not None and a.state == "firing"
    acked = book.acknowledge(a.group_key, "alice", T0 + timedelta(seconds=5))
    assert (acked.state, acked.acknowledged_by, acked.actor) == ("acknowledged", "alice", "alice")
    more = book.on_detection(det(2), T0 + timedelta(seconds=6))
    assert more is not None and more.state == "acknowledged" and more.count == 2  # folded, still acked
    done = book.resolve(a.group_key, "bob", T0 + timedelta(seconds=7))
    assert (done.state, done.resolution, done.actor) == ("resolved", "manual", "bob")
    with pytest.raises(TransitionError):
        book.acknowledge(a.group_key, "alice", T0 + timedelta(seconds=8))
    fresh = book.on_detection(det(3), T0 + timedelta(seconds=9))
    assert fresh is not None and fresh.alert_id != a.alert_id and fresh.state == "firing"


def test_escalation_to_critical_refires_an_acknowledged_alert() -> None:
    book = AlertBook({}, lifecycle=LC)
    a = book.on_detection(det(1), T0)
    assert a is not None
    book.acknowledge(a.group_key, "alice", T0)
    b = book.on_detection(det(2, severity="critical"), T0)
    assert b is not None and b.state == "firing" and b.safety_class
    assert book.transitions["refired"] == 1


def test_quiet_group_clears_then_resolves_automatically() -> None:
    book = AlertBook({}, lifecycle=LC)
    a = book.on_detection(det(1), T0)
    assert a is not None
    assert book.sweep(T0 + timedelta(seconds=59)) == []
    clearing = book.sweep(T0 + timedelta(seconds=60))
    assert [x.clearing_since for x in clearing] == [T0 + timedelta(seconds=60)]
    assert clearing[0].state == "firing"
    assert book.sweep(T0 + timedelta(seconds=89)) == []
    resolved = book.sweep(T0 + timedelta(seconds=90))
    assert [(x.state, x.resolution, x.actor) for x in resolved] == [("resolved", "auto", None)]
    assert book.transitions["resolved_auto"] == 1 and book.open_alerts() == []


def test_a_detection_while_clearing_keeps_the_alert_firing_and_counts_a_flap() -> None:
    book = AlertBook({}, lifecycle=LC)
    a = book.on_detection(det(1), T0)
    assert a is not None
    book.sweep(T0 + timedelta(seconds=60))
    back = book.on_detection(det(2), T0 + timedelta(seconds=70))
    assert back is not None and back.alert_id == a.alert_id and back.clearing_since is None and back.flaps == 1
    assert book.sweep(T0 + timedelta(seconds=95)) == []  # the quiet period starts over
    assert book.transitions["flaps_held"] == 1


def test_sweep_only_touches_groups_of_its_partition() -> None:
    book = AlertBook({}, lifecycle=LC)
    book.on_detection(det(1, dep="a"), T0, partition=0)
    book.on_detection(det(2, dep="b"), T0, partition=1)
    swept = book.sweep(T0 + timedelta(seconds=61), partition=1)
    assert [x.scope.value for x in swept] == ["b"]


def test_lifecycle_state_survives_a_new_book_over_the_same_table() -> None:
    table: dict = {}
    a = AlertBook(table, lifecycle=LC).on_detection(det(1), T0)
    assert a is not None
    AlertBook(table, lifecycle=LC).acknowledge(a.group_key, "alice", T0)
    again = AlertBook(table, lifecycle=LC).get(a.group_key)
    assert again is not None and again.state == "acknowledged" and again.acknowledged_by == "alice"
