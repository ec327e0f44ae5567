"""Ed25519 signatures over the canonical payload of kill-switch commands and heartbeats.

A :class:`Signer` holds one private key and its ``key_id``; a :class:`KeyRing`
maps key ids to public keys. Rotation: add the new public key to every
enforcer's ring, switch the signer, and remove the old key once no command
signed by it is still needed — until then both verify.

>>> import tempfile, pathlib
>>> from datetime import datetime, timedelta, UTC
>>> from schemas.detections import Scope
>>> from schemas.killswitch import KillSwitchCommand
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> signer = load_or_create_signing_key(d / "k.pem", "k1")
>>> now = datetime(2026, 1, 1, tzinfo=UTC)
>>> cmd = signer.sign(KillSwitchCommand(command_id="c", idempotency_key="i", key_id="",
...     scope=Scope(kind="deployment", value="dep-1"), action="pause", reason="r",
...     issued_at=now, lease_expires_at=now + timedelta(hours=1), issuer="test"))
>>> ring = KeyRing.load(d / "keyring.json")
>>> ring.verify(cmd).reason
'ok'
>>> ring.verify(cmd.model_copy(update={"reason": "edited"})).reason
'bad_signature'
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ValidationError

from schemas.killswitch import Heartbeat, KillSwitchCommand

M = TypeVar("M", bound=BaseModel)
Reason = Literal["ok", "unknown_key", "bad_signature", "malformed"]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    reason: Reason
    command: KillSwitchCommand | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def public_key_b64(key: Ed25519PublicKey) -> str:
    """The 32 raw public-key bytes, base64 — the form used in keyring.json."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _b64(raw)


class Signer:
    """Signs commands and heartbeats with one Ed25519 private key."""

    def __init__(self, private_key: Ed25519PrivateKey, key_id: str) -> None:
        self.private_key = private_key
        self.key_id = key_id

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def sign_bytes(self, payload: bytes) -> str:
        return _b64(self.private_key.sign(payload))

    def sign(self, cmd: KillSwitchCommand) -> KillSwitchCommand:
        """A copy of ``cmd`` with this signer's ``key_id`` and a fresh signature."""
        unsigned = cmd.model_copy(update={"key_id": self.key_id, "signature": None})
        return unsigned.model_copy(update={"signature": self.sign_bytes(unsigned.signing_payload())})

    def sign_heartbeat(self, hb: Heartbeat) -> Heartbeat:
        unsigned = hb.model_copy(update={"key_id": self.key_id, "signature": None})
        return unsigned.model_copy(update={"signature": self.sign_bytes(unsigned.signing_payload())})


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def load_or_create_signing_key(path: Path, key_id: str) -> Signer:
    """Load the PEM private key at ``path``, creating it (mode 0600) if missing.

    Also (re)writes ``<path>.pub`` (PEM public key) and adds ``key_id`` to
    ``keyring.json`` next to it — the file to hand to gateway owners.
    """
    path = Path(path)
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
    else:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        _write_private(path, pem)
    pub = key.public_key()
    path.with_name(path.name + ".pub").write_bytes(
        pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    ring_path = path.parent / "keyring.json"
    ring = KeyRing.load(ring_path) if ring_path.exists() else KeyRing()
    ring.add(key_id, pub)
    ring.save(ring_path)
    return Signer(key, key_id)


class KeyRing:
    """key_id -> Ed25519 public key. Verifies commands and heartbeats."""

    def __init__(self, keys: dict[str, Ed25519PublicKey] | None = None) -> None:
        self.keys: dict[str, Ed25519PublicKey] = dict(keys or {})

    @classmethod
    def from_dict(cls, mapping: dict[str, str]) -> KeyRing:
        """From ``{key_id: base64 raw public key}`` (the keyring.json format)."""
        return cls({kid: Ed25519PublicKey.from_public_bytes(base64.b64decode(b64, validate=True))
                    for kid, b64 in mapping.items()})

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict[str, str]:
        return {kid: public_key_b64(k) for kid, k in sorted(self.keys.items())}

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    def add(self, key_id: str, key: Ed25519PublicKey) -> None:
        self.keys[key_id] = key

    def remove(self, key_id: str) -> None:
        self.keys.pop(key_id, None)

    def _check(self, key_id: str, payload: bytes, signature: str | None) -> tuple[Reason, str]:
        key = self.keys.get(key_id)
        if key is None:
            return "unknown_key", f"key id {key_id!r} is not in the key ring"
        if not signature:
            return "bad_signature", "unsigned"
        try:
            key.verify(base64.b64decode(signature, validate=True), payload)
        except (InvalidSignature, ValueError) as exc:
            return "bad_signature", f"signature does not match key {key_id!r} ({type(exc).__name__})"
        return "ok", ""

    def verify(self, cmd: KillSwitchCommand | bytes | dict[str, Any]) -> VerifyResult:
        """Verify a command given as a model, raw JSON bytes, or a dict."""
        try:
            model = _parse(KillSwitchCommand, cmd)
        except (ValidationError, ValueError) as exc:
            return VerifyResult("malformed", None, str(exc).splitlines()[0])
        reason, detail = self._check(model.key_id, model.signing_payload(), model.signature)
        return VerifyResult(reason, model, detail)

    def verify_heartbeat(self, hb: Heartbeat | bytes | dict[str, Any]) -> tuple[Reason, Heartbeat | None]:
        try:
            model = _parse(Heartbeat, hb)
        except (ValidationError, ValueError):
            return "malformed", None
        reason, _ = self._check(model.key_id, model.signing_payload(), model.signature)
        return reason, model


def _parse(cls: type[M], value: M | bytes | dict[str, Any]) -> M:
    if isinstance(value, cls):
        return value
    if isinstance(value, bytes | bytearray | str):
        return cls.model_validate_json(value)
    if isinstance(value, dict):
        return cls.model_validate(value)
    raise ValueError(f"cannot verify a {type(value).__name__}")
