-- Hourly per-model behaviour rollups, filled by materialized views as events
-- and detections are inserted (AggregatingMergeTree states: query them with
-- the -Merge combinators, e.g. countMerge(events), quantilesMerge(0.5, 0.95, 0.99)(latency_ms)).
-- The named query `model-hourly` and the Grafana dashboard read them; an
-- auditor's month-long question reads 720 rows per model instead of millions of events.
-- A replayed insert that escaped the dedup tokens is counted twice here, never
-- in `events` (ReplacingMergeTree): the rollups are for trends, the events for evidence.

CREATE TABLE IF NOT EXISTS model_hourly
(
    hour            DateTime('UTC'),
    tenant_id       LowCardinality(String),
    model           LowCardinality(String),
    event_type      LowCardinality(String),
    action_category LowCardinality(String),
    events          AggregateFunction(count),
    refusals        AggregateFunction(countIf, UInt8),
    errors          AggregateFunction(countIf, UInt8),
    input_tokens    AggregateFunction(sum, UInt64),
    output_tokens   AggregateFunction(sum, UInt64),
    egress_bytes    AggregateFunction(sum, UInt64),
    latency_ms      AggregateFunction(quantiles(0.5, 0.95, 0.99), Float64),
    agent_runs      AggregateFunction(uniq, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (model, hour, tenant_id, event_type, action_category);

CREATE MATERIALIZED VIEW IF NOT EXISTS model_hourly_mv TO model_hourly AS
SELECT
    toStartOfHour(ts) AS hour,
    tenant_id,
    request_model AS model,
    event_type,
    action_category,
    countState() AS events,
    countIfState(toUInt8(ifNull(is_refusal, false))) AS refusals,
    countIfState(toUInt8(error_type != '')) AS errors,
    sumState(toUInt64(ifNull(input_tokens, 0))) AS input_tokens,
    sumState(toUInt64(ifNull(output_tokens, 0))) AS output_tokens,
    sumState(ifNull(egress_bytes, 0)) AS egress_bytes,
    quantilesStateIf(0.5, 0.95, 0.99)(ifNull(latency_ms, 0), latency_ms IS NOT NULL) AS latency_ms,
    uniqState(agent_run_id) AS agent_runs
FROM events
GROUP BY hour, tenant_id, model, event_type, action_category;

CREATE TABLE IF NOT EXISTS detections_hourly
(
    hour      DateTime('UTC'),
    model     LowCardinality(String),
    rule_id   LowCardinality(String),
    severity  LowCardinality(String),
    kind      LowCardinality(String),
    detections AggregateFunction(count)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (model, hour, rule_id, severity, kind);

CREATE MATERIALIZED VIEW IF NOT EXISTS detections_hourly_mv TO detections_hourly AS
SELECT toStartOfHour(ts) AS hour, model, rule_id, severity, kind, countState() AS detections
FROM detections
GROUP BY hour, model, rule_id, severity, kind
