"""What a condition may name: the fields of :class:`schemas.Event` and their types.

Types are derived from the pydantic model, so a new event field is usable in
rules the moment the schema has it. Map fields (``scores``, ``attributes``,
``request_params``) accept any sub-key: ``scores.jailbreak`` is a number,
``attributes.team`` a string, ``request_params.temperature`` whatever the
producer sent.

>>> field_type("egress_bytes"), field_type("scores.jailbreak"), field_type("attributes.x")
('number', 'number', 'string')
>>> field_type("action_categry") is None
True
"""

from __future__ import annotations

import types
import typing
from datetime import datetime
from enum import Enum
from typing import Any

from schemas.events import ActionCategory, Event, EventType

STRING, NUMBER, BOOL, LIST, MAP, ANY, TIME = "string", "number", "bool", "list", "map", "any", "time"

#: map field -> type of its values
MAP_FIELDS: dict[str, str] = {"scores": NUMBER, "attributes": STRING, "request_params": ANY}

#: enum-typed fields -> their allowed values (checked at compile time: a typo never silently never-matches)
ENUM_VALUES: dict[str, frozenset[str]] = {
    "event_type": frozenset(e.value for e in EventType),
    "action_category": frozenset(a.value for a in ActionCategory),
}


def _classify(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _classify(args[0])
    if origin is list:
        return LIST
    if origin is dict:
        return MAP
    if annotation is bool:
        return BOOL
    if annotation in (int, float):
        return NUMBER
    if annotation is datetime:
        return TIME
    if annotation is str or (isinstance(annotation, type) and issubclass(annotation, Enum)):
        return STRING
    return ANY


FIELD_TYPES: dict[str, str] = {name: _classify(f.annotation) for name, f in Event.model_fields.items()}
FIELD_TYPES["_ts"] = NUMBER  # event time as epoch seconds, added by the decoder


def field_type(path: str) -> str | None:
    """The type of a dotted field path, or None when the schema has no such field."""
    head, _, rest = path.partition(".")
    if rest:
        return MAP_FIELDS.get(head) if "." not in rest or head == "request_params" else None
    return FIELD_TYPES.get(head)


def known_fields() -> list[str]:
    return sorted(FIELD_TYPES) + [f"{m}.<key>" for m in MAP_FIELDS]
