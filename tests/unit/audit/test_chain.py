"""The hash chain on the real embedded ClickHouse engine: written by the worker's code, tampered with by hand.

Each tampering (an edited row, a forged row, a deleted row) must be named by
table, chain position and id; a replayed row must not break the chain; a
second writer continuing from the stored head must extend, not fork, it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from rules.base import Hit
from schemas.detections import Scope
from streams.audit.chain import AuditChain
from streams.audit.verify import verify
from streams.killswitch.commands import (
    build_manual_issue,
    command_row,
    operator_action_row,
)
from streams.killswitch.signing import Signer
from streams.pipeline.convert import hit_to_detection
from streams.store import rows
from streams.store.client import connect
from streams.store.migrate import migrate
from streams.store.sink import ClickHouseSink

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _hit(i: int) -> Hit:
    return Hit(kind="rule", rule_id=f"rule.{i % 3}", rule_version="1", title=f"hit {i}", severity="high",
               tags=["t"], mode="enforce", output=f"out {i}", scope_kind="model", scope_value="atlas-7b",
               ts=T0.timestamp() + i,
               event_ids=[f"e{i}"], evidence={"observed": i, "baseline": 1.5}, model="atlas-7b")


@pytest.fixture()
def store(chdb_database: tuple[str, str]) -> Iterator[tuple[ClickHouseSink, object]]:
    dsn, db = chdb_database
    sink = ClickHouseSink(lambda: connect(dsn, database=db))
    sink.call(migrate)
    try:
        yield sink, connect(dsn, database=db)
    finally:
        sink.close()


def _write_all(sink: ClickHouseSink, chain: AuditChain, n: int = 6) -> None:
    dets = [hit_to_detection(_hit(i), T0) for i in range(n)]
    signer = Signer(Ed25519PrivateKey.generate(), "k1")
    cmds = [build_manual_issue(Scope(kind="model", value="atlas-7b"), "pause", ["alice"], f"reason {i}", signer,
                               T0 + timedelta(seconds=i), 600) for i in range(3)]

    async def go() -> None:
        await chain.write(sink, "detections", rows.detection_rows(dets), rows.DETECTION_COLUMNS, token="det:1")
        for c in cmds:
            row = command_row(c)
            await chain.write(sink, "killswitch_commands", [list(row.values())], list(row.keys()))
            action = operator_action_row(c)
            assert action is not None
            await chain.write(sink, "operator_actions", [list(action.values())], list(action.keys()))

    asyncio.run(go())


def _findings(report: dict) -> list[tuple[str, str, int, str]]:
    return sorted((f["table"], f["kind"], f["chain_seq"], f["row_id"])
                  for t in report["tables"] for f in t["findings"])


def test_intact_chain_verifies_and_replays_do_not_fork(store) -> None:
    sink, client = store
    chain = AuditChain()
    _write_all(sink, chain)
    _write_all(sink, AuditChain())  # a restarted worker replays everything: nothing new is chained
    report = verify(client)
    assert report["ok"], report
    heads = {t["table"]: t["head_seq"] for t in report["tables"]}
    assert heads == {"detections": 6, "killswitch_commands": 3, "operator_actions": 3}
    # a restarted writer continues from the stored head
    more = AuditChain()
    asyncio.run(more.write(sink, "detections", rows.detection_rows([hit_to_detection(_hit(99), T0)]),
                           rows.DETECTION_COLUMNS))
    again = verify(client)
    assert again["ok"] and again["tables"][0]["head_seq"] == 7


@pytest.mark.parametrize("page", [50_000, 2])  # 2: positions are read across many pages
def test_changed_inserted_and_deleted_rows_are_named(store, page: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.audit.verify.PAGE", page)
    sink, client = store
    _write_all(sink, AuditChain())
    ids = {int(s): i for s, i in client.query("SELECT chain_seq, detection_id FROM detections").result_rows}
    cmd_ids = {int(s): i for s, i in client.query("SELECT chain_seq, command_id FROM killswitch_commands").result_rows}
    mutate = {"mutations_sync": 2}
    client.command(f"ALTER TABLE detections UPDATE severity = 'low' WHERE detection_id = '{ids[2]}'",
                   settings=mutate)
    client.command(f"ALTER TABLE detections DELETE WHERE detection_id = '{ids[4]}'", settings=mutate)
    client.command("INSERT INTO operator_actions (action_id, ts, operator, role, action, target, reason, details) "
                   "VALUES ('forged-1', now64(3), 'mallory', 'operator', 'killswitch.release', 'model=atlas-7b', "
                   "'nothing to see', '{}')")
    client.command(f"ALTER TABLE killswitch_commands UPDATE reason = 'rewritten' WHERE command_id = '{cmd_ids[3]}'",
                   settings=mutate)
    report = verify(client)
    assert not report["ok"]
    assert _findings(report) == sorted([
        ("detections", "changed", 2, ids[2]),
        ("detections", "deleted", 4, ids[4]),
        ("operator_actions", "inserted", 0, "forged-1"),
        ("killswitch_commands", "changed", 3, cmd_ids[3]),
    ])


def test_consecutive_deleted_rows_are_each_reported(store) -> None:
    sink, client = store
    _write_all(sink, AuditChain())
    ids = {int(s): i for s, i in client.query("SELECT chain_seq, detection_id FROM detections").result_rows}
    client.command("ALTER TABLE detections DELETE WHERE chain_seq IN (2, 3)", settings={"mutations_sync": 2})
    assert _findings(verify(client)) == [("detections", "deleted", 2, "?"), ("detections", "deleted", 3, ids[3])]


def test_a_forged_row_at_a_taken_position_is_named(store) -> None:
    sink, client = store
    _write_all(sink, AuditChain())
    client.command("INSERT INTO detections (detection_id, rule_id, ts, chain_seq, prev_hash, row_hash) "
                   "SELECT 'det-forged', rule_id, ts, chain_seq, prev_hash, row_hash FROM detections "
                   "WHERE chain_seq = 3")
    assert _findings(verify(client)) == [("detections", "inserted", 3, "det-forged")]


def test_an_anchor_catches_a_cut_tail(store) -> None:
    sink, client = store
    _write_all(sink, AuditChain())
    anchor = {t["table"]: {"seq": t["head_seq"], "row_hash": t["head_hash"]} for t in verify(client)["tables"]}
    client.command("ALTER TABLE detections DELETE WHERE chain_seq = 6", settings={"mutations_sync": 2})
    assert verify(client)["ok"]  # without an anchor a cut tail is invisible: that is what the anchor is for
    assert _findings(verify(client, anchor)) == [("detections", "deleted", 6, "?")]
