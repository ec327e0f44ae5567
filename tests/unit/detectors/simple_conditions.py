"""A stand-in for the loader's CompileContext, for tests only.

It understands just ``field = value`` terms joined by ``and`` (strings in
double quotes, true/false, numbers) — the subset the stable detector pack is
written in — so `rules.metrics.compile_items` can be tested before the full
rule language is plugged in.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from rules.items import Diagnostic, Location, Predicate, RawItem

_TERM = re.compile(r'^\s*([A-Za-z_][\w.]*)\s*=\s*("(?:[^"]*)"|true|false|-?\d+(?:\.\d+)?)\s*$')


def _literal(text: str) -> Any:
    if text.startswith('"'):
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    return float(text) if "." in text else int(text)


class SimpleContext:
    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def compile_condition(self, source: str, location: Location) -> Predicate | None:
        terms = []
        for part in source.split(" and "):
            match = _TERM.match(part)
            if match is None:
                self.error(location, "OVR100", f"cannot parse condition term {part.strip()!r}")
                return None
            terms.append((match.group(1), _literal(match.group(2))))
        return lambda ev: all(ev.get(name) == value for name, value in terms)

    def error(self, location: Location, code: str, message: str, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(location, code, message, hint))


def raw_items(path: Path) -> list[RawItem]:
    """Detector items of a YAML rule file, with approximate (item-level) locations."""
    text = path.read_text()
    node = yaml.compose(text)
    items = []
    for entry in node.value:
        body = yaml.safe_load(yaml.serialize(entry))
        if "detector" not in body:
            continue
        where = Location(str(path), entry.start_mark.line + 1, entry.start_mark.column + 1)
        keys = {k.value: Location(str(path), v.start_mark.line + 1, v.start_mark.column + 1)
                for k, v in entry.value}
        items.append(RawItem("detector", body["detector"], body, where, keys))
    return items
