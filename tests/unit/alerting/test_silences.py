"""Silences need an owner, a reason and an expiry, and never mute safety-class or kill-switch alerts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from streams.alerting.book import AlertBook
from streams.alerting.matchers import Matcher, parse_matcher
from streams.alerting.silences import SilenceRefused, SilenceSet, new_silence
from tests.unit.alerting.conftest import T0, det

LATER = T0 + timedelta(hours=1)


def _alerts():
    book = AlertBook({})
    noisy = book.on_detection(det(1, rule="agent_noisy", severity="medium"), T0)
    frontier = book.on_detection(det(2, rule="frontier_x", severity="medium", tags=["frontier.exfil"]), T0)
    critical = book.on_detection(det(3, rule="agent_noisy", severity="critical", dep="dep-9"), T0)
    assert noisy and frontier and critical
    return noisy, frontier, critical


def test_a_silence_mutes_matching_alerts_until_it_expires() -> None:
    noisy, frontier, _ = _alerts()
    s = new_silence([parse_matcher("rule_id=agent_noisy"), parse_matcher("scope=deployment=dep-1")], "alice",
                    "known flaky canary", "alice", LATER, T0, [noisy, frontier])
    silences = SilenceSet()
    silences.put(s)
    assert silences.silencing(noisy, T0 + timedelta(minutes=1)) == s
    assert silences.silencing(noisy, LATER) is None  # expired
    silences.expire(s.silence_id, "bob", T0 + timedelta(minutes=2))
    assert silences.silencing(noisy, T0 + timedelta(minutes=3)) is None
    assert silences.by_id[s.silence_id].expired_by == "bob"


@pytest.mark.parametrize("matcher", ["severity=critical", "severity=~crit.*", "tag=~frontier\\..*",
                                     "tag=frontier.exfil", "rule_id=~policy\\..*", "tag=~killswitch.*"])
def test_silences_targeting_protected_alerts_are_refused(matcher: str) -> None:
    with pytest.raises(SilenceRefused, match="can never be silenced"):
        new_silence([parse_matcher(matcher)], "alice", "r", "alice", LATER, T0, [])


def test_a_silence_that_would_match_an_open_safety_alert_is_refused() -> None:
    noisy, frontier, critical = _alerts()
    with pytest.raises(SilenceRefused, match="safety-class"):
        new_silence([parse_matcher("rule_id=~.*")], "alice", "mute all", "alice", LATER, T0,
                    [noisy, frontier, critical])


def test_an_accepted_silence_still_never_applies_to_a_protected_alert() -> None:
    noisy, _, critical = _alerts()
    s = new_silence([parse_matcher("rule_id=agent_noisy")], "alice", "noise", "alice", LATER, T0, [noisy])
    silences = SilenceSet()
    silences.put(s)
    assert silences.matching(critical, T0) == s  # it does match...
    assert silences.silencing(critical, T0) is None  # ...but never mutes a critical alert


def test_owner_reason_expiry_and_matchers_are_mandatory() -> None:
    with pytest.raises(ValidationError):
        new_silence([parse_matcher("rule_id=x")], " ", "r", "a", LATER, T0, [])
    with pytest.raises(ValidationError):
        new_silence([parse_matcher("rule_id=x")], "alice", "", "a", LATER, T0, [])
    with pytest.raises(ValidationError):
        new_silence([], "alice", "r", "a", LATER, T0, [])
    with pytest.raises(SilenceRefused, match="future"):
        new_silence([parse_matcher("rule_id=x")], "alice", "r", "a", T0, T0, [])
    with pytest.raises(SilenceRefused, match="at most"):
        new_silence([parse_matcher("rule_id=x")], "alice", "r", "a", T0 + timedelta(days=30), T0, [])
    with pytest.raises(ValidationError, match="RE2"):
        Matcher(name="rule_id", op="=~", value="(")
    with pytest.raises(ValueError, match="expected NAME"):
        parse_matcher("nonsense")
