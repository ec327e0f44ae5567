"""Dead letters: input that could not be accepted, kept with the reason.

Nothing is dropped silently: the original bytes travel base64-encoded together
with the source topic/partition/offset, so an operator can fix and replay them.
"""

from __future__ import annotations

import base64
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class DeadLetterReason(StrEnum):
    malformed_json = "malformed_json"
    schema_violation = "schema_violation"
    oversized = "oversized"
    unknown_event_type = "unknown_event_type"
    not_an_object = "not_an_object"


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)

    reason: DeadLetterReason
    error: str = Field(description="what was wrong, in words an operator can act on")
    source_topic: str
    source_partition: int
    source_offset: int
    index_in_message: int | None = Field(default=None, description="position inside a producer batch")
    original_key_b64: str | None = None
    original_b64: str = Field(description="the original bytes (the event, or the whole message), base64")
    original_size: int
    received_at: datetime

    @staticmethod
    def encode(raw: bytes | None) -> str | None:
        return None if raw is None else base64.b64encode(raw).decode()

    def original(self) -> bytes:
        return base64.b64decode(self.original_b64)
