"""End to end on the real broker: a breach becomes exactly one command; the CLI round trip."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from typer.testing import CliRunner

from rules.items import Location, RawItem
from rules.policy import compile_items
from streams.commands.killswitch import killswitch_app
from streams.enforcer import Enforcer
from streams.killswitch.commands import build_command
from streams.killswitch.signing import KeyRing, Signer
from streams.killswitch.topic import publish_commands
from tests.integration.killswitch.conftest import eventually

pytestmark = pytest.mark.integration
PACK = Path(__file__).resolve().parents[3] / "rules" / "packs" / "policies-stable.yaml"


class _Ctx:
    def compile_condition(self, source: str, location: Location) -> None:
        raise AssertionError("unused")

    def error(self, location: Location, code: str, message: str, hint: str = "") -> None:
        raise AssertionError(f"{location}: {code} {message}")


def detection(n: int, deployment: str) -> dict[str, object]:
    return {"detection_id": f"det-{n}", "kind": "rule", "rule_id": "frontier.weights_exfil", "rule_version": "1",
            "severity": "critical", "tags": ["frontier.exfiltration"], "mode": "enforce",
            "scope": {"kind": "agent_run", "value": f"run-{n}"}, "ts": "2026-03-01T12:00:00Z",
            "tenant_id": "t1", "deployment_id": deployment, "model": "m1", "agent_run_id": f"run-{n}",
            "event_ids": [f"ev-{n}"], "evidence": {},
            "source_offsets": [{"topic": "overseer.events.v1", "partition": 0, "offset": n}]}


async def count_messages(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


def test_breach_gives_exactly_one_command_and_the_cap_holds(kafka_bootstrap: str, topics: tuple[str, str],
                                                            signer: Signer) -> None:
    ks, _ = topics
    raw = yaml.safe_load(PACK.read_text())
    engine = compile_items([RawItem("policy", r["policy"], r, Location(str(PACK), 1, 1)) for r in raw], _Ctx())
    ring = KeyRing({"key-1": signer.public_key})

    def decide(dets: list[dict[str, object]]) -> list[object]:
        return [d for det in dets for d in engine.on_detection(det, now=0.0)]

    async def scenario() -> None:
        enforcer = Enforcer(kafka_bootstrap, ring, topic=ks, heartbeat_topic=None)
        await enforcer.start()
        try:
            [decision] = decide([detection(1, "dep-1")])
            cmd = build_command(decision, signer, datetime.now(UTC), "worker-test")
            await publish_commands(kafka_bootstrap, ks, [cmd])
            await eventually(lambda: not enforcer.check(deployment="dep-1").allowed)
            # the same breach replayed: the engine emits nothing, and a replayed publish is a duplicate
            assert decide([detection(1, "dep-1")]) == []
            again = build_command(decision, signer, datetime.now(UTC), "worker-test")
            assert again.command_id == cmd.command_id
            # the blast-radius cap (20% of 20 deployments = 4): the 5th and 6th deployments need a human
            outcomes = [d.outcome for d in decide([detection(n, f"dep-{n}") for n in range(2, 7)])]
            assert outcomes == ["command"] * 3 + ["needs_confirmation"] * 2
            assert len(enforcer.active) == 1 and enforcer.stats["accepted"] == 1
        finally:
            await enforcer.stop()
        assert await count_messages(kafka_bootstrap, ks) == 1

    asyncio.run(scenario())


def test_cli_issue_list_extend_release_round_trip(kafka_bootstrap: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"clitest{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("OVERSEER_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("OVERSEER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OVERSEER_TOPIC_PREFIX", prefix)
    app = typer.Typer()
    app.add_typer(killswitch_app, name="killswitch")
    cli = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = cli.invoke(app, ["killswitch", *args])
        assert result.exit_code == code, result.output
        return result.output

    issued = json.loads(run("issue", "--scope", "deployment=dep-7", "--action", "revoke_tools", "--tool", "bash",
                            "--reason", "odd egress", "--operator", "alice", "--lease", "30m", "--json"))
    listed = json.loads(run("list", "--json"))["active"]
    assert [(r["scope"], r["action"], r["revoked_tools"], r["operators"]) for r in listed] == \
        [("deployment=dep-7", "revoke_tools", ["bash"], ["alice"])]
    assert listed[0]["command_id"] == issued["command_id"]

    extended = json.loads(run("extend", "--scope", "deployment=dep-7", "--lease", "2h", "--operator", "bob",
                              "--reason", "still looking", "--json"))
    assert extended["op"] == "extend" and extended["lease_expires_at"] > issued["lease_expires_at"]

    run("issue", "--scope", "fleet", "--action", "pause", "--reason", "drill", "--operator", "alice")
    assert "two distinct operators" in run("release", "--scope", "fleet", "--operator", "alice",
                                           "--reason", "drill over", code=1)
    assert "two distinct operators" in run("release", "--scope", "fleet", "--operator", "alice",
                                           "--second-operator", "alice", "--reason", "drill over", code=1)
    run("release", "--scope", "fleet", "--operator", "alice", "--second-operator", "bob", "--reason", "drill over")
    run("release", "--scope", "deployment=dep-7", "--operator", "carol", "--reason", "false positive")
    assert json.loads(run("list", "--json"))["active"] == []
    assert "nothing active" in run("release", "--scope", "deployment=dep-7", "--operator", "carol",
                                   "--reason", "again", code=1)
    assert "Missing option '--reason'" in run("issue", "--scope", "model=m", "--action", "pause",
                                              "--operator", "alice", code=2)
    # the key the CLI created is the one a gateway verifies with
    ring = KeyRing.load(tmp_path / "home" / "keys" / "keyring.json")
    assert list(ring.to_dict()) == ["local-dev-1"]
