"""The report's numbers, read with plain read-only SQL so they travel as JSON through a worker's API too.

Times come back as epoch seconds and everything else as numbers or strings,
so the same code works on a direct store and on a worker's JSON answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.audit.access import Store, Table


def literal(text: str) -> str:
    """A ClickHouse string literal.

    >>> literal("it's")
    "'it\\\\'s'"
    """
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class ReportData:
    model: str
    since: float
    until: float
    bucket_s: int
    first: float  # the model's first and last event in the period (or the period itself)
    last: float
    summary: dict[str, Any]
    behaviour: Table
    categories: Table
    by_rule: Table
    detections: Table
    baselines: Table
    commands: Table
    actions: Table


def _period(store: Store, since: str, until: str) -> tuple[float, float]:
    s = literal(since or "1970-01-01")
    u = literal(until or "2199-12-31")
    row = store.sql(f"SELECT toUnixTimestamp64Milli(parseDateTime64BestEffort({s}, 3, 'UTC')) / 1000, "
                    f"toUnixTimestamp64Milli(parseDateTime64BestEffort({u}, 3, 'UTC')) / 1000").rows[0]
    return float(row[0]), float(row[1])


def load(store: Store, model: str, since: str, until: str) -> ReportData:
    t0, t1 = _period(store, since, until)
    m = literal(model)
    when = f"ts >= fromUnixTimestamp64Milli(toInt64({t0 * 1000})) AND ts < fromUnixTimestamp64Milli(toInt64({t1 * 1000}))"
    first_last = store.sql(f"SELECT min(toUnixTimestamp64Milli(ts)) / 1000, max(toUnixTimestamp64Milli(ts)) / 1000, "
                           f"count() FROM events FINAL WHERE request_model = {m} AND {when}").rows[0]
    lo, hi = (float(first_last[0] or t0), float(first_last[1] or t1)) if int(first_last[2]) else (t0, t1)
    span = max(60.0, hi - lo)
    bucket = next(b for b in (60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400) if span / b <= 120 or b == 7 * 86400)
    b = f"toUnixTimestamp(toStartOfInterval(ts, INTERVAL {bucket} SECOND))"
    summary = store.sql(
        f"SELECT count(), countIf(event_type = 'inference'), countIf(event_type = 'tool_call'), "
        f"countIf(is_refusal), countIf(error_type != ''), uniqExact(agent_run_id), uniqExact(deployment_id), "
        f"sum(ifNull(input_tokens, 0) + ifNull(output_tokens, 0)) FROM events FINAL WHERE request_model = {m} AND {when}")
    keys = ("events", "inferences", "tool_calls", "refusals", "errors", "agent_runs", "deployments", "tokens")
    det_when = when.replace("ts >=", "d.ts >=").replace("AND ts <", "AND d.ts <")
    return ReportData(
        model=model, since=t0, until=t1, bucket_s=bucket, first=lo, last=hi,
        summary=dict(zip(keys, [int(v or 0) for v in summary.rows[0]], strict=True)),
        behaviour=store.sql(
            f"SELECT {b} AS t, count() AS events, countIf(event_type = 'tool_call') AS tool_calls, "
            f"countIf(is_refusal) / greatest(countIf(event_type = 'inference'), 1) AS refusal_rate, "
            f"countIf(error_type != '') AS errors, quantileIf(0.95)(latency_ms, latency_ms IS NOT NULL) AS p95 "
            f"FROM events FINAL WHERE request_model = {m} AND {when} GROUP BY t ORDER BY t"),
        categories=store.sql(
            f"SELECT {b} AS t, action_category, count() FROM events FINAL WHERE request_model = {m} AND {when} "
            f"AND event_type = 'tool_call' GROUP BY t, action_category ORDER BY t"),
        by_rule=store.sql(
            f"SELECT rule_id, any(title), severity, count() AS n FROM detections AS d FINAL "
            f"WHERE model = {m} AND {det_when} GROUP BY rule_id, severity ORDER BY n DESC LIMIT 40"),
        detections=store.sql(
            f"SELECT toUnixTimestamp64Milli(ts) / 1000, rule_id, severity, scope_kind, scope_value, output "
            f"FROM detections AS d FINAL WHERE model = {m} AND {det_when} ORDER BY ts LIMIT 200"),
        baselines=store.sql(
            f"SELECT rule_id, toUnixTimestamp64Milli(parseDateTime64BestEffortOrZero("
            f"JSONExtractString(evidence, 'bucket_start'), 3, 'UTC')) / 1000 AS t, "
            f"JSONExtractFloat(evidence, 'observed'), JSONExtractFloat(evidence, 'baseline'), "
            f"JSONExtractFloat(evidence, 'spread') FROM detections AS d FINAL WHERE model = {m} AND {det_when} "
            f"AND JSONHas(evidence, 'observed') AND JSONHas(evidence, 'baseline') ORDER BY rule_id, t LIMIT 2000"),
        commands=store.sql(
            f"SELECT toUnixTimestamp64Milli(issued_at) / 1000, op, action, mode, scope_kind, scope_value, issuer, "
            f"reason, toUnixTimestamp64Milli(lease_expires_at) / 1000 FROM killswitch_commands FINAL "
            f"WHERE issued_at >= fromUnixTimestamp64Milli(toInt64({t0 * 1000})) "
            f"AND issued_at < fromUnixTimestamp64Milli(toInt64({t1 * 1000})) AND (scope_value = {m} OR scope_value IN "
            f"(SELECT DISTINCT deployment_id FROM events WHERE request_model = {m} AND {when})) ORDER BY issued_at"),
        actions=store.sql(
            f"SELECT toUnixTimestamp64Milli(ts) / 1000, operator, action, target, reason FROM operator_actions FINAL "
            f"WHERE {when} ORDER BY ts LIMIT 500"),
    )
