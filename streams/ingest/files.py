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
from streams.ingest.adapters import adapt
from streams.ingest.adapters.base import AdapterOptions, AdapterResult, ItemError, PayloadError, dumps


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
    return split_ndjson(text)


def _looks_like_json(data: bytes) -> bool:
    head = data.lstrip()[:1]
    return head in (b"{", b"[")


def split_ndjson(data: bytes) -> list[Unit]:
    """One unit per non-empty line; a line that is not JSON is an ``ItemError`` naming it."""
    units = []
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            units.append(Unit(f"line {lineno}", orjson.loads(line)))
        except orjson.JSONDecodeError as exc:
            error = ItemError(lineno, DeadLetterReason.malformed_json, f"line {lineno}: not JSON ({exc})", line)
            units.append(Unit(f"line {lineno}", error=error))
    return units


def adapt_unit(unit: Unit, fmt: str, options: AdapterOptions) -> AdapterResult:
    """Adapt one unit; its errors name where they came from (``line 3, item 0: ...``)."""
    if unit.error is not None:
        return AdapterResult(errors=[unit.error])
    try:
        result = adapt(fmt, unit.payload, options)
    except PayloadError as exc:
        raw = unit.payload if isinstance(unit.payload, bytes) else dumps(unit.payload)
        return AdapterResult(errors=[ItemError(0, DeadLetterReason.not_an_object, f"{unit.label}: {exc}", raw)])
    where = "" if unit.label == "file" else f"{unit.label}, "
    result.errors = [ItemError(e.index, e.reason, f"{where}item {e.index}: {e.error}", e.raw) for e in result.errors]
    return result


def adapt_units(units: list[Unit], fmt: str, options: AdapterOptions) -> AdapterResult:
    out = AdapterResult()
    for unit in units:
        out.extend(adapt_unit(unit, fmt, options))
    return out
