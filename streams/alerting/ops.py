"""Operator actions on alerts and the quiet-period sweep, as messages.

Faust lets a table change only inside stream iteration, and the alert
table's changelog partition must be the one its detections arrive on. So an
acknowledgement or a resolution is *published* on the detections topic,
keyed like the group's detections (its scope), with the header
``overseer-type: alert-op``; the ``policy`` agent that owns the partition
applies it in order with the detections. The sweep that auto-resolves quiet
groups goes the same way, one message per partition.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HEADER = "overseer-type"
HEADER_VALUE = b"alert-op"


class AlertOp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op_id: str
    op: Literal["ack", "resolve", "sweep"]
    group_key: str = ""
    alert_id: str = ""
    actor: str = ""
    role: str = ""
    reason: str = Field(default="", max_length=2000)
    ts: datetime


def is_alert_op(headers: Any) -> bool:
    """True for a message carrying ``overseer-type: alert-op`` (list of pairs or a mapping)."""
    if not headers:
        return False
    pairs: Iterable[tuple[Any, Any]] = headers.items() if isinstance(headers, dict) else headers
    return any(k == HEADER and v in (HEADER_VALUE, HEADER_VALUE.decode()) for k, v in pairs)


def op_headers() -> list[tuple[str, bytes]]:
    return [(HEADER, HEADER_VALUE)]
