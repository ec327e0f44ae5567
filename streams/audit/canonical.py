"""Canonical bytes of an audit row, identical before the insert and after reading it back.

The hash of a row must not depend on how the value travelled: a Python
``datetime`` with microseconds going in, a millisecond ``DateTime64(3)``
coming out; an ``Enum`` going in, a ``str`` coming out; a ``dict`` going in,
a ``Map`` (dict in any order) coming out. Every value is reduced to one JSON
form here, so the writer and ``overseer audit verify`` compute the same hash.

>>> from datetime import datetime, UTC
>>> a = canonical(["x", datetime(2026, 1, 1, 0, 0, 0, 123999, tzinfo=UTC), {"b": 1, "a": 2}])
>>> b = canonical(["x", datetime(2026, 1, 1, 0, 0, 0, 123000), {"a": 2, "b": 1}])
>>> a == b, a
(True, b'["x",{"ms":1767225600123},[["a",2],["b",1]]]')
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any

import orjson

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(value: datetime) -> int:
    """Epoch milliseconds, truncated exactly like clickhouse-connect writes a DateTime64(3)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MS


def _canon(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"ms": to_ms(value)}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, Enum):
        return _canon(value.value)
    if isinstance(value, dict):
        return [[str(k), _canon(v)] for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))]
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and value.is_integer():
        return value  # orjson keeps 1.0 as 1.0 on both sides
    return value


def canonical(values: Sequence[Any]) -> bytes:
    """One JSON array: the row's values in column order, each in its canonical form."""
    return orjson.dumps([_canon(v) for v in values])


def row_hash(prev_hash: str, header: Sequence[Any], values: Sequence[Any]) -> str:
    """sha256 over the previous row's hash, the chain header (table, seq, id, prev_id) and the content."""
    h = hashlib.sha256()
    h.update(prev_hash.encode())
    h.update(b"\n")
    h.update(canonical(header))
    h.update(b"\n")
    h.update(canonical(values))
    return h.hexdigest()
