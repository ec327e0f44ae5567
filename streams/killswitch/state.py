"""The active set: which containments hold right now, per slot, with their leases.

Pure and synchronous. The worker's mirror (a Faust table) and every gateway
enforcer feed it the commands of the compacted kill-switch topic in topic
order; both then agree on what is active. The rules are exactly those that
survive compaction — the latest message of a slot is the slot's state:

- ``issue`` and ``extend`` carry the whole state of their slot and replace
  it; one whose lease has already run out leaves the slot empty (*expired*);
- ``release`` empties the slot;
- the same ``command_id`` as the slot's last message is a *duplicate* (no-op);
- a lease that runs out lifts the containment without any message.

Ordering by ``issued_at`` would disagree with compaction (and with skewed
clocks), so the topic order decides. Keeping a replayed, already-released
command off the topic is the publisher's job: :meth:`ActiveSet.seen_key`
says whether an idempotency key has been applied before.

>>> from datetime import datetime, timedelta, UTC
>>> from schemas.detections import Scope
>>> from schemas.killswitch import KillSwitchCommand
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> cmd = KillSwitchCommand(command_id="c1", idempotency_key="i", key_id="k", reason="r", issuer="x",
...     scope=Scope(kind="deployment", value="dep-1"), action="pause",
...     issued_at=t0, lease_expires_at=t0 + timedelta(minutes=10))
>>> s = ActiveSet()
>>> s.apply(cmd, now=t0.timestamp())
'applied'
>>> s.apply(cmd, now=t0.timestamp())
'duplicate'
>>> [e.action for e in s.lookup("deployment", "dep-1", now=t0.timestamp() + 60)]
['pause']
>>> s.lookup("deployment", "dep-1", now=t0.timestamp() + 601)
()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.killswitch import LADDER, KillSwitchCommand

ApplyResult = Literal["applied", "released", "duplicate", "expired"]
FLEET = "fleet"


@dataclass(frozen=True, slots=True)
class Effect:
    """One active command, flattened for fast checks."""

    slot: str
    command_id: str
    scope_kind: str
    scope_value: str
    action: str
    rank: int
    mode: str
    throttle_rate: float | None
    revoked_tools: frozenset[str]
    issued_at: float
    expires_at: float
    reason: str
    issuer: str
    command: KillSwitchCommand

    @classmethod
    def of(cls, cmd: KillSwitchCommand) -> Effect:
        action = str(cmd.action)
        return cls(slot=cmd.slot(), command_id=cmd.command_id, scope_kind=str(cmd.scope.kind),
                   scope_value=cmd.scope.value, action=action, rank=LADDER.index(action), mode=cmd.mode,
                   throttle_rate=cmd.throttle_rate, revoked_tools=frozenset(cmd.revoked_tools),
                   issued_at=cmd.issued_at.timestamp(), expires_at=cmd.lease_expires_at.timestamp(),
                   reason=cmd.reason, issuer=cmd.issuer, command=cmd)


class ActiveSet:
    """Slot -> active :class:`Effect`, plus an index ``kind -> value -> effects`` for lookups."""

    def __init__(self) -> None:
        self.slots: dict[str, Effect] = {}
        self.index: dict[str, dict[str, tuple[Effect, ...]]] = {}
        self._last: dict[str, str] = {}  # slot -> command_id of its last message
        self._keys: set[str] = set()  # idempotency keys applied so far
        self.stats: dict[str, int] = {"applied": 0, "released": 0, "duplicate": 0, "expired": 0}

    def apply(self, cmd: KillSwitchCommand, now: float) -> ApplyResult:
        """Apply one (already verified) command; say what it did."""
        result = self._apply(cmd, now)
        self.stats[result] += 1
        return result

    def _apply(self, cmd: KillSwitchCommand, now: float) -> ApplyResult:
        slot = cmd.slot()
        if self._last.get(slot) == cmd.command_id:
            return "duplicate"
        self._last[slot] = cmd.command_id
        self._keys.add(cmd.idempotency_key)
        self._remove(slot)
        if cmd.op == "release":
            return "released"
        if cmd.lease_expires_at.timestamp() <= now:
            return "expired"
        effect = Effect.of(cmd)
        self.slots[slot] = effect
        by_value = self.index.setdefault(effect.scope_kind, {})
        by_value[effect.scope_value] = (*by_value.get(effect.scope_value, ()), effect)
        return "applied"

    def seen_key(self, idempotency_key: str) -> bool:
        """Has a command with this idempotency key been applied? (The issuer skips replays with it.)"""
        return idempotency_key in self._keys

    def _remove(self, slot: str) -> None:
        old = self.slots.pop(slot, None)
        if old is None:
            return
        by_value = self.index[old.scope_kind]
        rest = tuple(e for e in by_value[old.scope_value] if e.slot != slot)
        if rest:
            by_value[old.scope_value] = rest
        else:
            del by_value[old.scope_value]

    def lookup(self, kind: str, value: str, now: float) -> tuple[Effect, ...]:
        """Unexpired effects on exactly ``kind=value`` (fleet effects match any value)."""
        by_value = self.index.get(kind)
        if not by_value:
            return ()
        if kind == FLEET:
            found: tuple[Effect, ...] = tuple(e for effects in by_value.values() for e in effects)
        else:
            found = by_value.get(value, ())
        return tuple(e for e in found if e.expires_at > now)

    def active(self, now: float) -> list[Effect]:
        """Every unexpired effect, strongest first."""
        return sorted((e for e in self.slots.values() if e.expires_at > now),
                      key=lambda e: (-e.rank, e.scope_kind, e.scope_value, e.mode))

    def get(self, slot: str, now: float) -> Effect | None:
        effect = self.slots.get(slot)
        return effect if effect is not None and effect.expires_at > now else None

    def expire(self, now: float) -> list[Effect]:
        """Drop effects whose lease ran out; return them (for audit or logging)."""
        gone = [e for e in self.slots.values() if e.expires_at <= now]
        for effect in gone:
            self._remove(effect.slot)
        return gone

    def would_downgrade(self, cmd: KillSwitchCommand, now: float) -> bool:
        """True when issuing ``cmd`` would replace a stronger, unexpired command in its slot.

        The issuer checks this before publishing a policy decision: a lower
        rung from another policy must not lift a pause by overwriting it.
        """
        current = self.get(cmd.slot(), now)
        return (cmd.op == "issue" and current is not None
                and current.rank > LADDER.index(str(cmd.action)))

    def commands(self) -> list[KillSwitchCommand]:
        """The commands behind the current slots (to rebuild a mirror or print `list`)."""
        return [e.command for e in self.slots.values()]

    def __len__(self) -> int:
        return len(self.slots)
