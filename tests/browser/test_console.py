"""The console end to end in headless Chromium: see an alert, acknowledge it, release its kill-switch.

A real worker (real Kafka, the embedded ClickHouse) with API tokens gets the
demo's self-exfiltration events; the frontier rules raise a critical alert
and the policy pauses the deployment. The on-call engineer signs in with a
token, opens the alert (events, rule, timeline), acknowledges it, and
releases the pause from the kill-switch board; both actions must be in
``operator_actions``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.oncall.harness import (
    TOKENS,
    OnCallWorker,
    exfiltration,
    now_minus,
    send,
    write_config,
)

pytestmark = pytest.mark.integration
RULE = "frontier_large_egress_unapproved_host"
DEP = "dep-console-1"


@pytest.fixture()
def worker(tmp_path: Path, kafka_bootstrap: str) -> Iterator[OnCallWorker]:
    home = tmp_path / "home"
    w = OnCallWorker(home, kafka_bootstrap, env=write_config(home, None))
    w.start()
    try:
        yield w
    finally:
        w.stop()


def test_see_ack_and_release_from_the_console(worker: OnCallWorker, browser: Any, artifacts: Path) -> None:
    from playwright.sync_api import expect

    send(worker.bootstrap, worker.topic("events"), exfiltration(now_minus(5), dep=DEP))
    worker.wait_for(f"SELECT count() FROM killswitch_commands FINAL WHERE scope_value = '{DEP}' AND op = 'issue'",
                    lambda r: r[0][0] >= 1)
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"http://127.0.0.1:{worker.port}/console/")

    # a wrong token is refused; the on-call token signs in
    page.get_by_test_id("token").fill("wrong")
    page.get_by_test_id("login-button").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("unknown or revoked token")
    page.get_by_test_id("token").fill(TOKENS["oncall"][0])
    page.get_by_test_id("login-button").click()
    expect(page.get_by_test_id("who")).to_have_text("alice (oncall)")

    # the alert is listed with its severity and age; its evidence opens
    row = page.locator(f"tr[data-rule-id={RULE}][data-scope=\"deployment={DEP}\"]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("critical")
    expect(row.get_by_test_id("alert-state")).to_have_text("firing")
    row.get_by_test_id("open-alert").click()
    expect(page.get_by_test_id("rule")).to_contain_text(RULE)
    expect(page.get_by_test_id("events")).to_contain_text("paste.exfil-drop.example")
    expect(page.get_by_test_id("timeline")).to_contain_text("detection")
    page.screenshot(path=str(artifacts / "console-alert.png"), full_page=True)

    # acknowledge: the state changes in the list and in the detail
    page.get_by_test_id("detail-reason").fill("looking into it")
    page.get_by_test_id("ack").click()
    expect(page.get_by_test_id("detail-state")).to_have_text("acknowledged")
    expect(row.get_by_test_id("alert-state")).to_have_text(re.compile(r"acknowledged by alice"))
    page.screenshot(path=str(artifacts / "console-acknowledged.png"), full_page=True)

    # the board shows the pause, by whom and until when; release it
    board_row = page.locator("tr[data-testid=board-row]", has_text=f"deployment={DEP}")
    expect(board_row).to_contain_text("pause")
    expect(board_row).to_contain_text("policy:")
    board_row.get_by_test_id("release-reason").fill("sanctioned backup, verified with the owner")
    board_row.get_by_test_id("release").click()
    expect(page.locator("tr[data-testid=board-row]", has_text=f"deployment={DEP}")).to_have_count(0)
    page.screenshot(path=str(artifacts / "console-released.png"), full_page=True)

    rows = worker.wait_for("SELECT action, operator FROM operator_actions FINAL WHERE operator = 'alice' "
                           "ORDER BY action", lambda r: len(r) >= 2)
    assert rows == [["alert.ack", "alice"], ["killswitch.release", "alice"]]
