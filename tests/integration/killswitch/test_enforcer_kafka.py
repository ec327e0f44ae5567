"""The enforcer against the real broker: signed commands, replays, leases, forgeries, heartbeats."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.detections import Scope
from streams.enforcer import Enforcer
from streams.killswitch.commands import build_manual_issue
from streams.killswitch.heartbeat import HeartbeatPublisher
from streams.killswitch.signing import KeyRing, Signer
from streams.killswitch.topic import publish_commands
from tests.integration.killswitch.conftest import eventually

pytestmark = pytest.mark.integration


def pause(signer: Signer, dep: str, lease_s: float = 3600, reason: str = "frontier exfil") -> object:
    return build_manual_issue(Scope(kind="deployment", value=dep), "pause", ["alice"], reason, signer,
                              datetime.now(UTC), lease_s)


def test_signed_commands_replays_forgeries_and_leases(kafka_bootstrap: str, topics: tuple[str, str],
                                                      signer: Signer) -> None:
    ks, hb = topics
    ring = KeyRing({"key-1": signer.public_key})

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        beat = HeartbeatPublisher(producer, hb, signer, interval_s=0.2)
        beat.start()
        enforcer = Enforcer(kafka_bootstrap, ring, topic=ks, heartbeat_topic=hb, max_heartbeat_age_s=10)
        await enforcer.start()
        try:
            assert enforcer.check(deployment="dep-1", new_run=True).allowed
            cmd = pause(signer, "dep-1")
            await publish_commands(kafka_bootstrap, ks, [cmd])
            await eventually(lambda: not enforcer.check(deployment="dep-1").allowed)
            decision = enforcer.check(deployment="dep-1", model="m")
            assert decision.action == "pause" and decision.command_ids == (cmd.command_id,)
            assert enforcer.check(deployment="dep-2").allowed

            # the same command again: still exactly one active command
            await publish_commands(kafka_bootstrap, ks, [cmd, cmd])
            await eventually(lambda: enforcer.stats["duplicate"] == 2)
            assert len(enforcer.active) == 1 and enforcer.stats["accepted"] == 1

            # a forged command (wrong private key, known key id) and a modified one are rejected and counted
            forged = Signer(Ed25519PrivateKey.generate(), "key-1").sign(
                pause(signer, "dep-3").model_copy(update={"key_id": "key-1"}))
            modified = pause(signer, "dep-4").model_copy(update={"action": "terminate"})
            for bad in (forged, modified):
                await producer.send_and_wait(ks, bad.model_dump_json().encode(), key=bad.kafka_key())
            await eventually(lambda: enforcer.stats["rejected_bad_signature"] == 2)
            assert enforcer.check(deployment="dep-3").allowed and enforcer.check(deployment="dep-4").allowed

            # a short lease runs out: allowed again without any message
            await publish_commands(kafka_bootstrap, ks, [pause(signer, "dep-5", lease_s=1.5)])
            await eventually(lambda: not enforcer.check(deployment="dep-5").allowed)
            await eventually(lambda: enforcer.check(deployment="dep-5").allowed)

            # a gateway that starts later rebuilds the same state from the compacted topic
            late = Enforcer(kafka_bootstrap, ring, topic=ks, heartbeat_topic=hb)
            await late.start()
            try:
                assert not late.check(deployment="dep-1").allowed
                assert late.check(deployment="dep-5").allowed
                assert late.stats["rejected_bad_signature"] == 2 and late.stats["accepted"] == 1
            finally:
                await late.stop()
        finally:
            await enforcer.stop()
            await beat.stop()
            await producer.stop()

    asyncio.run(scenario())


def test_heartbeat_loss_fails_closed_and_says_why(kafka_bootstrap: str, topics: tuple[str, str],
                                                 signer: Signer) -> None:
    ks, hb = topics
    ring = KeyRing({"key-1": signer.public_key})

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        beat = HeartbeatPublisher(producer, hb, signer, interval_s=0.2)
        beat.start()
        await eventually(lambda: beat.stats["published"] >= 1)
        enforcer = Enforcer(kafka_bootstrap, ring, topic=ks, heartbeat_topic=hb, max_heartbeat_age_s=1.5,
                            fail_closed_action="no_new_runs")
        await enforcer.start()
        try:
            await eventually(lambda: enforcer.stats["heartbeats"] >= 2)
            assert enforcer.check(deployment="dep-1", new_run=True).allowed
            await beat.stop()  # the monitor dies
            await eventually(lambda: not enforcer.check(deployment="dep-1", new_run=True).allowed)
            decision = enforcer.check(deployment="dep-1", new_run=True)
            assert decision.fail_closed and decision.action == "no_new_runs"
            assert "dead-man's switch: no verified monitor heartbeat" in decision.reasons[-1]
            assert enforcer.check(deployment="dep-1").allowed  # running work continues under no_new_runs
            beat.start()  # the monitor is back
            await eventually(lambda: enforcer.check(deployment="dep-1", new_run=True).allowed)
        finally:
            await enforcer.stop()
            await beat.stop()
            await producer.stop()

    asyncio.run(scenario())


def test_expired_commands_on_the_topic_are_rejected(kafka_bootstrap: str, topics: tuple[str, str],
                                                   signer: Signer) -> None:
    ks, _ = topics
    old = build_manual_issue(Scope(kind="model", value="m1"), "terminate", ["alice"], "old", signer,
                             datetime.now(UTC) - timedelta(hours=3), 3600)

    async def scenario() -> None:
        await publish_commands(kafka_bootstrap, ks, [old])
        enforcer = Enforcer(kafka_bootstrap, KeyRing({"key-1": signer.public_key}), topic=ks, heartbeat_topic=None)
        await enforcer.start()
        try:
            assert enforcer.stats["rejected_expired"] == 1 and enforcer.check(model="m1").allowed
        finally:
            await enforcer.stop()

    asyncio.run(scenario())
