"""Named queries, read-only SQL, output formats, the HTML report and the backtest on the real embedded engine.

The store is filled with demo fleet traffic and the built-in rules'
detections, written through the worker's own row builders and hash chain.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from streams.audit.access import DirectStore
from streams.audit.backtest import backtest
from streams.audit.output import to_csv, to_json, write_parquet
from streams.audit.queries import QueryError
from streams.audit.readonly import WriteRefused
from streams.audit.replay import stored_events
from streams.audit.report import build_report
from streams.store.client import connect
from streams.store.migrate import migrate
from streams.store.sink import ClickHouseSink
from tests.unit.audit.fleet import T0, fill, fleet_events

PACKS = Path(__file__).resolve().parents[3] / "rules" / "packs"


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory, chdb_path: Path) -> Iterator[tuple[DirectStore, Any, list]]:
    import uuid

    dsn, db = f"chdb:///{chdb_path}", f"auditor_{uuid.uuid4().hex[:8]}"
    connect(dsn).command(f"CREATE DATABASE {db}")
    sink = ClickHouseSink(lambda: connect(dsn, database=db))
    sink.call(migrate)
    events = fleet_events()
    replayer = fill(sink, events)
    try:
        yield DirectStore(connect(dsn, database=db), dsn), replayer.run, events
    finally:
        sink.close()


def test_named_queries_answer_the_auditors_questions(filled) -> None:
    store, run, events = filled
    history = store.named("model-history", {"model": "atlas-7b"}).dicts()
    assert len(history) == sum(e["request_model"] == "atlas-7b" for e in events)
    assert {h["request_model"] for h in history} == {"atlas-7b"}
    exfil_run = next(e["agent_run_id"] for e in events if e.get("action_category") == "weights_access")
    trace = store.named("trace", {"agent_run": exfil_run}).dicts()
    assert [t["action_category"] for t in trace] == ["weights_access", "net_egress"]
    by_rule = {r["rule_id"]: r["detections"] for r in store.named("detections-by-rule", {}).dicts()}
    assert sum(by_rule.values()) == len(run.detections) and "frontier_self_exfiltration_sequence" in by_rule
    dets = store.named("detections", {"rule": "frontier_self_exfiltration_sequence"}).dicts()
    assert dets and all(d["agent_run_id"] == exfil_run for d in dets)
    log = store.named("killswitch-log", {}).dicts()
    assert [(c["op"], c["action"], c["operators"]) for c in log] == [("issue", "pause", ["alice"])]
    assert store.named("operator-actions", {"operator": "alice"}).dicts()[0]["action"] == "killswitch.issue"
    hourly = store.named("model-hourly", {"model": "atlas-7b"}).dicts()
    assert sum(h["events"] for h in hourly) == len(history)
    with pytest.raises(QueryError, match="--model"):
        store.named("model-history", {})
    with pytest.raises(QueryError, match="unknown query"):
        store.named("everything", {})


def test_sql_is_read_only(filled) -> None:
    store, _, _ = filled
    assert store.sql("SELECT count() FROM events").rows[0][0] > 0
    for sql in ("INSERT INTO events (event_id) VALUES ('x')", "ALTER TABLE detections DELETE WHERE 1",
                "SELECT 1; DROP TABLE events"):
        with pytest.raises(WriteRefused):
            store.sql(sql)
    with pytest.raises(Exception, match="readonly"):  # the engine itself runs the query read-only
        store.sql("SELECT 1 SETTINGS readonly = 0")


def test_output_formats(filled, tmp_path: Path) -> None:
    store, _, _ = filled
    table = store.named("killswitch-log", {})
    assert to_csv(table).splitlines()[0].startswith("ts,op,action")
    assert json.loads(to_json(table))["rows"][0][1] == "issue"
    write_parquet(store.named("detections", {}), tmp_path / "d.parquet")
    back = pq.read_table(tmp_path / "d.parquet")
    assert back.num_rows == len(store.named("detections", {}).rows) and "evidence" in back.column_names


def test_report_is_self_contained_and_readable(filled, tmp_path: Path) -> None:
    store, _, _ = filled
    out = tmp_path / "report.html"
    day = datetime.fromtimestamp(T0, UTC)
    data = build_report(store, "atlas-7b", (day - timedelta(days=1)).isoformat(), (day + timedelta(days=1)).isoformat(),
                        out)
    page = out.read_text()
    assert data.summary["events"] > 0 and data.summary["tool_calls"] > 0
    assert "Behaviour report: atlas-7b" in page and page.count("<svg") >= 4
    assert "Kill-switch timeline" in page and "exfiltration under review" in page
    assert "frontier_self_exfiltration_sequence" in page
    for external in ("<script", "<link", "src=\"http", "url(http"):
        assert external not in page
    assert "No statistical detector fired" in page  # atlas-7b's refusals never collapsed
    assert "1 kill-switch command(s) were issued (pause of model=atlas-7b)" in page
    assert re.search(r"the most severe was frontier_\w+ \(critical\)", page)
    build_report(store, "borealis-70b", "", "", out)
    page = out.read_text()
    assert "refusal_rate_shift: observed against its statistical baseline" in page
    assert page.count("<svg") >= 4 and "No kill-switch commands in this period" in page


def test_replayed_events_are_the_live_representation(filled) -> None:
    store, _, events = filled
    stored = [e for page in stored_events(store, "", "") for e in page]
    assert [e["event_id"] for e in stored] == [e["event_id"] for e in events]
    for live, back in zip(events, stored, strict=True):
        assert abs(live["_ts"] - back["_ts"]) < 0.001
        assert {k: v for k, v in back.items() if k not in ("ts", "_ts")} == \
               {k: v for k, v in live.items() if k not in ("ts", "_ts", "_kts")}


def test_backtest_reports_new_lost_and_unchanged_hits(filled, tmp_path: Path) -> None:
    store, run, _ = filled
    same = backtest(stored_events(store, "", ""), [PACKS], None, 60)
    assert same["unchanged"] == len(run.detections) and not same["new"] and not same["lost"]
    assert len(same["commands"]["candidate"]) == len(run.commands) > 0
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    for f in PACKS.glob("*.yaml"):
        if f.name != "agent-stable.yaml":
            shutil.copy(f, candidate)
    out = backtest(stored_events(store, "", ""), [candidate], None, 60)
    assert out["lost"] and {h["rule_id"] for h in out["lost"]} <= {"agent_destructive_shell",
                                                                      "agent_destructive_shell_burst"}
    assert not out["new"] and out["unchanged"] == len(run.detections) - len(out["lost"])
    assert out["commands"]["lost"] and all(c["scope"] == "deployment=dep-cirrus-us" for c in out["commands"]["lost"])
