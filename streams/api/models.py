"""Request bodies of the API, validated with pydantic (errors become 422 with the field)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rules.policy import parse_duration
from streams.alerting.matchers import Matcher, parse_matcher


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AlertAction(_Body):
    reason: str = Field(default="", max_length=2000)


class ResolveAction(_Body):
    reason: str = Field(min_length=1, max_length=2000, description="why it is resolved (audited)")


class Expiry(_Body):
    ends_at: datetime | None = None
    duration: str | None = Field(default=None, description="e.g. 30m, 2h, 1d")

    @model_validator(mode="after")
    def _one_expiry(self) -> Expiry:
        if (self.ends_at is None) == (self.duration is None):
            raise ValueError("give exactly one of ends_at or duration")
        if self.duration is not None:
            parse_duration(self.duration)
        return self

    def expiry(self, now: datetime) -> datetime:
        if self.ends_at is not None:
            return self.ends_at if self.ends_at.tzinfo else self.ends_at.replace(tzinfo=UTC)
        return now + timedelta(seconds=parse_duration(self.duration))


class AlertSilence(Expiry):
    owner: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)


class SilenceCreate(AlertSilence):
    matchers: list[Matcher | str] = Field(min_length=1)

    def parsed(self) -> list[Matcher]:
        return [m if isinstance(m, Matcher) else parse_matcher(m) for m in self.matchers]

    @model_validator(mode="after")
    def _matchers_parse(self) -> SilenceCreate:
        self.parsed()
        return self


class SilenceExpire(_Body):
    reason: str = Field(min_length=1, max_length=2000)


class Release(_Body):
    scope: str = Field(description="KIND=VALUE, e.g. deployment=dep-1, or fleet")
    reason: str = Field(min_length=1, max_length=2000)
    mode: str = Field(default="enforce", pattern="^(enforce|shadow)$")


class Approve(_Body):
    reason: str = Field(default="", max_length=2000)
