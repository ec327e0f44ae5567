"""Diagnostics of rule files: codes, the collector, and the one exception root.

Every problem found while loading or compiling rule files is a
:class:`rules.items.Diagnostic` carrying ``path:line:col`` (1-based, from the
YAML parser's node marks), a numbered code, a hint and a snippet of the source.
Problems are *collected*, never raised one at a time, so an author sees every
mistake of a file in one run; :class:`RuleLoadError` is raised once at the end
when any error was found.

>>> d = Diagnostics()
>>> d.add_source("r.yaml", "- rule: x\\n  severity: hgh\\n")
>>> d.error(Location("r.yaml", 2, 13), "OVR106", "bad severity 'hgh'", "did you mean 'high'?")
>>> print(d.render_text())
r.yaml:2:13: OVR106 bad severity 'hgh'
  hint: did you mean 'high'?
    2 |   severity: hgh
      |             ^
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from typing import Any

from rules.items import Diagnostic, Location

__all__ = ['CODES', 'Diagnostics', 'RuleLoadError', 'did_you_mean', 'render', 'to_json']

#: code -> short explanation (the long form lives in docs/rules.md).
CODES: dict[str, str] = {
    "OVR100": "YAML syntax error",
    "OVR101": "a rule file must be a YAML list of items, each a mapping",
    "OVR102": "unknown item kind",
    "OVR103": "unknown key",
    "OVR104": "missing required key",
    "OVR105": "wrong type for a key",
    "OVR106": "invalid value",
    "OVR107": "duplicate id or name",
    "OVR108": "append/override problem",
    "OVR109": "invalid duration",
    "OVR110": "cannot read rule path",
    "OVR200": "condition syntax error",
    "OVR201": "unknown field",
    "OVR202": "type mismatch",
    "OVR203": "invalid regular expression",
    "OVR204": "unknown macro",
    "OVR205": "unknown list",
    "OVR206": "macro cycle",
    "OVR207": "unknown enumeration value",
    "OVR300": "invalid window",
    "OVR301": "invalid sequence",
    "OVR302": "invalid exception",
    "OVR303": "unknown field in output template",
    "OVR304": "invalid dedup",
    "OVR305": "invalid rule test",
}


class RuleLoadError(Exception):
    """Loading or compiling rule files failed; ``diagnostics`` holds every problem found."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.severity == "error"]
        first = str(errors[0]) if errors else "no diagnostics"
        super().__init__(f"{len(errors)} error(s) in rule files; first: {first}")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint naming the closest known spelling, or an empty string.

    >>> did_you_mean("severty", ["severity", "tags"])
    "did you mean 'severity'?"
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def snippet(source: str, line: int, col: int) -> str:
    """The offending source line with a caret under the column."""
    lines = source.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    text = lines[line - 1]
    gutter = f"{line:5d} | "
    return f"{gutter}{text}\n{' ' * (len(gutter) - 2)}| {' ' * max(col - 1, 0)}^"


class Diagnostics:
    """Collects diagnostics; knows the sources so it can attach snippets."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []
        self._sources: dict[str, str] = {}

    def add_source(self, path: str, text: str) -> None:
        self._sources[path] = text

    def error(self, location: Location, code: str, message: str, hint: str = "",
              severity: str = "error") -> None:
        text = self._sources.get(location.path, "")
        self.items.append(Diagnostic(location, code, message, hint, severity,
                                     snippet(text, location.line, location.col) if text else ""))

    def warning(self, location: Location, code: str, message: str, hint: str = "") -> None:
        self.error(location, code, message, hint, severity="warning")

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise RuleLoadError(self.sorted())

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items, key=lambda d: (d.location.path, d.location.line, d.location.col, d.code))

    def render_text(self) -> str:
        return "\n".join(render(d) for d in self.sorted())


def render(d: Diagnostic) -> str:
    """``path:line:col: CODE message`` + hint + snippet, as people read it."""
    text = str(d)
    if d.snippet:
        text += "\n" + d.snippet
    return text


def to_json(diagnostics: Iterable[Diagnostic]) -> str:
    return json.dumps([diagnostic_dict(d) for d in diagnostics], indent=2)


def diagnostic_dict(d: Diagnostic) -> dict[str, Any]:
    out = d.to_dict()
    out["explanation"] = CODES.get(d.code, "")
    out["snippet"] = d.snippet
    return out
