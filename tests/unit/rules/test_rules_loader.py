"""Loading files: exact file:line:col of diagnostics, all errors collected, append/override, order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rules.engine import engine_from_text, load_engine
from rules.errors import RuleLoadError, to_json

BAD = """\
- list: shells
  items: [bash, sh]
- rule: r1
  title: One
  severty: high
  condition: tool_name in shels
- rule: r2
  title: Two
  severity: hgh
  mode: loud
  condition: >
    action_category = "exec"
    and egress_bytes > "10"
    and tool_arguments regex "(?<=x)"
- rule: r1
  title: again
  severity: low
  condition: tool_name exists
- macro: loop_a
  condition: loop_b
- macro: loop_b
  condition: loop_a
- rule: r3
  title: Three
  severity: low
  condition: tool_name exists
  window: {agg: sum, field: tool_name, duration: soon, op: ">"}
  output: "{tool_nam}"
"""


def _diagnostics(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(RuleLoadError) as exc:
        engine_from_text(text, "bad.yaml")
    return [(d.location.line, d.location.col, d.code) for d in exc.value.diagnostics]


def test_every_error_is_reported_with_its_line_and_column() -> None:
    found = _diagnostics(BAD)
    expected = {
        (5, 3, "OVR103"),    # severty: unknown key, at the key
        (3, 9, "OVR104"),    # r1 has no severity
        (6, 27, "OVR205"),   # unknown list 'shels'
        (9, 13, "OVR106"),   # bad severity value
        (10, 9, "OVR106"),   # bad mode
        (13, 24, "OVR202"),  # "10" compared with a number field, on the folded line 13
        (14, 30, "OVR203"),  # lookbehind is not RE2
        (15, 9, "OVR107"),   # duplicate rule id
        (22, 14, "OVR206"),  # macro cycle, where it closes
        (27, 29, "OVR202"),  # sum over a string field
        (27, 50, "OVR109"),  # bad duration
        (27, 11, "OVR300"),  # no value
        (28, 11, "OVR303"),  # unknown template field
    }
    assert expected <= set(found), sorted(set(found))


def test_yaml_syntax_error_position() -> None:
    assert _diagnostics("- rule: x\n  title: [unclosed\n  severity: low\n") == [(3, 11, "OVR100")]


def test_file_must_be_a_list_of_mappings() -> None:
    assert _diagnostics("rule: x\n") == [(1, 1, "OVR101")]
    assert _diagnostics("- rul: x\n  title: y\n") == [(1, 3, "OVR102")]


def test_diagnostics_print_with_hint_and_snippet_and_as_json() -> None:
    with pytest.raises(RuleLoadError) as exc:
        engine_from_text("- rule: x\n  title: t\n  severity: low\n  condition: tool_nme exists\n", "f.yaml")
    d = exc.value.diagnostics[0]
    from rules.errors import render

    assert render(d).splitlines() == [
        "f.yaml:4:14: OVR201 unknown field 'tool_nme'",
        "  hint: did you mean 'tool_name'?",
        "    4 |   condition: tool_nme exists",
        "      |              ^",
    ]
    data = json.loads(to_json([d]))
    assert data[0]["line"] == 4 and data[0]["col"] == 14 and data[0]["code"] == "OVR201"


def _write(tmp: Path, name: str, text: str) -> Path:
    (tmp / name).write_text(text)
    return tmp / name


BASE = """\
- list: hosts
  items: [a.example]
- macro: is_egress
  condition: action_category = "net_egress"
- rule: egress
  title: Egress
  severity: low
  tags: [t.one]
  condition: is_egress and not dest_host in hosts
"""


def test_append_and_override_across_files(tmp_path: Path) -> None:
    _write(tmp_path, "00-base.yaml", BASE)
    _write(tmp_path, "10-local.yaml", """\
- list: hosts
  items: [b.example]
  append: true
- rule: egress
  condition: and egress_bytes > 10
  tags: [t.two]
  append: true
- rule: egress
  severity: high
  override: {severity: replace}
""")
    engine = load_engine([tmp_path])
    rule = engine.rule("egress")
    assert rule.severity == "high" and rule.tags == ["t.one", "t.two"]
    hit = {"event_type": "tool_call", "action_category": "net_egress", "_ts": 1.0, "egress_bytes": 50}
    assert [h.rule_id for h in engine.process([{**hit, "dest_host": "c.example"}])] == ["egress"]
    assert engine.process([{**hit, "dest_host": "b.example"}]) == []  # appended list item
    assert engine.process([{**hit, "dest_host": "c.example", "egress_bytes": 5}]) == []  # appended condition


def test_override_true_replaces_and_errors_in_appended_text_point_at_their_file(tmp_path: Path) -> None:
    _write(tmp_path, "00-base.yaml", BASE)
    _write(tmp_path, "10-local.yaml", "- macro: is_egress\n  condition: and dest_hst exists\n  append: true\n")
    with pytest.raises(RuleLoadError) as exc:
        load_engine([tmp_path])
    got = {(Path(d.location.path).name, d.location.line, d.location.col, d.code) for d in exc.value.diagnostics}
    assert ("10-local.yaml", 2, 18, "OVR201") in got
    _write(tmp_path, "10-local.yaml", "- macro: is_egress\n  condition: action_category = \"exec\"\n  override: true\n")
    engine = load_engine([tmp_path])
    assert engine.process([{"event_type": "tool_call", "action_category": "exec", "_ts": 1.0}])[0].rule_id == "egress"


def test_append_to_unknown_item_and_duplicates_across_files(tmp_path: Path) -> None:
    _write(tmp_path, "00-base.yaml", BASE)
    _write(tmp_path, "10-local.yaml", "- list: hostz\n  items: [x]\n  append: true\n- list: hosts\n  items: [y]\n")
    with pytest.raises(RuleLoadError) as exc:
        load_engine([tmp_path])
    got = [(Path(d.location.path).name, d.location.line, d.code, d.hint) for d in exc.value.diagnostics]
    assert got == [("10-local.yaml", 1, "OVR108", "did you mean 'hosts'?"),
                   ("10-local.yaml", 4, "OVR107", "add 'override: true' to replace it or 'append: true' to extend it")]


def test_missing_path_is_a_diagnostic(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError) as exc:
        load_engine([tmp_path / "nope.yaml"])
    assert exc.value.diagnostics[0].code == "OVR110"


def test_builtin_packs_load_and_hand_over_detector_and_policy_items() -> None:
    engine = load_engine()
    assert {r.id for r in engine.rules} >= {"frontier_self_exfiltration_sequence", "agent_destructive_shell_burst"}
    assert all(i.kind == "detector" for i in engine.items("detector"))
    assert all(i.kind == "policy" for i in engine.items("policy"))


def test_malformed_tests_are_reported_by_validate() -> None:
    text = """\
- rule: r
  title: t
  severity: low
  condition: tool_name exists
  tests:
    - name: a
      event: []
      expect: {hits: 1}
    - name: b
      events: []
      expect: {hitz: 1}
"""
    assert _diagnostics(text) == [(6, 7, "OVR305"), (7, 7, "OVR103"), (11, 15, "OVR305")]
