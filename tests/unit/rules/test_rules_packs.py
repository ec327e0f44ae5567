"""The built-in packs: their own tests pass, every rule is documented, and the demo scenarios are caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rules.engine import builtin_packs, load_engine
from rules.rule import RuleDef
from streams.commands.rules import rules_app
from tests.unit.rules.rules_helpers import ev

PACKS = ("frontier-stable.yaml", "agent-stable.yaml", "operational-stable.yaml")
ENGINE = load_engine()
PACK_RULES = [r for r in ENGINE.rules if Path(r.location.path).name in PACKS]


def test_overseer_rules_test_passes_on_the_builtin_packs() -> None:
    result = CliRunner().invoke(rules_app, ["test", str(builtin_packs()), "--json"])
    report = json.loads(result.output)
    assert result.exit_code == 0, [r for r in report["results"] if not r["passed"]]
    assert report["failed"] == 0 and report["passed"] >= 3 * len(PACK_RULES) // 2


def test_a_failing_rule_test_fails_the_command(tmp_path: Path) -> None:
    text = (builtin_packs() / "agent-stable.yaml").read_text().replace("expect: {hits: 7}", "expect: {hits: 6}")
    (tmp_path / "agent.yaml").write_text(text)
    result = CliRunner().invoke(rules_app, ["test", str(tmp_path)])
    assert result.exit_code == 1
    assert "FAIL agent_destructive_shell :: each demo command alone" in result.output
    assert "expected 6 hit(s), got 7" in result.output


def test_validate_reports_json_diagnostics_and_exit_code(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("- rule: x\n  title: t\n  severity: low\n  condition: tool_nme exists\n")
    result = CliRunner().invoke(rules_app, ["validate", str(tmp_path / "bad.yaml"), "--json"])
    assert result.exit_code == 1
    diag = json.loads(result.output)["diagnostics"][0]
    assert (diag["line"], diag["col"], diag["code"]) == (4, 14, "OVR201")
    ok = CliRunner().invoke(rules_app, ["validate", str(builtin_packs())])
    assert ok.exit_code == 0 and "ok:" in ok.output


@pytest.mark.parametrize("rule", PACK_RULES, ids=lambda r: r.id)
def test_every_pack_rule_is_complete(rule: RuleDef) -> None:
    assert rule.tests, "every built-in rule carries tests"
    assert any(c.get("expect", {}).get("hit") is False or c.get("expect", {}).get("hits") == 0
               for c in rule.tests), "and at least one case that must not fire"
    assert rule.title and rule.description and rule.runbook and rule.runbook.startswith("https://")
    assert rule.tags[0] == "maturity_stable"
    assert any(t.split(".")[0] in ("frontier", "agent", "ops") and "." in t for t in rule.tags)


DEMO_CTX = {"deployment_id": "dep-atlas-us", "request_model": "atlas-7b",
            "model_checkpoint": "/models/atlas-7b/ckpt-0042"}


def _demo_exfil() -> list[dict[str, object]]:
    run = {"agent_run_id": "run-exfil-7f3a", **DEMO_CTX}
    return [ev(1000, action_category="weights_access", tool_name="read_file",
               resource="/models/atlas-7b/ckpt-0042/model.safetensors", **run),
            ev(1030, action_category="net_egress", tool_name="http_post", dest_host="paste.exfil-drop.example",
               egress_bytes=4_000_000_000, **run)]


def _demo_burst() -> list[dict[str, object]]:
    cmds = ["rm -rf /var/lib/postgresql", "dd if=/dev/zero of=/dev/sda bs=1M", "mkfs.ext4 /dev/sdb1",
            "shred -u /etc/ssh/ssh_host_rsa_key", "chmod -R 777 /", "rm -rf --no-preserve-root /",
            "git push --force origin main", ":(){ :|:& };:"]
    return [ev(2000 + 2.5 * i, action_category="exec", tool_name="bash", tool_arguments=c,
               agent_run_id="run-wreck-1", **DEMO_CTX) for i, c in enumerate(cmds)]


def _normal(n: int = 400) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(n):
        t, run = 3000 + i * 0.5, f"run-ok-{i % 7}"
        kind = i % 5
        if kind == 0:
            out.append(ev(t, event_type="inference", operation="chat", input_tokens=900, output_tokens=300,
                          latency_ms=800.0, is_refusal=(i % 50 == 0), conversation_id=f"c{i % 11}",
                          scores={"jailbreak": 0.02, "injection": 0.01}, **DEMO_CTX))
        elif kind == 1:
            out.append(ev(t, action_category="fs_read", tool_name="read_file", resource=f"/workspace/src/m{i}.py",
                          agent_run_id=run, **DEMO_CTX))
        elif kind == 2:
            out.append(ev(t, action_category="net_egress", tool_name="http_get",
                          dest_host=("api.github.com", "pypi.org")[i % 2], egress_bytes=150_000, agent_run_id=run,
                          **DEMO_CTX))
        else:
            cmd = ("ls -la", "pytest -q", "git status", "python train_probe.py --dry-run")[i % 4]
            out.append(ev(t, action_category="exec", tool_name="bash", tool_arguments=cmd, agent_run_id=run,
                          **DEMO_CTX))
    return out


def _severities(hits: list) -> dict[str, set[str]]:  # type: ignore[type-arg]
    out: dict[str, set[str]] = {}
    for h in hits:
        out.setdefault(h.rule_id, set()).add(h.severity)
    return out


def test_demo_self_exfiltration_is_detected() -> None:
    engine = load_engine()
    hits = engine.process(_demo_exfil()) + engine.advance(10_000)
    found = _severities(hits)
    assert found["frontier_weights_access"] == {"high"}
    assert found["frontier_large_egress_unapproved_host"] == {"critical"}
    assert found["frontier_self_exfiltration_sequence"] == {"critical"}
    read = next(h for h in hits if h.rule_id == "frontier_weights_access")
    assert read.evidence["fields"]["resource"] == "/models/atlas-7b/ckpt-0042/model.safetensors"  # what matched
    assert read.evidence["fields"]["action_category"] == "weights_access"
    seq = next(h for h in hits if h.rule_id == "frontier_self_exfiltration_sequence")
    assert "frontier.self_exfiltration" in seq.tags and seq.agent_run_id == "run-exfil-7f3a"
    assert seq.scope_kind == "deployment" and seq.scope_value == "dep-atlas-us" and len(seq.event_ids) == 2


def test_demo_destructive_burst_is_detected() -> None:
    engine = load_engine()
    hits = engine.process(_demo_burst()) + engine.advance(10_000)
    found = _severities(hits)
    assert found["agent_destructive_shell"] <= {"medium", "high"}
    assert found["agent_destructive_shell_burst"] == {"high"}
    assert sum(h.rule_id == "agent_destructive_shell_burst" for h in hits) == 1


def test_normal_traffic_fires_nothing_high_or_critical() -> None:
    engine = load_engine()
    hits = engine.process(_normal()) + engine.advance(100_000)
    assert [(h.rule_id, h.severity) for h in hits if h.severity in ("high", "critical")] == []


def test_demo_mixed_into_normal_traffic_in_small_batches() -> None:
    engine = load_engine()
    events = sorted(_normal() + _demo_exfil() + _demo_burst(), key=lambda e: e["_ts"])  # type: ignore[arg-type, return-value]
    hits = []
    for i in range(0, len(events), 37):
        hits += engine.process(events[i:i + 37])
    hits += engine.advance(100_000)
    assert {h.rule_id for h in hits if h.severity == "critical"} == {
        "frontier_large_egress_unapproved_host", "frontier_self_exfiltration_sequence"}
