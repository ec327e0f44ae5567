"""The worker's audit rows insert into the real ClickHouse engine (chdb) with the shipped DDL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import clickhouse_connect
import orjson
import pytest

from schemas.detections import Scope
from schemas.killswitch import KillSwitchCommand
from schemas.migrations import load_migrations
from streams.killswitch.commands import build_manual_issue, build_release, command_row, operator_action_row
from streams.killswitch.signing import KeyRing, load_or_create_signing_key

pytestmark = pytest.mark.integration
TABLES = ("killswitch_commands", "operator_actions")


def test_rows_round_trip_through_clickhouse(chdb_database: tuple[str, str], tmp_path: Path) -> None:
    dsn, db = chdb_database
    client = clickhouse_connect.get_client(dsn=dsn, database=db)
    for stmt in (s for m in load_migrations() for s in m.statements):
        if any(f"EXISTS {t}" in stmt for t in TABLES):
            client.command(stmt)
    signer = load_or_create_signing_key(tmp_path / "k.pem", "key-1")
    now = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    issue = build_manual_issue(Scope(kind="deployment", value="dep-1"), "throttle", ["alice"], "odd spend",
                               signer, now, 600, throttle_rate=2.5)
    release = build_release(issue.scope, ["alice", "bob"], "false positive", signer, now, active=issue)
    for cmd in (issue, release):
        row = command_row(cmd)
        client.insert("killswitch_commands", [list(row.values())], column_names=list(row))
        op = operator_action_row(cmd)
        assert op is not None
        client.insert("operator_actions", [list(op.values())], column_names=list(op))

    got = client.query("SELECT op, action, throttle_rate, issued_at, operators, payload FROM killswitch_commands "
                       "ORDER BY op").result_rows
    assert [(r[0], r[1], r[2], r[4]) for r in got] == [("issue", "throttle", 2.5, ["alice"]),
                                                        ("release", "throttle", None, ["alice", "bob"])]
    assert got[0][3].replace(tzinfo=UTC) == now.replace(microsecond=123000)  # DateTime64(3)
    # the stored payload is the signed message itself: an auditor can re-verify it months later
    stored = KillSwitchCommand.model_validate(orjson.loads(got[0][5]))
    assert KeyRing({"key-1": signer.public_key}).verify(stored).ok
    actions = client.query("SELECT operator, role, action, target FROM operator_actions ORDER BY action").result_rows
    assert actions == [("alice", "operator", "killswitch.issue", "deployment=dep-1"),
                       ("alice", "two_person", "killswitch.release", "deployment=dep-1")]
