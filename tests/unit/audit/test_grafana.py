"""The provisioned Grafana dashboard: valid JSON, the provisioned datasource, and SQL that runs.

Each panel's (and annotation's) SQL is run against the real embedded engine
with the migrations applied and demo fleet data in it, Grafana's macros
replaced by what the ClickHouse plugin expands them to — so a renamed column
or a dropped table breaks this test, not the dashboard in production.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from streams.store.client import connect
from streams.store.migrate import migrate
from streams.store.sink import ClickHouseSink
from tests.unit.audit.fleet import fill, fleet_events

REPO = Path(__file__).resolve().parents[3]
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "clickhouse.yaml"

MACROS = [
    (re.compile(r"\$__timeFilter\((\w+)\)"), r"\1 >= toDateTime64('2000-01-01 00:00:00', 3) AND \1 <= now64(3)"),
    (re.compile(r"\$__timeInterval\((\w+)\)"), r"toStartOfInterval(\1, INTERVAL 60 second)"),
    (re.compile(r"\$__fromTime"), "toDateTime('2000-01-01 00:00:00')"),
    (re.compile(r"\$__toTime"), "now()"),
    (re.compile(r"\$\{model:singlequote\}"), "'atlas-7b', 'borealis-70b', 'cirrus-mini'"),
]


def expand(sql: str) -> str:
    for pattern, repl in MACROS:
        sql = pattern.sub(repl, sql)
    assert "$" not in sql, f"unexpanded Grafana macro in {sql}"
    return sql


def _targets(dash: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = [(p["title"], t) for p in dash["panels"] for t in p.get("targets", [])]
    out += [(a["name"], a["target"]) for a in dash["annotations"]["list"] if "target" in a]
    return out


def test_dashboards_query_existing_tables_and_columns(chdb_database: tuple[str, str]) -> None:
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    dsn, db = chdb_database
    sink = ClickHouseSink(lambda: connect(dsn, database=db))
    try:
        sink.call(migrate)
        fill(sink, fleet_events(steps=10, per_step=40))
    finally:
        sink.close()
    client = connect(dsn, database=db)
    answered = 0
    for path in files:
        dash = json.loads(path.read_text())
        assert dash["uid"] and dash["title"]
        variables = dash["templating"]["list"]
        for var in variables:
            assert var["datasource"]["uid"] == uid
            assert client.query(var["query"]).result_rows
        for title, target in _targets(dash):
            assert target.get("datasource", {"uid": uid})["uid"] == uid, title
            rows = client.query(expand(target["rawSql"]), settings={"readonly": 1}).result_rows
            answered += bool(rows)
        for panel in dash["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == uid and panel["datasource"]["type"] == "grafana-clickhouse-datasource"
    assert answered >= 10  # most panels show demo data, not just parse
