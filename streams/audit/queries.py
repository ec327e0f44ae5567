"""Named auditor queries: the questions asked months later, as reviewed SQL with typed parameters.

Parameters are bound server-side (``{name:Type}``), never pasted into SQL.
``since``/``until`` take any date-time ClickHouse's best-effort parser reads
(``2026-03-01``, ``2026-03-01T12:00:00Z``); empty means unbounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

_SINCE = "parseDateTime64BestEffortOrZero(if({since:String} = '', '1970-01-01', {since:String}), 3, 'UTC')"
_UNTIL = "parseDateTime64BestEffortOrZero(if({until:String} = '', '2199-12-31', {until:String}), 3, 'UTC')"
_PERIOD = f"ts >= {_SINCE} AND ts < {_UNTIL}"
_EVENT_COLS = ("ts, event_id, event_type, tenant_id, deployment_id, request_model, agent_run_id, trace_id, span_id, "
               "step_index, operation, tool_name, action_category, resource, dest_host, egress_bytes, is_refusal, "
               "error_type, input_tokens, output_tokens, latency_ms")


@dataclass(frozen=True)
class NamedQuery:
    name: str
    help: str
    sql: str
    params: tuple[str, ...]
    required: tuple[str, ...] = ()


QUERIES: dict[str, NamedQuery] = {q.name: q for q in [
    NamedQuery("model-history", "every event of one model in a period (content excluded)",
               f"SELECT {_EVENT_COLS} FROM events FINAL WHERE request_model = {{model:String}} AND {_PERIOD} "
               "ORDER BY ts, event_id LIMIT {limit:UInt64}", ("model", "since", "until", "limit"), ("model",)),
    NamedQuery("model-hourly", "hourly behaviour of one model (or all) from the rollups",
               "SELECT hour, model, countMerge(events) AS events, countIfMerge(refusals) AS refusals, "
               "countIfMerge(errors) AS errors, sumMerge(input_tokens) AS input_tokens, "
               "sumMerge(output_tokens) AS output_tokens, sumMerge(egress_bytes) AS egress_bytes, "
               "quantilesMerge(0.5, 0.95, 0.99)(latency_ms) AS latency_p50_p95_p99 FROM model_hourly "
               "WHERE ({model:String} = '' OR model = {model:String}) "
               f"AND hour >= toStartOfHour({_SINCE}) AND hour < {_UNTIL} GROUP BY hour, model ORDER BY hour, model "
               "LIMIT {limit:UInt64}", ("model", "since", "until", "limit")),
    NamedQuery("trace", "one trajectory in full: every event of an agent run or a trace, in order",
               f"SELECT {_EVENT_COLS}, parent_span_id, tool_arguments_hash, content_ref FROM events FINAL "
               "WHERE (agent_run_id = {agent_run:String} AND {agent_run:String} != '') "
               "OR (trace_id = {trace:String} AND {trace:String} != '') "
               "ORDER BY ts, ifNull(step_index, 0), event_id LIMIT {limit:UInt64}",
               ("agent_run", "trace", "limit")),
    NamedQuery("detections", "detections with their evidence, optionally of one rule, model or agent run",
               "SELECT ts, detection_id, rule_id, rule_version, kind, severity, mode, title, scope_kind, scope_value, "
               "model, deployment_id, agent_run_id, output, evidence, event_ids, chain_seq FROM detections FINAL "
               "WHERE ({rule:String} = '' OR rule_id = {rule:String}) AND ({model:String} = '' OR model = {model:String}) "
               f"AND ({{agent_run:String}} = '' OR agent_run_id = {{agent_run:String}}) AND {_PERIOD} "
               "ORDER BY ts, detection_id LIMIT {limit:UInt64}", ("rule", "model", "agent_run", "since", "until", "limit")),
    NamedQuery("detections-by-rule", "how often each rule fired in a period, per severity",
               "SELECT rule_id, severity, kind, count() AS detections, uniqExact(scope_value) AS scopes, "
               "min(ts) AS first, max(ts) AS last FROM detections FINAL "
               f"WHERE ({{model:String}} = '' OR model = {{model:String}}) AND {_PERIOD} "
               "GROUP BY rule_id, severity, kind ORDER BY detections DESC LIMIT {limit:UInt64}",
               ("model", "since", "until", "limit")),
    NamedQuery("killswitch-log", "every kill-switch command — who or what issued it, why, on which evidence",
               "SELECT issued_at AS ts, op, action, mode, scope_kind, scope_value, issuer, operators, reason, "
               "lease_expires_at, JSONExtract(evidence, 'rule_ids', 'Array(String)') AS rule_ids, "
               "JSONExtractString(evidence, 'policy_id') AS policy_id, "
               "JSONExtract(evidence, 'detection_ids', 'Array(String)') AS detection_ids, "
               "JSONExtract(evidence, 'event_ids', 'Array(String)') AS event_ids, command_id, key_id, chain_seq "
               "FROM killswitch_commands FINAL "
               "WHERE issued_at >= " + _SINCE + " AND issued_at < " + _UNTIL +
               " AND ({scope:String} = '' OR scope_value = {scope:String}) ORDER BY issued_at, command_id "
               "LIMIT {limit:UInt64}", ("scope", "since", "until", "limit")),
    NamedQuery("operator-actions", "what humans did: manual containment, releases, extensions",
               "SELECT ts, operator, role, action, target, reason, details, action_id, chain_seq "
               f"FROM operator_actions FINAL WHERE {_PERIOD} "
               "AND ({operator:String} = '' OR operator = {operator:String}) ORDER BY ts, action_id "
               "LIMIT {limit:UInt64}", ("operator", "since", "until", "limit")),
]}

DEFAULT_LIMIT = 100_000


class QueryError(ValueError):
    """An unknown query name or a missing required parameter."""


def bind(name: str, params: dict[str, Any]) -> tuple[NamedQuery, dict[str, Any]]:
    q = QUERIES.get(name)
    if q is None:
        raise QueryError(f"unknown query {name!r}; named queries: {', '.join(QUERIES)}")
    missing = [p for p in q.required if not params.get(p)]
    if missing:
        raise QueryError(f"query {name} needs " + ", ".join(f"--{m.replace('_', '-')}" for m in missing))
    if name == "trace" and not (params.get("agent_run") or params.get("trace")):
        raise QueryError("query trace needs --agent-run RUN or --trace TRACE_ID")
    bound: dict[str, Any] = {p: str(params.get(p) or "") for p in q.params if p != "limit"}
    if "limit" in q.params:
        bound["limit"] = int(params.get("limit") or DEFAULT_LIMIT)
    return q, bound


def run_named(client: Client, name: str, params: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    q, bound = bind(name, params)
    result = client.query(q.sql, parameters=bound, settings={"readonly": 2})
    return list(result.column_names), [list(r) for r in result.result_rows]
