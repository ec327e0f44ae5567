"""Data contracts of Overseer: every message on every topic, and the ClickHouse DDL.

`schemas` imports neither `rules` nor `streams`; everything else imports it.
"""

from schemas.alerts import Alert, AlertState
from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.detections import Detection, Scope
from schemas.events import ActionCategory, Event, EventBatch, EventType
from schemas.killswitch import Heartbeat, KillSwitchAction, KillSwitchCommand, KillSwitchEvidence

__all__ = [
    "ActionCategory",
    "Alert",
    "AlertState",
    "DeadLetter",
    "DeadLetterReason",
    "Detection",
    "Event",
    "EventBatch",
    "EventType",
    "Heartbeat",
    "KillSwitchAction",
    "KillSwitchCommand",
    "KillSwitchEvidence",
    "Scope",
]
