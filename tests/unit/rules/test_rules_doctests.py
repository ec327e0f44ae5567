"""The runnable examples in the rule modules' docstrings are tested."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["rules.errors", "rules.durations", "rules.fields", "rules.grammar", "rules.conditions",
           "rules.template", "rules.hits", "rules.engine"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
