"""The auditor's commands against a running worker that holds the embedded store.

A slice of demo fleet traffic goes through a real worker (real Kafka, real
embedded ClickHouse); an operator pauses a model by hand. Then, as separate
processes that can not open the store themselves, `overseer query` (through
the worker's API), `overseer report`, `overseer audit verify` and
`overseer backtest` answer from what the worker stored.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams.demo.fleet import FleetGenerator
from tests.integration.workerproc import WorkerProcess

pytestmark = pytest.mark.integration
PACKS = Path(__file__).resolve().parents[3] / "rules" / "packs"


async def _send_fleet(bootstrap: str, topic: str, t0: float) -> int:
    gen = FleetGenerator(start_ts=t0, seed=11)
    events = [e for s in range(30) for e in gen.events_between(t0 + s * 30, t0 + (s + 1) * 30, 40, s / 30)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        by_key: dict[str, list[dict]] = {}
        for e in events:
            by_key.setdefault(FleetGenerator.key_of(e), []).append(e)
        for key, batch in by_key.items():
            for i in range(0, len(batch), 50):
                await producer.send_and_wait(topic, key=key.encode(),
                                             value=orjson.dumps({"kind": "batch", "events": batch[i:i + 50]}))
    finally:
        await producer.stop()
    return len(events)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[WorkerProcess]:
    w = WorkerProcess(tmp_path_factory.mktemp("auditor") / "home", kafka_bootstrap)
    w.start()
    try:
        sent = asyncio.run(_send_fleet(w.bootstrap, w.topic("events"), time.time() - 1200))
        w.wait_for("SELECT count() FROM events", lambda r: r[0][0] >= sent)
        w.wait_for("SELECT count() FROM killswitch_commands WHERE scope_value = 'dep-atlas-us'",
                   lambda r: r[0][0] >= 1)
        _cli(w, "killswitch", "issue", "--scope", "model=borealis-70b", "--action", "pause", "--reason",
             "refusals collapsed; pausing for review", "--operator", "alice")
        w.wait_for("SELECT count() FROM operator_actions", lambda r: r[0][0] >= 1)
        yield w
    finally:
        w.stop()


def _cli(w: WorkerProcess, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "streams.cli", *args], env=w.env, capture_output=True, text=True, check=False,
                          timeout=180)
    assert proc.returncode in ok, f"{args}: rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_query_goes_through_the_worker_api(worker: WorkerProcess, tmp_path: Path) -> None:
    out = json.loads(_cli(worker, "query", "model-history", "--model", "atlas-7b", "--format", "json").stdout)
    stored = worker.sql("SELECT count() FROM events FINAL WHERE request_model = 'atlas-7b'")[0][0]
    assert len(out["rows"]) == stored > 0
    log = json.loads(_cli(worker, "query", "killswitch-log", "--format", "json").stdout)
    rows = [dict(zip(log["columns"], r, strict=True)) for r in log["rows"]]
    policy = [r for r in rows if r["scope_value"] == "dep-atlas-us"]
    assert policy and all(r["detection_ids"] and r["issuer"].startswith("policy:") for r in policy)
    assert any(rule.startswith("frontier_") for r in policy for rule in r["rule_ids"])
    assert any(r["operators"] == ["alice"] for r in rows)
    csv_text = _cli(worker, "query", "operator-actions", "--format", "csv").stdout
    assert "alice" in csv_text and "refusals collapsed" in csv_text
    _cli(worker, "query", "detections-by-rule", "--format", "parquet", "-o", str(tmp_path / "r.parquet"))
    assert (tmp_path / "r.parquet").stat().st_size > 0
    refused = _cli(worker, "query", "--sql", "DROP TABLE events", ok=(2,))
    assert "read-only" in refused.stderr
    api = worker.get("/overseer/query/detections/?rule=frontier_self_exfiltration_sequence")
    assert api["rows"] and "evidence" in api["columns"]


def test_report_from_the_running_worker(worker: WorkerProcess, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    _cli(worker, "report", "--model", "atlas-7b", "-o", str(out))
    page = out.read_text()
    assert "Behaviour report: atlas-7b" in page and page.count("<svg") >= 4
    assert "dep-atlas-us" in page and "frontier_self_exfiltration_sequence" in page


def test_audit_verify_is_ok_on_the_workers_trail(worker: WorkerProcess) -> None:
    report = json.loads(_cli(worker, "audit", "verify", "--json").stdout)
    assert report["ok"], report
    heads = {t["table"]: t["head_seq"] for t in report["tables"]}
    assert heads["detections"] >= 2 and heads["killswitch_commands"] >= 2 and heads["operator_actions"] >= 1


def test_backtest_against_the_stored_events(worker: WorkerProcess, tmp_path: Path) -> None:
    same = json.loads(_cli(worker, "backtest", "--rules", str(PACKS), "--json").stdout)
    assert same["events"] > 0 and same["unchanged"] > 0 and not same["new"] and not same["lost"]
    assert any(c["scope"] == "deployment=dep-atlas-us" for c in same["commands"]["candidate"])
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    for f in PACKS.glob("*.yaml"):
        if f.name != "frontier-stable.yaml":
            shutil.copy(f, candidate)
    out = json.loads(_cli(worker, "backtest", "--rules", str(candidate), "--json").stdout)
    assert {h["rule_id"] for h in out["lost"]} >= {"frontier_self_exfiltration_sequence"}
    assert any(c["scope"] == "deployment=dep-atlas-us" for c in out["commands"]["lost"])


def test_verify_names_a_row_altered_by_hand_once_the_worker_is_gone(worker: WorkerProcess) -> None:
    """Last in this module: stops the worker, so the commands open the store directly."""
    seq, det_id = worker.sql("SELECT chain_seq, detection_id FROM detections WHERE chain_seq > 0 "
                             "ORDER BY chain_seq LIMIT 1 OFFSET 1")[0]
    worker.stop()
    tamper = ("import sys\nfrom streams.store.client import connect\n"
              "c = connect(sys.argv[1])\n"
              "c.command(\"ALTER TABLE detections UPDATE severity = 'info' WHERE detection_id = '\" + sys.argv[2] + \"'\","
              " settings={'mutations_sync': 2})\n")
    subprocess.run([sys.executable, "-c", tamper, f"chdb:///{(worker.home / 'clickhouse').resolve()}", det_id],
                   env=worker.env, check=True, timeout=120)
    out = _cli(worker, "audit", "verify", "--json", ok=(3,))
    report = json.loads(out.stdout)
    findings = [f for t in report["tables"] for f in t["findings"]]
    assert findings == [{"table": "detections", "kind": "changed", "chain_seq": seq, "row_id": det_id,
                         "detail": "content does not match its row_hash"}]
