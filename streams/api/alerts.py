"""``/api/v1/alerts``, ``/silences`` and ``/detections``: read from ClickHouse, act through the owner partition."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from schemas.alerts import Alert
from streams.alerting.book import TransitionError
from streams.alerting.matchers import Matcher
from streams.alerting.safety import inhibited_by, is_protected
from streams.alerting.silences import SilenceRefused
from streams.alerting.store import alert_history, decode, query_alerts
from streams.api.auth import require
from streams.api.base import body, fail, ok, query_int, query_list
from streams.api.models import (
    AlertAction,
    AlertSilence,
    ResolveAction,
    SilenceCreate,
    SilenceExpire,
)
from streams.store.rows import ALERT_COLUMNS as ALERT_AUDIT_COLUMNS

ONCALL_MAX_SILENCE = timedelta(hours=24)


def annotate(rt: Any, alert: Alert, now: datetime) -> dict[str, Any]:
    """The alert as JSON plus what the on-call engineer needs at a glance."""
    silence = rt.oncall.silences.silencing(alert, now)
    d = alert.model_dump(mode="json")
    d.update(age_s=round((now - alert.first_seen).total_seconds(), 1), protected=is_protected(alert),
             silenced_by=silence.silence_id if silence else None,
             inhibited_by=inhibited_by(alert, rt.active, now.timestamp()))
    return d


async def find_alert(rt: Any, alert_id: str) -> Alert:
    """The latest record of an alert: the live book first, then ClickHouse (other workers, history)."""
    alert = rt.alerts.find(alert_id)
    if alert is not None:
        return alert

    def q(c: Any) -> list[Alert]:
        r = c.query(f"SELECT argMax(payload, updated_at), argMax(tuple({', '.join(ALERT_AUDIT_COLUMNS)}), updated_at) "
                    "FROM alerts WHERE alert_id = {a:String} GROUP BY alert_id", parameters={"a": alert_id})
        return [decode(x[0], x[1]) for x in r.result_rows]

    found = await rt.sink.run(q)
    if not found:
        raise web.HTTPNotFound(text=orjson.dumps({"error": f"no alert {alert_id!r}"}).decode(),
                               content_type="application/json")
    return found[0]


def handlers(runtime: Any) -> dict[str, Any]:
    async def list_alerts(request: web.Request) -> web.Response:
        require(request, "viewer")
        rt = runtime()
        state = query_list(request, "state")
        limit = query_int(request, "limit", 200)
        alerts = await rt.sink.run(lambda c: query_alerts(
            c, state=state, severity=query_list(request, "severity"), rule_id=request.query.get("rule_id"),
            scope=request.query.get("scope"), limit=limit))
        now = datetime.now(UTC)
        return ok({"alerts": [annotate(rt, a, now) for a in alerts], "count": len(alerts)})

    async def get_alert(request: web.Request) -> web.Response:
        require(request, "viewer")
        rt = runtime()
        alert = await find_alert(rt, request.match_info["alert_id"])
        evidence = await rt.sink.run(lambda c: _evidence(c, alert))
        return ok({"alert": annotate(rt, alert, datetime.now(UTC)), "rule": _rule(rt, alert.rule_id), **evidence})

    async def _act(request: web.Request, op: str) -> web.Response:
        who = require(request, "oncall")
        rt = runtime()
        form: AlertAction | ResolveAction = await body(request, ResolveAction if op == "resolve" else AlertAction)
        alert = await find_alert(rt, request.match_info["alert_id"])
        if alert.state == "resolved":
            return fail(409, f"alert {alert.alert_id} is already resolved")
        try:
            applied = await rt.oncall.request(op, alert, who.name, who.role, form.reason)
        except TransitionError as exc:
            return fail(409, str(exc))
        if applied is None:
            return ok({"status": "accepted", "detail": "published to the worker that owns the alert's partition"},
                      status=202)
        return ok({"status": "applied", "alert": annotate(rt, applied, datetime.now(UTC))})

    async def ack(request: web.Request) -> web.Response:
        return await _act(request, "ack")

    async def resolve(request: web.Request) -> web.Response:
        return await _act(request, "resolve")

    async def silence_alert(request: web.Request) -> web.Response:
        """Silence exactly this alert's rule and scope."""
        who = require(request, "oncall")
        rt = runtime()
        form = await body(request, AlertSilence)
        alert = await find_alert(rt, request.match_info["alert_id"])
        matchers = [Matcher(name="rule_id", value=alert.rule_id),
                    Matcher(name="scope", value=f"{alert.scope.kind}={alert.scope.value}")]
        if is_protected(alert):
            return fail(422, f"alert {alert.alert_id} is safety-class or about the kill-switch; it can never be "
                             "silenced")
        return await _create(rt, who, matchers, form)

    async def list_silences(request: web.Request) -> web.Response:
        require(request, "viewer")
        rt = runtime()
        await rt.oncall.reload_silences()
        now = datetime.now(UTC)
        every = request.query.get("all") in ("1", "true", "yes")
        items = sorted(rt.oncall.silences.by_id.values(), key=lambda s: s.starts_at, reverse=True)
        return ok({"silences": [{**s.model_dump(mode="json"), "active": s.active(now),
                                 "matchers_text": [str(m) for m in s.matchers]}
                                for s in items if every or s.active(now)]})

    async def create_silence(request: web.Request) -> web.Response:
        who = require(request, "oncall")
        form = await body(request, SilenceCreate)
        return await _create(runtime(), who, form.parsed(), form)

    async def _create(rt: Any, who: Any, matchers: list[Matcher], form: AlertSilence) -> web.Response:
        now = datetime.now(UTC)
        ends_at = form.expiry(now)
        if ends_at - now > ONCALL_MAX_SILENCE and not who.can("admin"):
            return fail(403, "silences longer than 24h need the admin role")
        try:
            silence = await rt.oncall.create_silence(matchers, form.owner, form.reason, ends_at, who.name, who.role)
        except SilenceRefused as exc:
            rt.oncall.counters["silences_refused"] = rt.oncall.counters.get("silences_refused", 0) + 1
            return fail(422, str(exc))
        return ok({"silence": silence.model_dump(mode="json")}, status=201)

    async def expire_silence(request: web.Request) -> web.Response:
        who = require(request, "oncall")
        form = await body(request, SilenceExpire)
        rt = runtime()
        try:
            silence = await rt.oncall.expire_silence(request.match_info["silence_id"], who.name, who.role,
                                                     form.reason)
        except KeyError:
            return fail(404, f"no silence {request.match_info['silence_id']!r}")
        return ok({"silence": silence.model_dump(mode="json")})

    async def detections(request: web.Request) -> web.Response:
        require(request, "viewer")
        rt = runtime()
        limit = query_int(request, "limit", 100)
        where: list[str] = ["1"]
        params: dict[str, Any] = {"limit": limit}
        for name in ("rule_id", "deployment_id", "severity", "agent_run_id"):
            if request.query.get(name):
                where.append(f"{name} = {{{name}:String}}")
                params[name] = request.query[name]
        sql = (f"SELECT {', '.join(DETECTION_FIELDS)} FROM detections FINAL WHERE {' AND '.join(where)} "
               "ORDER BY detected_at DESC LIMIT {limit:UInt32}")
        rows = await rt.sink.run(lambda c: c.query(sql, parameters=params).result_rows)
        return ok({"detections": [_detection(r) for r in rows]})

    async def detection(request: web.Request) -> web.Response:
        """One detection with the events it cites (the evidence an auditor or on-call engineer reads)."""
        require(request, "viewer")
        rt = runtime()
        detection_id = request.match_info["detection_id"]

        def q(c: Any) -> tuple[list[Any], list[Any]]:
            found = c.query(f"SELECT {', '.join(DETECTION_FIELDS)} FROM detections FINAL "
                            "WHERE detection_id = {d:String}", parameters={"d": detection_id}).result_rows
            ids = list(found[0][DETECTION_FIELDS.index("event_ids")])[:500] if found else []
            events = c.query(f"SELECT {', '.join(EVENT_FIELDS)} FROM events WHERE event_id IN {{ids:Array(String)}} "
                             "ORDER BY ts LIMIT 500", parameters={"ids": ids}).result_rows
            return found, events

        found, events = await rt.sink.run(q)
        if not found:
            return fail(404, f"no detection {detection_id!r}")
        return ok({"detection": _detection(found[0]), "rule": _rule(rt, found[0][DETECTION_FIELDS.index("rule_id")]),
                   "events": [dict(zip(EVENT_FIELDS, r, strict=True)) for r in events]})

    return {"detection": detection, "list_alerts": list_alerts, "get_alert": get_alert, "ack": ack, "resolve": resolve,
            "silence_alert": silence_alert, "list_silences": list_silences, "create_silence": create_silence,
            "expire_silence": expire_silence, "detections": detections}


DETECTION_FIELDS = ("detection_id", "kind", "rule_id", "title", "severity", "tags", "mode", "scope_kind",
                    "scope_value", "ts", "detected_at", "deployment_id", "model", "agent_run_id", "output",
                    "event_ids", "evidence")
EVENT_FIELDS = ("event_id", "ts", "event_type", "operation", "deployment_id", "request_model", "agent_run_id",
                "step_index", "tool_name", "action_category", "resource", "dest_host", "egress_bytes", "privilege",
                "is_refusal", "tool_arguments")


def _detection(r: Any) -> dict[str, Any]:
    d = dict(zip(DETECTION_FIELDS, r, strict=True))
    try:
        d["evidence"] = orjson.loads(d["evidence"]) if d["evidence"] else {}
    except orjson.JSONDecodeError:
        pass
    return d


def _evidence(c: Any, alert: Alert) -> dict[str, Any]:
    """Detections, their events, the state history, operator actions, deliveries and a merged timeline."""
    ids = list(alert.detection_ids)
    dets = [_detection(r) for r in c.query(
        f"SELECT {', '.join(DETECTION_FIELDS)} FROM detections FINAL WHERE detection_id IN {{ids:Array(String)}} "
        "ORDER BY ts", parameters={"ids": ids}).result_rows]
    event_ids = list(dict.fromkeys(e for d in dets for e in d["event_ids"]))[:500]
    events = [dict(zip(EVENT_FIELDS, r, strict=True)) for r in c.query(
        f"SELECT {', '.join(EVENT_FIELDS)} FROM events WHERE event_id IN {{ids:Array(String)}} ORDER BY ts LIMIT 500",
        parameters={"ids": event_ids}).result_rows]
    actions = [dict(zip(("ts", "operator", "role", "action", "reason"), r, strict=True)) for r in c.query(
        "SELECT ts, operator, role, action, reason FROM operator_actions FINAL WHERE target = {a:String} ORDER BY ts",
        parameters={"a": alert.alert_id}).result_rows]
    deliveries = [dict(zip(("ts", "receiver", "kind", "status", "attempt", "http_status", "error"), r, strict=True))
                  for r in c.query("SELECT ts, receiver, kind, status, attempt, http_status, error FROM alert_deliveries "
                                   "WHERE has(alert_ids, {a:String}) ORDER BY ts LIMIT 200",
                                   parameters={"a": alert.alert_id}).result_rows]
    commands = [dict(zip(("ts", "command_id", "op", "action", "issuer", "reason", "lease_expires_at"), r,
                         strict=True)) for r in c.query(
        "SELECT issued_at, command_id, op, action, issuer, reason, lease_expires_at FROM killswitch_commands FINAL "
        "WHERE scope_kind = {k:String} AND scope_value = {v:String} ORDER BY issued_at",
        parameters={"k": str(alert.scope.kind), "v": alert.scope.value}).result_rows]
    history = alert_history(c, alert.alert_id)
    timeline = ([{"ts": e["ts"], "kind": "event", "text": f"{e['event_type']} {e['tool_name'] or e['operation']} "
                                                           f"{e['action_category']} {e['resource'] or e['dest_host']}"}
                 for e in events]
                + [{"ts": d["ts"], "kind": "detection", "text": f"{d['severity']} {d['rule_id']}: {d['output']}"}
                   for d in dets]
                + [{"ts": h["ts"], "kind": "state", "text": f"{h['state']} ×{h['count']}"
                                                            + (f" by {h['actor']}" if h["actor"] else "")}
                   for h in history]
                + [{"ts": a["ts"], "kind": "action", "text": f"{a['action']} by {a['operator']} ({a['role']}): "
                                                             f"{a['reason']}"} for a in actions]
                + [{"ts": k["ts"], "kind": "killswitch", "text": f"{k['op']} {k['action']} by {k['issuer']}: "
                                                                 f"{k['reason']}"} for k in commands]
                + [{"ts": d["ts"], "kind": "delivery", "text": f"{d['receiver']} ({d['kind']}) attempt {d['attempt']}: "
                                                               f"{d['status']} {d['http_status'] or d['error']}"}
                   for d in deliveries])
    timeline.sort(key=lambda x: _ts(x["ts"]))
    return {"detections": dets, "events": events, "history": history, "actions": actions, "deliveries": deliveries,
            "killswitch": commands, "timeline": timeline}


def _ts(v: Any) -> float:
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=UTC)).timestamp()
    return time.time()


def _rule(rt: Any, rule_id: str) -> dict[str, Any] | None:
    """The rule behind an alert, as loaded by this worker (source location included)."""
    for kind in ("rule", "detector", "policy"):
        for item in rt.core.engine.items(kind):
            if item.name == rule_id:
                keep = {k: v for k, v in item.body.items() if k != "tests"}
                return {"id": item.name, "kind": kind, **keep,
                        "source": f"{item.location.path}:{item.location.line}"}
    return None
