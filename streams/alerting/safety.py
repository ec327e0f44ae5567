"""What may never be muted, and inhibition by an active containment.

Safety-class alerts (critical, or tagged ``frontier.*``) and everything
about the kill-switch itself (rules ``policy.*`` / ``killswitch.*``, tags
``killswitch.*``) are *protected*: no silence applies to them and no
containment inhibits them. The on-call engineer must always see these.

An active ``pause`` or ``terminate`` of a scope (or of the whole fleet)
inhibits the lower-severity, unprotected alerts about that scope: the
deployment is already contained, the rest is noise until it is released.
"""

from __future__ import annotations

from typing import Any

from schemas.alerts import Alert
from schemas.killswitch import LADDER

INHIBITING_RANK = LADDER.index("pause")


def is_protected(alert: Alert) -> bool:
    return (alert.safety_class or alert.severity == "critical"
            or any(t.startswith(("frontier.", "killswitch")) for t in alert.tags)
            or alert.rule_id.startswith(("policy.", "killswitch.")))


def inhibited_by(alert: Alert, active: Any, now: float) -> str | None:
    """The command id of the containment that inhibits ``alert``, or None.

    ``active`` is a `streams.killswitch.state.ActiveSet`; only enforce-mode
    effects count (a shadow pause contains nothing).
    """
    if is_protected(alert):
        return None
    effects = (*active.lookup(str(alert.scope.kind), alert.scope.value, now), *active.lookup("fleet", "", now))
    for effect in effects:
        if effect.mode == "enforce" and effect.rank >= INHIBITING_RANK:
            return str(effect.command_id)
    return None
