"""Alert records in the real embedded ClickHouse: latest state per alert, filters, rows without JSON."""

from __future__ import annotations

from datetime import timedelta

from schemas.detections import Scope
from streams.alerting.book import AlertBook
from streams.alerting.matchers import parse_matcher
from streams.alerting.silences import new_silence
from streams.alerting.store import (
    ALERT_COLUMNS,
    SILENCE_COLUMNS,
    alert_history,
    alert_rows,
    load_silences,
    query_alerts,
    silence_row,
)
from streams.store import rows
from streams.store.client import connect
from streams.store.migrate import migrate
from tests.unit.alerting.conftest import T0, det


def test_latest_record_per_alert_filters_and_rows_written_without_json(chdb_database: tuple[str, str]) -> None:
    dsn, db = chdb_database
    client = connect(dsn, database=db)
    migrate(client)
    book = AlertBook({})
    a = book.on_detection(det(1, rule="r1"), T0)
    b = book.on_detection(det(2, rule="r2", severity="critical", dep="dep-2"), T0)
    assert a and b
    acked = book.acknowledge(a.group_key, "alice", T0 + timedelta(seconds=5))
    client.insert("alerts", alert_rows([a, b]), column_names=list(ALERT_COLUMNS))
    client.insert("alerts", alert_rows([acked]), column_names=list(ALERT_COLUMNS))
    system = book.raise_system_alert(rule_id="monitor.x", title="X", severity="high", summary="s", tags=[],
                                     scope=Scope(kind="fleet", value="w"), now=T0 + timedelta(seconds=9), save=False)
    client.insert("alerts", rows.alert_rows([system]), column_names=list(rows.ALERT_COLUMNS))  # no payload

    latest = {x.alert_id: x for x in query_alerts(client)}
    assert latest[a.alert_id].state == "acknowledged" and latest[a.alert_id].acknowledged_by == "alice"
    assert latest[system.alert_id].rule_id == "monitor.x" and latest[system.alert_id].actor is None
    assert [x.alert_id for x in query_alerts(client, state=["acknowledged"])] == [a.alert_id]
    assert [x.alert_id for x in query_alerts(client, severity=["critical"])] == [b.alert_id]
    assert [x.alert_id for x in query_alerts(client, scope="deployment=dep-2")] == [b.alert_id]
    assert [x.alert_id for x in query_alerts(client, rule_id="r1")] == [a.alert_id]
    assert [h["state"] for h in alert_history(client, a.alert_id)] == ["firing", "acknowledged"]


def test_silences_round_trip_and_expiry_wins(chdb_database: tuple[str, str]) -> None:
    dsn, db = chdb_database
    client = connect(dsn, database=db)
    migrate(client)
    s = new_silence([parse_matcher("rule_id=~agent_.*")], "alice", "noisy", "alice", T0 + timedelta(hours=1), T0, [])
    client.insert("alert_silences", [silence_row(s)], column_names=list(SILENCE_COLUMNS))
    expired = s.model_copy(update={"expired_by": "bob", "ends_at": T0 + timedelta(minutes=1),
                                   "updated_at": T0 + timedelta(minutes=1)})
    client.insert("alert_silences", [silence_row(expired)], column_names=list(SILENCE_COLUMNS))
    [loaded] = load_silences(client)
    assert loaded == expired and loaded.matchers == s.matchers
