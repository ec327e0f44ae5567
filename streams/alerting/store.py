"""ClickHouse rows and reads for alerts, silences, deliveries and operator actions.

Functions here take a clickhouse-connect client and run on the sink's
thread (``sink.run(lambda c: ...)``); nothing here is async.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.alerts import Alert
from streams.alerting.silences import Silence
from streams.store import rows

ALERT_COLUMNS = (*rows.ALERT_COLUMNS, "payload")
SILENCE_COLUMNS = ("silence_id", "matchers", "owner", "reason", "created_by", "starts_at", "ends_at", "expired_by",
                   "updated_at")
ACTION_COLUMNS = ("action_id", "ts", "operator", "role", "action", "target", "reason", "details")


def alert_rows(alerts: list[Alert]) -> list[list[Any]]:
    """The audit columns of `streams.store.rows` plus the whole alert as JSON."""
    return [[*row, a.model_dump_json()] for row, a in zip(rows.alert_rows(alerts), alerts, strict=True)]


def silence_row(s: Silence) -> list[Any]:
    return [s.silence_id, orjson.dumps([m.model_dump() for m in s.matchers]).decode(), s.owner, s.reason,
            s.created_by, s.starts_at, s.ends_at, s.expired_by, s.updated_at]


def load_silences(client: Any) -> list[Silence]:
    result = client.query(f"SELECT {', '.join(SILENCE_COLUMNS)} FROM alert_silences FINAL")
    out = []
    for r in result.result_rows:
        d = dict(zip(SILENCE_COLUMNS, r, strict=True))
        d["matchers"] = orjson.loads(d["matchers"])
        for k in ("starts_at", "ends_at", "updated_at"):
            d[k] = d[k].replace(tzinfo=UTC) if d[k].tzinfo is None else d[k]
        out.append(Silence.model_validate(d))
    return out


def action_row(action_id: str, operator: str, role: str, action: str, target: str, reason: str,
               details: dict[str, Any], now: datetime | None = None) -> list[Any]:
    return [action_id, now or datetime.now(UTC), operator, role, action, target, reason,
            orjson.dumps(details, default=str).decode()]


_COLS = ", ".join(rows.ALERT_COLUMNS)
LATEST_ALERTS = f"""
SELECT latest, cols FROM (
    SELECT alert_id, argMax(payload, updated_at) AS latest, argMax(tuple({_COLS}), updated_at) AS cols,
           argMax(state, updated_at) AS st, argMax(severity, updated_at) AS sev, max(updated_at) AS upd,
           any(rule_id) AS rid, any(scope_kind) AS sk, any(scope_value) AS sv
    FROM alerts GROUP BY alert_id)
WHERE {{where}} ORDER BY upd DESC LIMIT {{limit:UInt32}}
"""


def from_columns(cols: Any) -> Alert:
    """An alert written without its JSON record (by a writer using only the audit columns)."""
    d = dict(zip(rows.ALERT_COLUMNS, cols, strict=True))
    for k in ("first_seen", "last_seen", "updated_at"):
        d[k] = d[k].replace(tzinfo=UTC) if d[k].tzinfo is None else d[k]
    d["scope"] = {"kind": d.pop("scope_kind"), "value": d.pop("scope_value")}
    d["actor"] = d["actor"] or None
    return Alert.model_validate(d)


def decode(latest: str, cols: Any) -> Alert:
    return Alert.model_validate_json(latest) if latest else from_columns(cols)


def query_alerts(client: Any, *, state: list[str] | None = None, severity: list[str] | None = None,
                 rule_id: str | None = None, scope: str | None = None, limit: int = 200) -> list[Alert]:
    """The latest record of each alert, filtered, newest change first."""
    where: list[str] = ["1"]
    params: dict[str, Any] = {"limit": limit}
    if state:
        where.append("st IN {state:Array(String)}")
        params["state"] = state
    if severity:
        where.append("sev IN {severity:Array(String)}")
        params["severity"] = severity
    if rule_id:
        where.append("rid = {rule_id:String}")
        params["rule_id"] = rule_id
    if scope:
        kind, _, value = scope.partition("=")
        where.append("sk = {sk:String} AND sv = {sv:String}")
        params.update(sk=kind, sv=value)
    result = client.query(LATEST_ALERTS.replace("{where}", " AND ".join(where)), parameters=params)
    return [decode(r[0], r[1]) for r in result.result_rows]


def alert_history(client: Any, alert_id: str) -> list[dict[str, Any]]:
    result = client.query("SELECT updated_at, state, severity, count, actor FROM alerts "
                          "WHERE alert_id = {a:String} ORDER BY updated_at", parameters={"a": alert_id})
    return [dict(zip(("ts", "state", "severity", "count", "actor"), r, strict=True)) for r in result.result_rows]


def last_deliveries(client: Any, alert_ids: list[str]) -> dict[str, float]:
    """The last successful delivery (epoch seconds) of each alert's notifications."""
    result = client.query("SELECT a, max(ts) FROM alert_deliveries ARRAY JOIN alert_ids AS a "
                          "WHERE status = 'ok' AND a IN {ids:Array(String)} GROUP BY a", parameters={"ids": alert_ids})
    return {r[0]: (r[1] if r[1].tzinfo else r[1].replace(tzinfo=UTC)).timestamp() for r in result.result_rows}
