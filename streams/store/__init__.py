"""ClickHouse: one client library (clickhouse-connect), two targets —
``chdb:///path`` (the embedded engine, default) or ``http(s)://host:8123``."""
