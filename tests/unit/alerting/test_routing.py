"""The routing tree: matchers, first match wins unless `continue`, inherited timings, clear errors."""

from __future__ import annotations

import pytest

from streams.alerting.book import AlertBook
from streams.alerting.routing import RoutingError, parse_routing
from tests.unit.alerting.conftest import T0, det

DOC = {
    "receivers": [{"name": "hook", "webhook": {"url": "http://h"}}, {"name": "slack", "slack": {"url": "http://s"}},
                  {"name": "pd", "pagerduty": {"routing_key": "k"}}],
    "route": {"receiver": "hook", "group_wait": "5s", "routes": [
        {"matchers": ["severity=critical"], "receiver": "pd", "continue": True, "escalation": [
            {"after": "10m", "receiver": "slack"}]},
        {"matchers": ["tag=~agent\\..*"], "receiver": "slack"},
        {"matchers": ["rule_id=~.*"], "receiver": "hook", "group_interval": "2m"},
    ]},
}


def test_first_match_wins_unless_continue_and_timings_are_inherited() -> None:
    cfg = parse_routing(DOC)
    book = AlertBook({})
    crit = book.on_detection(det(1, rule="a", severity="critical", tags=["agent.x"]), T0)
    plain = book.on_detection(det(2, rule="b"), T0)
    assert crit and plain
    assert [r.receiver for r in cfg.routes_for(crit)] == ["pd", "slack"]
    routes = cfg.routes_for(plain)
    assert [(r.receiver, r.group_wait_s, r.group_interval_s) for r in routes] == [("hook", 5.0, 120.0)]
    assert cfg.routes_for(crit)[0].escalation[0].after_s == 600
    assert cfg.receivers["pd"].url == "https://events.pagerduty.com/v2/enqueue"


@pytest.mark.parametrize(("doc", "message"), [
    ({"receivers": [], "route": {"receiver": "x"}}, "unknown receiver 'x'"),
    ({"receivers": [{"name": "a"}], "route": {"receiver": "a"}}, "exactly one of"),
    ({"receivers": [{"name": "a", "pagerduty": {}}], "route": {"receiver": "a"}}, "routing_key is required"),
    ({"receivers": [{"name": "a", "webhook": {"url": "u"}}], "route": {"receiver": "a", "group_wait": "soon"}},
     "route.group_wait: not a duration"),
    ({"receivers": [{"name": "a", "webhook": {"url": "u"}}],
      "route": {"receiver": "a", "routes": [{"matchers": ["bogus"]}]}}, "route.routes\\[0\\].matchers"),
])
def test_errors_say_where(doc: dict, message: str) -> None:
    with pytest.raises(RoutingError, match=message):
        parse_routing(doc)
