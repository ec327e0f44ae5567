-- Skip indexes on the audit tables' ids. Before chaining a batch, the worker
-- asks which of its ids are already in the chain (a replay after a crash must
-- not be chained twice); the ids are not a prefix of the sorting keys, so
-- without these a lookup reads the whole id column of the table.

ALTER TABLE detections ADD INDEX IF NOT EXISTS idx_detection_id detection_id TYPE bloom_filter(0.01) GRANULARITY 1;
ALTER TABLE killswitch_commands ADD INDEX IF NOT EXISTS idx_command_id command_id TYPE bloom_filter(0.01) GRANULARITY 1;
ALTER TABLE operator_actions ADD INDEX IF NOT EXISTS idx_action_id action_id TYPE bloom_filter(0.01) GRANULARITY 1
