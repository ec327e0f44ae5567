"""Small builders shared by the rule-engine tests."""

from __future__ import annotations

import itertools
from typing import Any

from rules.conditions import compile_condition
from rules.errors import Diagnostics
from rules.items import Predicate

_ids = itertools.count()


def ev(ts: float = 0.0, **fields: Any) -> dict[str, Any]:
    """An event dict as the decoder makes it: fields plus ``_ts`` and an ``event_id``."""
    fields.setdefault("event_type", "tool_call")
    fields.setdefault("event_id", f"e{next(_ids)}")
    fields["_ts"] = float(ts)
    return fields


def cond(source: str, **kwargs: Any) -> Predicate:
    diags = Diagnostics()
    pred = compile_condition(source, errors=diags, **kwargs)
    assert pred is not None, diags.render_text()
    return pred


def errors_of(source: str, **kwargs: Any) -> list[tuple[str, int]]:
    """(code, column) of each diagnostic of a one-line condition."""
    diags = Diagnostics()
    assert compile_condition(source, errors=diags, **kwargs) is None
    return [(d.code, d.location.col) for d in diags.sorted()]
