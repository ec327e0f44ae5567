"""Events from every format trigger the built-in rule packs (the issue's acceptance criterion)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from rules.engine import load_engine
from streams.ingest.adapters import AdapterOptions, adapt

RISKY = {"frontier_weights_access", "agent_destructive_shell", "frontier_large_egress_unapproved_host"}


def hits_for(events: list[dict[str, Any]]) -> set[str]:
    for e in events:
        e["_ts"] = datetime.fromisoformat(e["ts"]).timestamp()
    engine = load_engine()
    hits = engine.process(events) + engine.advance(max(e["_ts"] for e in events) + 3600)
    return {h.rule_id for h in hits}


@pytest.mark.parametrize("fmt", ["otlp", "litellm", "openai", "native"])
def test_risky_samples_trigger_the_builtin_rules(fmt: str, request: pytest.FixtureRequest) -> None:
    fixture = {"otlp": "otlp_export", "litellm": "litellm_payloads", "openai": "openai_objects",
               "native": "native_lines"}[fmt]
    payload = request.getfixturevalue(fixture)
    payloads = payload if fmt == "native" else [payload]
    options = AdapterOptions(keep_arguments=True)  # agent_destructive_shell matches the command text
    events = [e for p in payloads for e in adapt(fmt, p, options).events]
    assert RISKY <= hits_for(events)


def test_without_arguments_the_weights_and_egress_rules_still_fire(otlp_export: dict[str, Any]) -> None:
    events = adapt("otlp", otlp_export).events
    assert all("tool_arguments" not in e for e in events)
    assert {"frontier_weights_access", "frontier_large_egress_unapproved_host",
            "frontier_self_exfiltration_sequence"} <= hits_for(events)
