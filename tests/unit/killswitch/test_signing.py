"""Ed25519 signing: canonical payloads, rejection reasons, key files and rotation."""

from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.killswitch import Heartbeat, KillSwitchCommand
from streams.killswitch.signing import KeyRing, Signer, load_or_create_signing_key
from tests.unit.killswitch.builders import T0, make_command


def test_payload_is_canonical_across_timezones_microseconds_and_dict_order() -> None:
    utc = make_command(issued_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
                       evidence={"rule_versions": {"b": "2", "a": "1"}})
    plus2 = make_command(issued_at=datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
                         evidence={"rule_versions": {"a": "1", "b": "2"}})
    naive = make_command(issued_at=datetime(2026, 3, 1, 12, 0), evidence={"rule_versions": {"a": "1", "b": "2"}})
    assert utc.signing_payload() == plus2.signing_payload() == naive.signing_payload()
    text = utc.signing_payload().decode()
    assert '"issued_at":"2026-03-01T12:00:00.000000Z"' in text
    assert " " not in text.replace("test reason", "")
    assert text.index('"action"') < text.index('"command_id"') < text.index('"scope"')


def test_payload_survives_a_json_round_trip(signer: Signer) -> None:
    cmd = signer.sign(make_command(issued_at=T0.replace(microsecond=123456)))
    again = KillSwitchCommand.model_validate_json(cmd.model_dump_json())
    assert again.signing_payload() == cmd.signing_payload()
    assert "signature" not in json.loads(cmd.signing_payload())


def test_sign_then_verify_ok(signer: Signer, tmp_path: Path) -> None:
    cmd = signer.sign(make_command())
    assert cmd.key_id == "key-1" and cmd.signature
    ring = KeyRing.load(tmp_path / "keys" / "keyring.json")
    result = ring.verify(cmd.model_dump_json().encode())
    assert result.ok and result.command == cmd


def test_altered_command_is_rejected(signer: Signer) -> None:
    ring = KeyRing({"key-1": signer.public_key})
    cmd = signer.sign(make_command())
    for change in ({"action": "flag"}, {"lease_expires_at": T0 + timedelta(days=30)}, {"mode": "shadow"}):
        assert ring.verify(cmd.model_copy(update=change)).reason == "bad_signature"


def test_forged_command_with_a_known_key_id_is_rejected(signer: Signer) -> None:
    ring = KeyRing({"key-1": signer.public_key})
    forger = Signer(Ed25519PrivateKey.generate(), "key-1")
    assert ring.verify(forger.sign(make_command())).reason == "bad_signature"
    unsigned = make_command(key_id="key-1")
    assert ring.verify(unsigned).reason == "bad_signature"


def test_unknown_key_and_malformed() -> None:
    ring = KeyRing()
    other = Signer(Ed25519PrivateKey.generate(), "stranger")
    assert ring.verify(other.sign(make_command())).reason == "unknown_key"
    assert ring.verify(b"{not json").reason == "malformed"
    assert ring.verify({"command_id": "x"}).reason == "malformed"
    good = other.sign(make_command()).model_dump(mode="json")
    good["signature"] = "***not base64***"
    assert KeyRing({"stranger": other.public_key}).verify(good).reason == "bad_signature"


def test_key_file_mode_public_key_and_keyring(tmp_path: Path) -> None:
    path = tmp_path / "k" / "ks.pem"
    signer = load_or_create_signing_key(path, "key-1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.with_name("ks.pem.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    ring_file = json.loads((path.parent / "keyring.json").read_text())
    assert base64.b64decode(ring_file["key-1"]) == signer.public_key.public_bytes_raw()
    reloaded = load_or_create_signing_key(path, "key-1")
    assert reloaded.public_key.public_bytes_raw() == signer.public_key.public_bytes_raw()


def test_rotation_old_key_verifies_until_removed(tmp_path: Path) -> None:
    old = load_or_create_signing_key(tmp_path / "old.pem", "2026-01")
    new = load_or_create_signing_key(tmp_path / "new.pem", "2026-03")
    ring = KeyRing.load(tmp_path / "keyring.json")
    assert set(ring.to_dict()) == {"2026-01", "2026-03"}
    by_old, by_new = old.sign(make_command()), new.sign(make_command(command_id="c2"))
    assert ring.verify(by_old).ok and ring.verify(by_new).ok
    ring.remove("2026-01")
    assert ring.verify(by_old).reason == "unknown_key" and ring.verify(by_new).ok


def test_heartbeat_signature_is_not_interchangeable_with_a_command(signer: Signer) -> None:
    ring = KeyRing({"key-1": signer.public_key})
    hb = signer.sign_heartbeat(Heartbeat(monitor_id="m", seq=1, ts=T0, key_id=""))
    assert ring.verify_heartbeat(hb.model_dump_json().encode())[0] == "ok"
    assert ring.verify_heartbeat(hb.model_copy(update={"seq": 2}))[0] == "bad_signature"
    assert hb.signing_payload().startswith(b'{"heartbeat":')
