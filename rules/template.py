"""Output templates: ``"weights read {resource} by {agent_run_id}"``.

Fields are dotted event paths (``{scores.jailbreak}``) or names a rule kind
adds (``{window.value}``, ``{sequence.steps}``, ``{suppressed_count}``); a
missing value renders as ``<none>``; a format spec applies when it fits
the value (``{scores.jailbreak:.2f}``).

>>> t = Template("{tool_name} ran {tool_arguments!r:.3} score={scores.jailbreak:.2f} {attributes.x}")
Traceback (most recent call last):
ValueError: conversions like '!r' are not supported
>>> t = Template("{tool_name} score={scores.jailbreak:.2f} {attributes.x}")
>>> t.render({"tool_name": "bash", "scores": {"jailbreak": 0.91234}})
'bash score=0.91 <none>'
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

MISSING = "<none>"
Getter = Callable[[Mapping[str, Any]], Any]


def getter(path: str) -> Getter:
    """A function reading a dotted path from nested dicts; None when any part is missing."""
    parts = tuple(path.split("."))
    if len(parts) == 1:
        key = parts[0]
        return lambda e: e.get(key)

    def get(e: Mapping[str, Any]) -> Any:
        v: Any = e
        for p in parts:
            if not isinstance(v, Mapping):
                return None
            v = v.get(p)
        return v

    return get


class Template:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pieces: list[tuple[str, str | None, Getter | None, str]] = []
        for literal, name, spec, conversion in string.Formatter().parse(text):
            if conversion:
                raise ValueError(f"conversions like '!{conversion}' are not supported")
            if name == "":
                raise ValueError("empty {} in template; name a field like {tool_name}")
            self.pieces.append((literal, name, getter(name) if name is not None else None, spec or ""))

    @property
    def fields(self) -> list[str]:
        return [name for _, name, _, _ in self.pieces if name is not None]

    def render(self, event: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> str:
        out: list[str] = []
        for literal, name, get, spec in self.pieces:
            out.append(literal)
            if name is None or get is None:
                continue
            value = extra[name] if extra is not None and name in extra else get(event)
            out.append(_format(value, spec))
        return "".join(out)


def _format(value: Any, spec: str) -> str:
    if value is None:
        return MISSING
    if spec:
        try:
            return format(value, spec)
        except (ValueError, TypeError):
            return str(value)
    return str(value)
