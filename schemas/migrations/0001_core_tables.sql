-- Overseer core tables. Applied once, in file order, by `overseer db migrate`
-- and at worker start; every statement is idempotent (IF NOT EXISTS).
--
-- Sinks are at-least-once upstream, so every table is a ReplacingMergeTree
-- whose sorting key ends with a deterministic id: a replayed row collapses
-- into the original. Inserts also carry insert_deduplication_token, honoured
-- on non-replicated tables through non_replicated_deduplication_window.

CREATE TABLE IF NOT EXISTS events
(
    event_id             String,
    schema_version       UInt16,
    event_type           LowCardinality(String),
    ts                   DateTime64(3, 'UTC'),
    ingested_at          DateTime64(3, 'UTC'),
    producer_id          String,
    producer_seq         Nullable(UInt64),
    trace_id             String,
    span_id              String,
    parent_span_id       String,
    conversation_id      String,
    agent_run_id         String,
    step_index           Nullable(UInt32),
    tenant_id            LowCardinality(String),
    deployment_id        LowCardinality(String),
    environment          LowCardinality(String),
    region               LowCardinality(String),
    provider             LowCardinality(String),
    request_model        LowCardinality(String),
    response_model       LowCardinality(String),
    model_checkpoint     String,
    system_prompt_hash   String,
    agent_name           LowCardinality(String),
    agent_version        LowCardinality(String),
    operation            LowCardinality(String),
    request_params       String,
    finish_reasons       Array(String),
    error_type           LowCardinality(String),
    input_tokens         Nullable(UInt32),
    output_tokens        Nullable(UInt32),
    reasoning_tokens     Nullable(UInt32),
    cached_tokens        Nullable(UInt32),
    latency_ms           Nullable(Float64),
    ttft_ms              Nullable(Float64),
    tool_name            LowCardinality(String),
    tool_type            LowCardinality(String),
    tool_call_id         String,
    tool_arguments       String,
    tool_arguments_hash  String,
    action_category      LowCardinality(String),
    resource             String,
    dest_host            String,
    egress_bytes         Nullable(UInt64),
    privilege            LowCardinality(String),
    approval             LowCardinality(String),
    is_refusal           Nullable(Bool),
    scores               Map(String, Float64),
    content_ref          String,
    content_hash         String,
    content              String,
    attributes           Map(String, String),
    src_topic            LowCardinality(String),
    src_partition        UInt32,
    src_offset           UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (tenant_id, request_model, ts, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS deadletters
(
    source_topic      LowCardinality(String),
    source_partition  UInt32,
    source_offset     UInt64,
    index_in_message  Int32,
    reason            LowCardinality(String),
    error             String,
    original          String,
    original_key      String,
    original_size     UInt64,
    received_at       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (source_topic, source_partition, source_offset, index_in_message)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS detections
(
    detection_id    String,
    kind            LowCardinality(String),
    rule_id         LowCardinality(String),
    rule_version    String,
    title           String,
    severity        LowCardinality(String),
    tags            Array(String),
    mode            LowCardinality(String),
    scope_kind      LowCardinality(String),
    scope_value     String,
    ts              DateTime64(3, 'UTC'),
    detected_at     DateTime64(3, 'UTC'),
    tenant_id       LowCardinality(String),
    deployment_id   LowCardinality(String),
    model           LowCardinality(String),
    agent_run_id    String,
    group_key       Map(String, String),
    output          String,
    event_ids       Array(String),
    evidence        String,
    source_offsets  String,
    runbook_url     String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (rule_id, ts, detection_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS alerts
(
    alert_id       String,
    group_key      String,
    state          LowCardinality(String),
    severity       LowCardinality(String),
    rule_id        LowCardinality(String),
    title          String,
    scope_kind     LowCardinality(String),
    scope_value    String,
    tags           Array(String),
    summary        String,
    detection_ids  Array(String),
    count          UInt64,
    first_seen     DateTime64(3, 'UTC'),
    last_seen      DateTime64(3, 'UTC'),
    updated_at     DateTime64(3, 'UTC'),
    actor          String,
    safety_class   Bool
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(updated_at)
ORDER BY (alert_id, updated_at, state)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS killswitch_commands
(
    command_id        String,
    idempotency_key   String,
    op                LowCardinality(String),
    scope_kind        LowCardinality(String),
    scope_value       String,
    action            LowCardinality(String),
    throttle_rate     Nullable(Float64),
    revoked_tools     Array(String),
    reason            String,
    evidence          String,
    issued_at         DateTime64(3, 'UTC'),
    lease_expires_at  DateTime64(3, 'UTC'),
    mode              LowCardinality(String),
    issuer            String,
    operators         Array(String),
    key_id            LowCardinality(String),
    signature         String,
    payload           String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(issued_at)
ORDER BY (scope_kind, scope_value, command_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS operator_actions
(
    action_id   String,
    ts          DateTime64(3, 'UTC'),
    operator    String,
    role        LowCardinality(String),
    action      LowCardinality(String),
    target      String,
    reason      String,
    details     String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, action_id);
