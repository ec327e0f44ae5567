-- Content is opt-in and short-lived; metadata stays.
--
-- A column-level TTL empties `content` and `tool_arguments` (resets them to
-- '') once the event is older than the retention, while every other column of
-- the event is kept for audits. 90 days is the default; a worker applies
-- OVERSEER_CONTENT_RETENTION_DAYS at start-up (streams/audit/retention.py),
-- and `overseer audit retention` applies it by hand. The hourly rollups
-- (0012) keep no content at all.

ALTER TABLE events MODIFY COLUMN content String TTL toDateTime(ts) + INTERVAL 90 DAY;
ALTER TABLE events MODIFY COLUMN tool_arguments String TTL toDateTime(ts) + INTERVAL 90 DAY
