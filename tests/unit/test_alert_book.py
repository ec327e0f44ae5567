"""Detections fold into one alert per (rule, scope); nothing is dropped, shadow never pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.detections import Detection, Scope
from streams.alerting.book import AlertBook

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def det(i: int, *, rule: str = "r1", severity: str = "high", mode: str = "enforce", dep: str = "dep-1",
        tags: list[str] | None = None) -> Detection:
    return Detection(detection_id=f"d{i}", kind="rule", rule_id=rule, title="T", severity=severity,
                     tags=tags or [], mode=mode, scope=Scope(kind="deployment", value=dep),
                     ts=T0 + timedelta(seconds=i), detected_at=T0, output=f"hit {i}")


def test_repeats_fold_into_one_alert_and_are_counted() -> None:
    book = AlertBook({})
    first = book.on_detection(det(1))
    second = book.on_detection(det(2, severity="critical"))
    assert first is not None and second is not None
    assert first.alert_id == second.alert_id
    assert second.count == 2 and second.detection_ids == ["d1", "d2"]
    assert second.severity == "critical" and second.last_seen == T0 + timedelta(seconds=2)
    assert book.on_detection(det(2)) is None  # a replayed detection is not counted twice
    other = book.on_detection(det(3, dep="dep-2"))
    assert other is not None and other.alert_id != first.alert_id
    assert book.stats == {"opened": 2, "folded": 1, "shadow_skipped": 0, "below_min_severity": 0}


def test_shadow_detections_never_open_alerts_but_are_counted() -> None:
    book = AlertBook({})
    assert book.on_detection(det(1, mode="shadow")) is None
    assert book.stats["shadow_skipped"] == 1 and book.state == {}


def test_safety_class_is_critical_or_frontier() -> None:
    book = AlertBook({})
    a = book.on_detection(det(1, tags=["frontier.self_exfiltration"], severity="medium"))
    b = book.on_detection(det(2, rule="r2", severity="critical"))
    c = book.on_detection(det(3, rule="r3", severity="high", tags=["agent.destructive"]))
    assert a and a.safety_class and b and b.safety_class and c and not c.safety_class


def test_state_survives_a_new_book_over_the_same_table() -> None:
    table: dict = {}
    AlertBook(table).on_detection(det(1))
    again = AlertBook(table).on_detection(det(2))
    assert again is not None and again.count == 2
