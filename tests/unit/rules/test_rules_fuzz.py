"""Hypothesis: arbitrary text never crashes the compiler, and compiled predicates never raise."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.conditions import compile_condition
from rules.engine import engine_from_text
from rules.errors import Diagnostics, RuleLoadError

FRAGMENTS = ["tool_name", "egress_bytes", "scores.jailbreak", "attributes.x", "request_params.a.b", "and", "or",
             "not", "(", ")", "in", "contains", "startswith", "glob", "regex", "exists", "=", "!=", ">", "<=",
             '"rm"', "'x*'", "5", "-1.5", "null", "true", ",", "shells", "m1", "action_category", '"exec"',
             '"(a+)+$"', '"["', "finish_reasons"]
EVENT = {"tool_name": "bash", "egress_bytes": 7, "scores": {"jailbreak": 0.5}, "attributes": {"x": "1"},
         "request_params": {"a": {"b": [1, 2]}}, "action_category": "exec", "finish_reasons": ["stop"]}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=9).map(" ".join))
def test_token_soup_compiles_or_reports(source: str) -> None:
    diags = Diagnostics()
    pred = compile_condition(source, lists={"shells": ["bash"]}, macros={"m1": "tool_name exists"}, errors=diags)
    if pred is None:
        assert diags.has_errors and all(d.code.startswith("OVR") for d in diags.items)
    else:
        assert pred(EVENT) in (True, False)
        assert pred({}) in (True, False)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_random_text_compiles_or_reports(source: str) -> None:
    diags = Diagnostics()
    pred = compile_condition(source, errors=diags)
    assert pred is not None or diags.has_errors


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_random_rule_files_raise_only_rule_load_error(text: str) -> None:
    try:
        engine_from_text(text)
    except RuleLoadError as exc:
        assert exc.diagnostics
