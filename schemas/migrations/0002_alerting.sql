-- On-call: the full alert record, silences and notification deliveries.
--
-- `alerts.payload` holds the whole Alert JSON of each state change
-- (acknowledged by whom, resolution, hysteresis), so the API and the console
-- read one row per change without widening the audit columns.
-- Silences are global (every worker reloads them from here); a silence is
-- never deleted, it is expired by a new row with the same silence_id and a
-- later `updated_at`. Every delivery attempt of every notification is kept.

ALTER TABLE alerts ADD COLUMN IF NOT EXISTS payload String DEFAULT '';

CREATE TABLE IF NOT EXISTS alert_silences
(
    silence_id   String,
    matchers     String,
    owner        String,
    reason       String,
    created_by   String,
    starts_at    DateTime64(3, 'UTC'),
    ends_at      DateTime64(3, 'UTC'),
    expired_by   String,
    updated_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY silence_id;

CREATE TABLE IF NOT EXISTS alert_deliveries
(
    delivery_id   String,
    attempt       UInt16,
    ts            DateTime64(3, 'UTC'),
    receiver      LowCardinality(String),
    kind          LowCardinality(String),
    url           String,
    group_key     String,
    alert_ids     Array(String),
    status        LowCardinality(String),
    http_status   UInt16,
    error         String,
    payload       String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, delivery_id, attempt);
