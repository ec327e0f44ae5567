"""Reading payload files for ``overseer send``: NDJSON, a JSON array, one object, or OTLP protobuf.

A file is cut into *units* — one line of NDJSON, one element of a JSON
array, the single object, or a whole ``.pb`` export — each handed to the
format's adapter on its own. A unit that is not JSON becomes an
:class:`ItemError` naming its line, so one bad line is dead-lettered rather
than failing the file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from schemas.deadletter import DeadLetterReason
from streams.ingest.adapters.base import ItemError, PayloadError


@dataclass(slots=True)
class Unit:
    label: str  # "line 3", "item 5", "file"
    payload: Any = None
    error: ItemError | None = None


def read_source(source: str) -> tuple[str, bytes]:
    """``source`` is a path or ``-`` (stdin); returns (name, bytes)."""
    if source == "-":
        return "stdin", sys.stdin.buffer.read()
    path = Path(source)
    try:
        return path.name, path.read_bytes()
    except OSError as exc:
        raise PayloadError(f"cannot read {source}: {exc.strerror or exc}") from exc


def split_units(name: str, data: bytes, fmt: str) -> list[Unit]:
    if fmt == "otlp" and (name.endswith(".pb") or not _looks_like_json(data)):
        return [Unit("file", data)]
    text = data.strip()
    if not text:
        raise PayloadError(f"{name} is empty")
    if text[:1] == b"[":
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise PayloadError(f"{name}: not a valid JSON array: {exc}") from exc
        return [Unit(f"item {i}", item) for i, item in enumerate(items)]
    try:
        return [Unit("file", orjson.loads(text))]
    except orjson.JSONDecodeError:
        pass
    units = []
    for lineno, line in enumerate(text.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            units.append(Unit(f"line {lineno}", orjson.loads(line)))
        except orjson.JSONDecodeError as exc:
            error = ItemError(lineno, DeadLetterReason.malformed_json, f"line {lineno}: not JSON ({exc})", line)
            units.append(Unit(f"line {lineno}", error=error))
    return units


def _looks_like_json(data: bytes) -> bool:
    head = data.lstrip()[:1]
    return head in (b"{", b"[")
