"""Builders shared by the kill-switch tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.detections import Scope
from schemas.killswitch import KillSwitchCommand

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_command(scope: str = "deployment=dep-1", action: str = "pause", *, command_id: str = "c1",
                 issued_at: datetime = T0, lease: timedelta = timedelta(hours=1), **extra: Any) -> KillSwitchCommand:
    kind, value = scope.split("=", 1)
    fields: dict[str, Any] = dict(command_id=command_id, idempotency_key=f"idem-{command_id}", key_id="",
                                  scope=Scope(kind=kind, value=value), action=action, reason="test reason",
                                  issued_at=issued_at, lease_expires_at=issued_at + lease, issuer="policy:test")
    fields.update(extra)
    return KillSwitchCommand(**fields)
