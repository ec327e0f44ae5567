"""Hypothesis against the rule compiler: random YAML documents and rule-shaped items with random
fields, conditions and types only ever raise ``RuleLoadError`` (with diagnostics), never anything else."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.engine import engine_from_text
from rules.errors import RuleLoadError

TEXT = st.text(max_size=30) | st.sampled_from(["\x00", "\ud800"[:0] + "\u202e", "\ufeff", "𝔘", "${x}", "{", "*"])
SCALAR = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | TEXT
VALUE = st.recursive(SCALAR, lambda k: st.lists(k, max_size=3) | st.dictionaries(TEXT, k, max_size=3), max_leaves=12)
CONDITION = st.lists(st.sampled_from(
    ["tool_name", "=", '"bash"', "and", "or", "not", "(", ")", "in", "contains", "regex", '"(a+)+$"', '"["',
     "egress_bytes", ">", "1e309", "-0.0", "18446744073709551616", "scores.x", "exists", "glob", "'*'", "m1",
     "within", "5m", "then", "count", "sum", "\x00", "é"]), max_size=10).map(" ".join) | TEXT
KEYS = ["rule", "macro", "list", "detector", "policy", "title", "severity", "condition", "output", "scope", "items",
        "tags", "dedup", "window", "sequence", "tests", "required_engine_version", "append", "threshold", "enabled"]
ITEM = st.fixed_dictionaries({}, optional={k: VALUE for k in KEYS} | {"condition": CONDITION})
RULE = st.fixed_dictionaries({"rule": TEXT, "condition": CONDITION},
                             optional={"title": VALUE, "severity": st.sampled_from(["low", "high", "bogus", 3]) | VALUE,
                                       "scope": VALUE, "output": VALUE, "dedup": VALUE, "tags": VALUE})


def _load(text: str) -> None:
    try:
        engine_from_text(text)
    except RuleLoadError as exc:
        assert exc.diagnostics


def _dump(doc: object) -> str | None:
    try:
        return yaml.safe_dump(doc, allow_unicode=True)
    except (yaml.YAMLError, UnicodeEncodeError):
        return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ITEM | RULE, max_size=5) | VALUE)
def test_random_yaml_documents(doc: object) -> None:
    text = _dump(doc)
    if text is not None:
        _load(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(RULE, min_size=1, max_size=3), st.sampled_from(["", "- required_engine_version: 99\n",
                                                                 "- macro: m1\n  condition: tool_name exists\n"]))
def test_rule_items_with_random_conditions(items: list[dict], prefix: str) -> None:
    text = _dump(items)
    if text is not None:
        _load(prefix + text)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_as_rule_text(raw: bytes) -> None:
    _load(raw.decode("utf-8", "replace"))


def test_yaml_bombs_and_tags_are_rejected_not_executed() -> None:
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: &d [*c, *c]\ne: [*d, *d]\n"
    for text in (bomb, "- !!python/object/apply:os.system ['true']\n", "- rule: x\n  condition: !!binary AAAA\n",
                 "- " * 300 + "x", "[" * 200 + "]" * 200):
        # deeper nesting (~1000 levels) makes PyYAML itself raise RecursionError inside the loader:
        # reported to the rules owner (the loader should turn it into a diagnostic)
        _load(text)
