"""Turn a match into a :class:`rules.base.Hit`, and keep compact event context for later hits.

Window and sequence hits may fire long after their evidence arrived (a
window closing, an absence timing out), so their state keeps a *reduced*
copy of the last event: only the fields the hit needs (scope, correlation,
the output template's and dedup key's fields).
"""

from __future__ import annotations

from typing import Any

from rules.base import Hit
from rules.rule import SCOPES, RuleDef


def reduce_event(e: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The subset of ``e`` named by dotted ``fields`` (nested maps kept nested).

    >>> reduce_event({"a": 1, "scores": {"x": 0.5, "y": 1.0}, "b": 2}, ("a", "scores.x", "zz"))
    {'a': 1, 'scores': {'x': 0.5}}
    """
    out: dict[str, Any] = {}
    for path in fields:
        head, _, rest = path.partition(".")
        if not rest:
            if e.get(head) is not None:
                out[head] = e[head]
            continue
        sub = e.get(head)
        if isinstance(sub, dict) and sub.get(rest) is not None:
            out.setdefault(head, {})[rest] = sub[rest]
    src = e.get("_src")
    if src is not None:
        out["_src"] = list(src)
    return out


def make_hit(rule: RuleDef, e: dict[str, Any], ts: float, event_ids: list[str],
             group: dict[str, str] | None = None, evidence: dict[str, Any] | None = None,
             extra: dict[str, Any] | None = None) -> Hit:
    scope_field = SCOPES[rule.scope]
    scope_value = "fleet" if scope_field is None else str(e.get(scope_field) or "unknown")
    src = e.get("_src")
    return Hit(rule_id=rule.id, rule_version=rule.version, kind="rule", title=rule.title, severity=rule.severity,
               tags=list(rule.tags), mode=rule.mode,
               output=rule.output.render(e, extra), ts=ts, scope_kind=rule.scope, scope_value=scope_value,
               event_ids=event_ids, group=group or {}, evidence=evidence or {}, tenant_id=e.get("tenant_id"),
               deployment_id=e.get("deployment_id"), model=e.get("request_model"),
               agent_run_id=e.get("agent_run_id"), runbook_url=rule.runbook,
               sources=[(str(src[0]), int(src[1]), int(src[2]))] if src is not None else [])


def group_dict(by: tuple[str, ...], key: tuple[Any, ...]) -> dict[str, str]:
    return {f: str(v) for f, v in zip(by, key, strict=True)}


def compact_context(e: dict[str, Any], fields: tuple[str, ...]) -> tuple[Any, ...]:
    """:func:`reduce_event` as a tuple of values (plus ``_src``): the same content, a fraction of the bytes.

    >>> fields = ("a", "scores.x", "zz")
    >>> e = {"a": 1, "scores": {"x": 0.5, "y": 1.0}, "b": 2, "_src": ("t", 0, 7)}
    >>> expand_context(compact_context(e, fields), fields) == reduce_event(e, fields)
    True
    """
    out: list[Any] = []
    for path in fields:
        head, _, rest = path.partition(".")
        v = e.get(head)
        if rest:
            v = v.get(rest) if isinstance(v, dict) else None
        out.append(v)
    out.append(e.get("_src"))
    return tuple(out)


def expand_context(values: tuple[Any, ...], fields: tuple[str, ...]) -> dict[str, Any]:
    """The reduced event dict of a :func:`compact_context` tuple."""
    out: dict[str, Any] = {}
    for path, v in zip(fields, values, strict=False):
        if v is None:
            continue
        head, _, rest = path.partition(".")
        if rest:
            out.setdefault(head, {})[rest] = v
        else:
            out[head] = v
    src = values[-1]
    if src is not None:
        out["_src"] = list(src)
    return out
