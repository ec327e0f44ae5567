"""Label matchers over alerts, as in Alertmanager: ``name op value``.

Names are ``rule_id``, ``scope`` (``kind=value``), ``scope_kind``,
``scope_value``, ``severity`` and ``tag`` (true when any tag matches).
Operators are ``=``, ``!=``, ``=~`` and ``!~``; regular expressions are
RE2 (linear time — matchers come from operators over the API) and must
match the whole value.

>>> from schemas.detections import Scope
>>> m = Matcher(name="scope", op="=~", value="deployment=dep-.*")
>>> m.matches_labels({"scope": ["deployment=dep-1"]})
True
"""

from __future__ import annotations

from typing import Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.alerts import Alert

MatcherName = Literal["rule_id", "scope", "scope_kind", "scope_value", "severity", "tag"]
MatcherOp = Literal["=", "!=", "=~", "!~"]


class Matcher(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: MatcherName
    op: MatcherOp = "="
    value: str = Field(max_length=512)

    @field_validator("value")
    @classmethod
    def _regex_compiles(cls, value: str, info: Any) -> str:
        if info.data.get("op") in ("=~", "!~"):
            try:
                re2.compile(value)
            except re2.error as exc:
                raise ValueError(f"not a valid RE2 regular expression: {value!r} ({exc})") from exc
        return value

    def _one(self, candidate: str) -> bool:
        if self.op in ("=", "!="):
            return candidate == self.value
        return re2.fullmatch(self.value, candidate) is not None

    def matches_labels(self, labels: dict[str, list[str]]) -> bool:
        values = labels.get(self.name, [])
        hit = any(self._one(v) for v in values)
        return hit if self.op in ("=", "=~") else not hit

    def matches(self, alert: Alert) -> bool:
        return self.matches_labels(labels(alert))

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value!r}"


def labels(alert: Alert) -> dict[str, list[str]]:
    """The matchable labels of an alert (``tag`` is multi-valued)."""
    return {"rule_id": [alert.rule_id], "scope": [f"{alert.scope.kind}={alert.scope.value}"],
            "scope_kind": [str(alert.scope.kind)], "scope_value": [alert.scope.value],
            "severity": [str(alert.severity)], "tag": list(alert.tags)}


def parse_matcher(text: str) -> Matcher:
    """``rule_id=foo``, ``severity!=info``, ``tag=~agent\\..*`` -> :class:`Matcher`."""
    for op in ("=~", "!~", "!=", "="):
        name, sep, value = text.partition(op)
        if sep and name and "=" not in name and "!" not in name:
            return Matcher(name=name.strip(), op=op, value=value.strip())  # type: ignore[arg-type]
    raise ValueError(f"matcher {text!r}: expected NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX")


def all_match(matchers: list[Matcher], alert: Alert) -> bool:
    lab = labels(alert)
    return all(m.matches_labels(lab) for m in matchers)
