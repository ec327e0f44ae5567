"""Identifier helpers shared by every message type."""

from __future__ import annotations

import hashlib

import uuid_utils


def new_event_id() -> str:
    """A fresh UUIDv7 (time-ordered, so ClickHouse parts stay sorted)."""
    return str(uuid_utils.uuid7())


def stable_id(*parts: object) -> str:
    """A deterministic id from its parts: replays produce the same id.

    >>> stable_id("rule", 1) == stable_id("rule", 1)
    True
    """
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16)
    return digest.hexdigest()
