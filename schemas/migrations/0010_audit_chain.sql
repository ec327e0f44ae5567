-- Tamper evidence for the audit tables (streams/audit/chain.py, docs/audit.md).
--
-- Every row of detections, killswitch_commands and operator_actions written by
-- the worker carries its place in a per-table hash chain:
--   chain_seq  1, 2, 3, ... (0 = a row written outside the chain)
--   prev_id    the id of the row before it, so a deleted row can be named
--   prev_hash  row_hash of the row before it ('' for the first)
--   row_hash   sha256(prev_hash, canonical row content)
-- `overseer audit verify` recomputes the chain and names every changed,
-- inserted or deleted row. Existing columns are untouched (other code writes them).

ALTER TABLE detections ADD COLUMN IF NOT EXISTS chain_seq UInt64 DEFAULT 0;
ALTER TABLE detections ADD COLUMN IF NOT EXISTS prev_id String DEFAULT '';
ALTER TABLE detections ADD COLUMN IF NOT EXISTS prev_hash String DEFAULT '';
ALTER TABLE detections ADD COLUMN IF NOT EXISTS row_hash String DEFAULT '';

ALTER TABLE killswitch_commands ADD COLUMN IF NOT EXISTS chain_seq UInt64 DEFAULT 0;
ALTER TABLE killswitch_commands ADD COLUMN IF NOT EXISTS prev_id String DEFAULT '';
ALTER TABLE killswitch_commands ADD COLUMN IF NOT EXISTS prev_hash String DEFAULT '';
ALTER TABLE killswitch_commands ADD COLUMN IF NOT EXISTS row_hash String DEFAULT '';

ALTER TABLE operator_actions ADD COLUMN IF NOT EXISTS chain_seq UInt64 DEFAULT 0;
ALTER TABLE operator_actions ADD COLUMN IF NOT EXISTS prev_id String DEFAULT '';
ALTER TABLE operator_actions ADD COLUMN IF NOT EXISTS prev_hash String DEFAULT '';
ALTER TABLE operator_actions ADD COLUMN IF NOT EXISTS row_hash String DEFAULT '';
