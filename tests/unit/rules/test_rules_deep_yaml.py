"""Pathologically nested YAML is a diagnostic, not a RecursionError that would kill a reload."""

from __future__ import annotations

import pytest

from rules.engine import engine_from_text
from rules.errors import RuleLoadError


@pytest.mark.parametrize("text", ["- " * 2000, "{" * 5000, "[" * 3000 + "]" * 3000])
def test_deep_nesting_is_reported_with_a_location(text: str) -> None:
    with pytest.raises(RuleLoadError) as err:
        engine_from_text(text, path="deep.yaml")
    [diag] = [d for d in err.value.diagnostics if d.severity == "error"]
    assert (diag.location.path, diag.location.line, diag.code) == ("deep.yaml", 1, "OVR100")
    assert "nested too deeply" in diag.message
