"""What the enforcer answers a gateway: allowed or not, which action, and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FailClosedAction = Literal["no_new_runs", "pause_all", "allow"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one :meth:`Enforcer.check`.

    ``allowed`` is what the gateway must obey. ``action`` is the strongest
    enforced containment that applies (``None`` when nothing does);
    ``throttle_rate`` (requests per second) is set when a throttle applies,
    and ``revoked_tools`` lists tools the gateway must not offer or run.
    ``reasons`` explains every command that applied, shadow ones included, and
    the dead-man's switch when it fired; ``command_ids`` names the commands.
    """

    allowed: bool
    action: str | None = None
    reasons: tuple[str, ...] = ()
    command_ids: tuple[str, ...] = ()
    throttle_rate: float | None = None
    revoked_tools: frozenset[str] = frozenset()
    fail_closed: bool = False


ALLOW = Decision(allowed=True)
