"""Hot reload: changed rule files are validated and swapped in; state of unchanged rules survives;
a broken file is refused, the old set keeps running, and an alert says why (real broker, real worker)."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rules.engine import builtin_packs
from schemas.ids import new_event_id
from tests.integration.test_pipeline import exfiltration
from tests.integration.workerproc import WorkerProcess

pytestmark = pytest.mark.integration

EXTRA_RULE = """
- rule: lab_payment_attempt
  title: Agent attempted a payment
  description: Added while the worker runs, to prove hot reload.
  severity: medium
  tags: [maturity_incubating, frontier.resource_acquisition]
  runbook: https://runbooks.example/lab_payment_attempt
  condition: action_category = "payment"
  output: "payment by {agent_run_id}"
"""


def _payment(t: datetime) -> dict:
    return {"event_id": new_event_id(), "event_type": "tool_call", "ts": t.isoformat(), "agent_run_id": "run-pay",
            "deployment_id": "dep-1", "request_model": "m", "tool_name": "stripe_charge", "action_category": "payment"}


def test_reload_swaps_rules_keeps_state_and_refuses_a_broken_file(tmp_path: Path, kafka_bootstrap: str) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(builtin_packs(), rules_dir)
    worker = WorkerProcess(tmp_path / "home", kafka_bootstrap,
                           env={"OVERSEER_RULES_PATHS": json.dumps([str(rules_dir)]),
                                "OVERSEER_RULES_RELOAD_INTERVAL_S": "0.5"})
    worker.start()
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    read_weights, egress = exfiltration(t0)
    try:
        # before: no rule for payments; the first step of the exfiltration sequence is seen
        worker.send([_payment(t0), read_weights])
        worker.wait_for("SELECT count() FROM events", lambda r: r[0][0] == 2)
        time.sleep(1.0)  # one reload tick: the watcher takes its first fingerprint

        (rules_dir / "lab-incubating.yaml").write_text(EXTRA_RULE)
        worker.wait_counter("rules_reloads", 1)
        worker.send([_payment(t0 + timedelta(seconds=5)), egress])
        worker.wait_for("SELECT count() FROM detections FINAL WHERE rule_id = 'lab_payment_attempt'",
                        lambda r: r[0][0] == 1)
        # the sequence rule did not change, so its half-seen match survived the swap
        worker.wait_for("SELECT count() FROM detections FINAL WHERE rule_id = 'frontier_self_exfiltration_sequence'",
                        lambda r: r[0][0] == 1)

        # a broken file is refused: an alert says why, and the running rules keep detecting
        (rules_dir / "lab-incubating.yaml").write_text(EXTRA_RULE.replace('action_category = "payment"',
                                                                          'action_category = = "payment"'))
        worker.wait_counter("rules_reload_failures", 1)
        rows = worker.wait_for("SELECT summary FROM alerts FINAL WHERE rule_id = 'monitor.rules_reload_failed'",
                               lambda r: len(r) >= 1)
        assert "lab-incubating.yaml" in rows[0][0]
        worker.send([_payment(t0 + timedelta(seconds=9))])
        worker.wait_for("SELECT count() FROM detections FINAL WHERE rule_id = 'lab_payment_attempt'",
                        lambda r: r[0][0] == 2)
    finally:
        worker.stop()
