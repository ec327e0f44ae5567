"""Silences: mute matching, unprotected alerts for a while, with an owner and a reason.

A silence needs at least one matcher, an owner, a reason and an expiry in
the future (at most ``MAX_SILENCE``). It is refused when it would match an
open protected alert, or when a matcher targets protected alerts outright
(``severity=critical``, a ``frontier.*`` tag, a kill-switch rule). Even an
accepted silence never applies to a protected alert: the check runs again
at notification time and the refusal is counted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.alerts import Alert
from schemas.ids import stable_id
from streams.alerting.matchers import Matcher, all_match
from streams.alerting.safety import is_protected

MAX_SILENCE = timedelta(days=7)
_PROTECTED_PROBES = {"severity": ["critical"], "tag": ["frontier.x", "killswitch.x"],
                     "rule_id": ["policy.x", "killswitch.x"]}
_PROTECTED_PREFIXES = {"tag": ("frontier.", "killswitch"), "rule_id": ("policy.", "killswitch.")}


class SilenceRefused(ValueError):
    """The silence would mute a protected alert, or is malformed."""


class Silence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    silence_id: str
    matchers: list[Matcher] = Field(min_length=1)
    owner: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)
    created_by: str
    starts_at: datetime
    ends_at: datetime
    expired_by: str = ""
    updated_at: datetime

    @field_validator("owner", "reason")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at and not self.expired_by

    def matches(self, alert: Alert) -> bool:
        return all_match(self.matchers, alert)


def new_silence(matchers: list[Matcher], owner: str, reason: str, created_by: str, ends_at: datetime,
                now: datetime, open_alerts: list[Alert]) -> Silence:
    """Validate and build a silence; raise :class:`SilenceRefused` with the reason."""
    if ends_at <= now:
        raise SilenceRefused("ends_at must be in the future")
    if ends_at - now > MAX_SILENCE:
        raise SilenceRefused(f"a silence may last at most {MAX_SILENCE.days} days")
    for m in matchers:
        if m.op in ("=", "=~") and (any(m.matches_labels({m.name: [p]}) for p in _PROTECTED_PROBES.get(m.name, []))
                                    or (m.op == "=" and m.value.startswith(_PROTECTED_PREFIXES.get(m.name, "\0")))):
            raise SilenceRefused(f"matcher {m} targets safety-class or kill-switch alerts, which can never be "
                                 "silenced")
    silence = Silence(silence_id=stable_id("silence", owner, reason, now.isoformat(), *map(str, matchers)),
                      matchers=matchers, owner=owner, reason=reason, created_by=created_by, starts_at=now,
                      ends_at=ends_at, updated_at=now)
    hit = [a for a in open_alerts if is_protected(a) and silence.matches(a)]
    if hit:
        raise SilenceRefused(f"the silence would match {len(hit)} safety-class alert(s) (e.g. {hit[0].alert_id}, "
                             f"{hit[0].rule_id}), which can never be silenced; narrow the matchers")
    return silence


class SilenceSet:
    """The silences this worker knows, by id (loaded from ClickHouse, updated by the API)."""

    def __init__(self) -> None:
        self.by_id: dict[str, Silence] = {}

    def put(self, silence: Silence) -> None:
        old = self.by_id.get(silence.silence_id)
        if old is None or old.updated_at <= silence.updated_at:
            self.by_id[silence.silence_id] = silence

    def expire(self, silence_id: str, actor: str, now: datetime) -> Silence:
        silence = self.by_id.get(silence_id)
        if silence is None:
            raise KeyError(silence_id)
        expired = silence.model_copy(update={"expired_by": actor, "ends_at": min(silence.ends_at, now),
                                             "updated_at": now})
        self.by_id[silence_id] = expired
        return expired

    def active(self, now: datetime | None = None) -> list[Silence]:
        now = now or datetime.now(UTC)
        return sorted((s for s in self.by_id.values() if s.active(now)), key=lambda s: s.ends_at)

    def silencing(self, alert: Alert, now: datetime) -> Silence | None:
        """The active silence that matches ``alert`` (ignores protected alerts: see `matching`)."""
        if is_protected(alert):
            return None
        return self.matching(alert, now)

    def matching(self, alert: Alert, now: datetime) -> Silence | None:
        for silence in self.active(now):
            if silence.matches(alert):
                return silence
        return None
