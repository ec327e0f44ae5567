"""Content retention: how long ``events.content`` and ``events.tool_arguments`` are kept.

Migration 0011 sets a 90-day column TTL; the worker re-applies the configured
``OVERSEER_CONTENT_RETENTION_DAYS`` at start-up (a cheap metadata change when
it is already in place), so changing the setting and restarting is all it
takes. Only these two columns expire: the event row and its metadata stay,
which is what an auditor needs months later.
"""

from __future__ import annotations

import re

from clickhouse_connect.driver.client import Client

CONTENT_COLUMNS = ("content", "tool_arguments")
_TTL = re.compile(r"`(\w+)` String TTL toDateTime\(ts\) \+ toIntervalDay\((\d+)\)")


def current_retention(client: Client) -> dict[str, int]:
    """Column -> days, read back from the table definition."""
    ddl = str(client.command("SHOW CREATE TABLE events"))
    return {col: int(days) for col, days in _TTL.findall(ddl) if col in CONTENT_COLUMNS}


def apply_retention(client: Client, days: int) -> bool:
    """Set the content TTL to ``days``; returns whether anything changed."""
    if days < 1:
        raise ValueError("content retention must be at least one day")
    if current_retention(client) == dict.fromkeys(CONTENT_COLUMNS, days):
        return False
    for col in CONTENT_COLUMNS:
        client.command(f"ALTER TABLE events MODIFY COLUMN {col} String TTL toDateTime(ts) + INTERVAL {int(days)} DAY")
    return True
