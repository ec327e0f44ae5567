"""Apply the ordered DDL migrations of `schemas.migrations`, idempotently.

Applied versions are recorded in ``schema_migrations`` with the file's
checksum; a changed, already-applied file is reported (never silently
re-applied). Statements themselves are ``IF NOT EXISTS``, so a crash
half-way through a migration is repaired by running it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from schemas.migrations import load_migrations


class MigrationError(RuntimeError):
    pass


@dataclass
class MigrationReport:
    applied: list[int]
    already: list[int]


def migrate(client: Client) -> MigrationReport:
    client.command("""
        CREATE TABLE IF NOT EXISTS schema_migrations
        (version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
        ENGINE = ReplacingMergeTree ORDER BY version""")
    rows = client.query("SELECT version, checksum FROM schema_migrations FINAL").result_rows
    done = {int(v): c for v, c in rows}
    report = MigrationReport([], [])
    for m in load_migrations():
        if m.version in done:
            if done[m.version] != m.checksum:
                raise MigrationError(f"migration {m.version:04d}_{m.name} changed after it was applied; "
                                     "add a new migration instead of editing an applied one")
            report.already.append(m.version)
            continue
        for statement in m.statements:
            client.command(statement)
        client.insert("schema_migrations", [[m.version, m.name, m.checksum]],
                      column_names=["version", "name", "checksum"])
        report.applied.append(m.version)
    return report
