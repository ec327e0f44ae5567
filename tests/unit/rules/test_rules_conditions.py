"""The condition language: every operator, missing fields, types, lists, macros, RE2."""

from __future__ import annotations

import pytest

from tests.unit.rules.rules_helpers import cond, errors_of

EXEC = {"event_type": "tool_call", "action_category": "exec", "tool_name": "bash", "tool_arguments": "rm -rf /tmp/x",
        "egress_bytes": 500, "latency_ms": 12.5, "is_refusal": False, "finish_reasons": ["stop", "length"],
        "scores": {"jailbreak": 0.93}, "attributes": {"team": "red"}, "request_params": {"temperature": 0.7,
                                                                                        "nested": {"k": "v"}}}


@pytest.mark.parametrize(("source", "expected"), [
    ('tool_name = "bash"', True), ('tool_name == "sh"', False), ('tool_name != "sh"', True),
    ("egress_bytes > 499", True), ("egress_bytes >= 501", False), ("egress_bytes < 501", True),
    ("egress_bytes <= 500", True), ("latency_ms > 12.4", True), ("egress_bytes = 500", True),
    ('tool_name in (sh, "bash")', True), ("tool_name not in (sh, zsh)", True), ("tool_name in (sh)", False),
    ('tool_arguments contains "-rf"', True), ('tool_arguments startswith "rm "', True),
    ('tool_arguments endswith "/x"', True), ('tool_arguments endswith "/y"', False),
    ('tool_arguments glob "rm*/tmp/?"', True), ('tool_arguments glob "*tmp*"', True),
    ('tool_arguments glob "rm"', False), ('tool_arguments glob "[rs]m -rf*"', True),
    ('tool_arguments regex "^rm\\\\s+-rf"', True), ('tool_arguments regex "^ls"', False),
    ("tool_name exists", True), ("resource exists", False), ("is_refusal", False), ("not is_refusal", True),
    ("is_refusal = false", True), ("scores.jailbreak >= 0.9", True), ("scores.injection >= 0.9", False),
    ('attributes.team = "red"', True), ("request_params.temperature < 1", True),
    ('request_params.nested.k = "v"', True), ('finish_reasons contains "length"', True),
    ("finish_reasons in (length, other)", True), ("resource = null", True), ("tool_name != null", True),
    ('(tool_name = "sh" or tool_name = "bash") and not egress_bytes > 1000', True),
    ('tool_name = "sh" or tool_name = "bash" and egress_bytes > 1000', False),
    ("tool_arguments startswith (ls, rm)", True), ("tool_arguments contains (foo, tmp)", True),
])
def test_operator(source: str, expected: bool) -> None:
    assert cond(source)(EXEC) is expected


@pytest.mark.parametrize("source", [
    'resource = "x"', 'resource != "x"', "egress_bytes > 1", 'resource contains "x"', 'resource startswith "x"',
    'resource glob "*x*"', 'resource regex "x"', "resource in (a, b)", "resource not in (a, b)",
    "scores.jailbreak > 0.1", 'attributes.x = "y"', "request_params.temperature > 0", "resource exists",
    "resource startswith tool_name", "egress_bytes = latency_ms",
])
def test_missing_field_makes_comparison_false(source: str) -> None:
    assert cond(source)({"event_type": "tool_call"}) is False


def test_field_to_field_comparison() -> None:
    p = cond("resource startswith model_checkpoint")
    assert p({"resource": "/m/ckpt-1/model.bin", "model_checkpoint": "/m/ckpt-1"})
    assert not p({"resource": "/workspace/a", "model_checkpoint": "/m/ckpt-1"})
    assert not p({"resource": "/workspace/a", "model_checkpoint": ""})  # empty never prefixes everything


def test_named_lists_and_nested_lists() -> None:
    lists = {"shells": ["bash", "sh"], "all_shells": ["shells", "zsh"], "globs": ["*.pem", "*/.ssh/*"]}
    assert cond("tool_name in all_shells", lists=lists)({"tool_name": "sh"})
    assert cond("tool_name in (all_shells, fish)", lists=lists)({"tool_name": "fish"})
    p = cond("resource glob globs", lists=lists)
    assert p({"resource": "/k/a.pem"}) and p({"resource": "/h/.ssh/id"}) and not p({"resource": "/a.txt"})


def test_macros_expand_and_nest() -> None:
    macros = {"is_exec": 'action_category = "exec"', "bash_exec": 'is_exec and tool_name = "bash"'}
    p = cond('bash_exec and not tool_arguments contains "ls"', macros=macros)
    assert p(EXEC) and not p({**EXEC, "action_category": "fs_read"})


def test_regex_is_linear_time_and_correct() -> None:
    p = cond('tool_arguments regex "(a+)+$"')  # catastrophic for backtracking engines
    assert p({"tool_arguments": "a" * 100_000 + "b"}) is False
    assert p({"tool_arguments": "b" + "a" * 100_000}) is True
    q = cond('tool_arguments regex "^(a+)+$"')
    assert q({"tool_arguments": "a" * 100_000}) is True
    assert q({"tool_arguments": "a" * 100_000 + "b"}) is False


@pytest.mark.parametrize(("source", "expected"), [
    ('tool_nme = "x"', [("OVR201", 1)]),
    ('egress_bytes > "5"', [("OVR202", 16)]),
    ('tool_name = 5', [("OVR202", 13)]),
    ('action_category = "exek"', [("OVR207", 19)]),
    ('tool_arguments regex "(?=x)"', [("OVR203", 22)]),
    ("tool_name in unknown_list", [("OVR205", 14)]),
    ("mystery_macro and tool_name exists", [("OVR204", 1)]),
    ('tool_name = "a" and', [("OVR200", 20)]),
    ('tool_name = "a', [("OVR200", 13)]),
    ('(tool_name = "a"', [("OVR200", 17)]),
    ('tool_nme = "x" and egress_bytes > "5"', [("OVR201", 1), ("OVR202", 35)]),
    ("scores > 1", [("OVR202", 10)]),
    ("tool_name", [("OVR202", 1)]),
    ('tool_name = bash', [("OVR201", 13)]),
    ('egress_bytes contains "x"', [("OVR202", 1)]),
])
def test_errors_point_at_the_offending_token(source: str, expected: list[tuple[str, int]]) -> None:
    assert errors_of(source) == expected


def test_macro_cycle_is_reported() -> None:
    codes = [c for c, _ in errors_of("a", macros={"a": "b", "b": "a and tool_name exists"})]
    assert "OVR206" in codes


def test_prerequisites_are_extracted_for_indexing() -> None:
    from rules.conditions import ConditionContext
    from rules.errors import Diagnostics
    from rules.items import Location

    ctx = ConditionContext(Diagnostics())
    loc = Location("<t>", 1, 1)
    c = ctx.compile('event_type = "tool_call" and (action_category = "exec" or action_category in (fs_read))', loc)
    assert c is not None and c.prereq == {"event_type": frozenset({"tool_call"}),
                                          "action_category": frozenset({"exec", "fs_read"})}
    d = ctx.compile('action_category = "exec" or tool_name = "x"', loc)
    assert d is not None and d.prereq is None  # an OR branch without the field cannot be indexed
