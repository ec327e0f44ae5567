"""The routing tree: which receivers hear about which alerts, and how often.

A YAML file, shaped like Alertmanager's::

    receivers:
      - name: oncall-hook
        webhook: {url: "https://hooks.example/overseer"}
      - name: team-slack
        slack: {url: "https://hooks.slack.com/services/..."}
      - name: pager
        pagerduty: {routing_key: "R0UT1NGKEY", url: "https://events.pagerduty.com/v2/enqueue"}
    route:
      receiver: oncall-hook          # the root catches everything
      group_by: [rule_id, scope]
      group_wait: 10s                # wait for more alerts of a new group before the first notification
      group_interval: 1m             # at most one update per group this often
      repeat_interval: 4h            # re-send a still-firing group
      routes:
        - matchers: ["severity=critical"]
          receiver: pager
          continue: true             # keep looking at the next siblings
          escalation:
            - {after: 15m, receiver: team-slack}   # unacknowledged critical: tell the next one
    delivery: {attempts: 5, backoff: 1s, max_backoff: 30s, timeout: 10s}

A node matches when all its matchers match; its children are tried in
order, the first match wins unless it says ``continue``; when no child
matches, the node itself takes the alert. Children inherit every timing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rules.policy import parse_duration
from schemas.alerts import Alert
from streams.alerting.matchers import Matcher, all_match, labels, parse_matcher

RECEIVER_KINDS = ("webhook", "slack", "pagerduty")
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"


class RoutingError(ValueError):
    """The routing file is malformed; the message says where."""


@dataclass(frozen=True)
class Receiver:
    name: str
    kind: str
    url: str
    routing_key: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Escalation:
    after_s: float
    receiver: str


@dataclass(frozen=True)
class Delivery:
    attempts: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    timeout_s: float = 10.0


@dataclass
class Route:
    path: str
    receiver: str
    matchers: list[Matcher]
    group_by: list[str]
    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float
    continue_: bool = False
    escalation: list[Escalation] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)

    def match(self, alert: Alert) -> list[Route]:
        """The routes that take ``alert`` (empty when this node does not match)."""
        if not all_match(self.matchers, alert):
            return []
        found: list[Route] = []
        for child in self.routes:
            hit = child.match(alert)
            found += hit
            if hit and not child.continue_:
                break
        return found or [self]

    def group_labels(self, alert: Alert) -> str:
        lab = labels(alert)
        return ",".join(f"{name}={'|'.join(lab.get(name, []))}" for name in self.group_by)


@dataclass
class RoutingConfig:
    receivers: dict[str, Receiver]
    route: Route
    delivery: Delivery

    def routes_for(self, alert: Alert) -> list[Route]:
        return self.route.match(alert)


def _seconds(node: dict[str, Any], key: str, default: float, where: str) -> float:
    try:
        return parse_duration(node.get(key, default))
    except ValueError as exc:
        raise RoutingError(f"{where}.{key}: {exc}") from exc


def _receiver(raw: Any, where: str) -> Receiver:
    if not isinstance(raw, dict) or not raw.get("name"):
        raise RoutingError(f"{where}: a receiver needs a name")
    kinds = [k for k in RECEIVER_KINDS if k in raw]
    if len(kinds) != 1:
        raise RoutingError(f"{where} ({raw['name']}): exactly one of {', '.join(RECEIVER_KINDS)} is required")
    spec = raw[kinds[0]] or {}
    url = spec.get("url") or (PAGERDUTY_URL if kinds[0] == "pagerduty" else "")
    if not url:
        raise RoutingError(f"{where} ({raw['name']}): {kinds[0]}.url is required")
    if kinds[0] == "pagerduty" and not spec.get("routing_key"):
        raise RoutingError(f"{where} ({raw['name']}): pagerduty.routing_key is required")
    return Receiver(name=str(raw["name"]), kind=kinds[0], url=str(url), routing_key=str(spec.get("routing_key", "")),
                    headers={str(k): str(v) for k, v in (spec.get("headers") or {}).items()})


def _route(raw: Any, parent: Route | None, path: str, receivers: dict[str, Receiver]) -> Route:
    if not isinstance(raw, dict):
        raise RoutingError(f"{path}: expected a mapping")
    receiver = raw.get("receiver", parent.receiver if parent else None)
    if receiver not in receivers:
        raise RoutingError(f"{path}.receiver: unknown receiver {receiver!r} (known: {', '.join(receivers)})")
    try:
        matchers = [parse_matcher(m) if isinstance(m, str) else Matcher.model_validate(m)
                    for m in raw.get("matchers") or []]
    except ValueError as exc:
        raise RoutingError(f"{path}.matchers: {exc}") from exc
    escalation = []
    for i, step in enumerate(raw.get("escalation") or []):
        if step.get("receiver") not in receivers:
            raise RoutingError(f"{path}.escalation[{i}].receiver: unknown receiver {step.get('receiver')!r}")
        escalation.append(Escalation(_seconds(step, "after", 900, f"{path}.escalation[{i}]"), step["receiver"]))
    route = Route(
        path=path, receiver=receiver, matchers=matchers,
        group_by=list(raw.get("group_by", parent.group_by if parent else ["rule_id", "scope"])),
        group_wait_s=_seconds(raw, "group_wait", parent.group_wait_s if parent else 10, path),
        group_interval_s=_seconds(raw, "group_interval", parent.group_interval_s if parent else 60, path),
        repeat_interval_s=_seconds(raw, "repeat_interval", parent.repeat_interval_s if parent else 4 * 3600, path),
        continue_=bool(raw.get("continue", False)), escalation=escalation)
    route.routes = [_route(child, route, f"{path}.routes[{i}]", receivers)
                    for i, child in enumerate(raw.get("routes") or [])]
    return route


def parse_routing(doc: Any) -> RoutingConfig:
    if not isinstance(doc, dict):
        raise RoutingError("routing: expected a mapping with receivers and route")
    receivers: dict[str, Receiver] = {}
    for i, raw in enumerate(doc.get("receivers") or []):
        r = _receiver(raw, f"receivers[{i}]")
        if r.name in receivers:
            raise RoutingError(f"receivers[{i}]: duplicate receiver name {r.name!r}")
        receivers[r.name] = r
    if "route" not in doc:
        raise RoutingError("route: the root route is required")
    d = doc.get("delivery") or {}
    delivery = Delivery(attempts=max(1, int(d.get("attempts", 5))), backoff_s=_seconds(d, "backoff", 1, "delivery"),
                        max_backoff_s=_seconds(d, "max_backoff", 30, "delivery"),
                        timeout_s=_seconds(d, "timeout", 10, "delivery"))
    return RoutingConfig(receivers=receivers, route=_route(doc["route"], None, "route", receivers), delivery=delivery)


def load_routing(path: Path) -> RoutingConfig:
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RoutingError(f"{path}: {exc}") from exc
    try:
        return parse_routing(doc)
    except RoutingError as exc:
        raise RoutingError(f"{path}: {exc}") from exc
