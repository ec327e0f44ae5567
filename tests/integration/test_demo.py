"""`overseer demo --json`: the quickstart's promise, on the real broker and engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_accounts_for_every_event_and_acts(tmp_path: Path, kafka_bootstrap: str) -> None:
    env = {**os.environ, "OVERSEER_HOME": str(tmp_path / "home"), "OVERSEER_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "OVERSEER_TOPIC_PREFIX": "demo-test", "OVERSEER_APP_ID": "demo-test"}
    proc = subprocess.run([sys.executable, "-m", "streams.cli", "demo", "--duration", "40", "--json"],
                          env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["events_stored"] + summary["deadlettered"] == summary["events_sent"]
    assert summary["deadlettered"] == 5
    assert set(summary["deadletter_reasons"]) == {"malformed_json", "schema_violation", "unknown_event_type",
                                                   "not_an_object", "oversized"}
    assert summary["detections"] > 0 and summary["killswitch_commands"] > 0
    rules = " ".join(summary["detections_by_rule"])
    assert "frontier_self_exfiltration_sequence" in rules
    assert "agent_destructive_shell_burst" in rules
    assert "refusal_rate_shift" in rules
    assert {"action": "pause", "scope": "deployment=dep-atlas-us", "mode": "enforce",
            "issuer": "policy:pause_deployment_on_frontier_critical"} in summary["commands"]
