"""Auto-resolve on a real worker: the quiet-period sweep travels through Kafka to the partition's owner.

Short timings (quiet 2 s, keep firing 1 s, sweep every second) so the whole
lifecycle fits in seconds; the alert must resolve on its own with
``resolution="auto"`` and no actor, and a detection afterwards opens a new alert.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.oncall.harness import (
    OnCallWorker,
    destructive,
    now_minus,
    send,
    write_config,
)

pytestmark = pytest.mark.integration


def test_a_quiet_alert_clears_then_resolves_by_itself(tmp_path: Path, kafka_bootstrap: str) -> None:
    home = tmp_path / "home"
    env = {**write_config(home, None), "OVERSEER_ALERT_RESOLVE_AFTER_S": "2", "OVERSEER_ALERT_KEEP_FIRING_FOR_S": "1",
           "OVERSEER_ALERT_SWEEP_INTERVAL_S": "1"}
    w = OnCallWorker(home, kafka_bootstrap, env=env)
    w.start()
    try:
        send(w.bootstrap, w.topic("events"), destructive(now_minus(3), "dep-quiet"))
        states = w.wait_for("SELECT state, actor FROM alerts WHERE scope_value = 'dep-quiet' ORDER BY updated_at",
                            lambda r: r and r[-1][0] == "resolved", timeout=60)
        assert states[0] == ["firing", ""] and states[-1] == ["resolved", ""]
        status, body = w.request("GET", "/api/v1/alerts?scope=deployment=dep-quiet&state=resolved", token="viewer")
        [alert] = body["alerts"]
        assert status == 200 and alert["resolution"] == "auto" and alert["clearing_since"] is None
        # the clearing step was recorded before the resolution (hysteresis), as its own state change
        payloads = w.sql(f"SELECT JSONExtractString(payload, 'clearing_since') FROM alerts "
                         f"WHERE alert_id = '{alert['alert_id']}' ORDER BY updated_at")
        assert any(p[0] for p in payloads)
        send(w.bootstrap, w.topic("events"), destructive(now_minus(1), "dep-quiet", run="run-quiet-2"))
        w.wait_for("SELECT uniqExact(alert_id) FROM alerts WHERE scope_value = 'dep-quiet'", lambda r: r[0][0] == 2)
    finally:
        w.stop()
