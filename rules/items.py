"""Shared vocabulary of the rule files: where an item came from, and what was wrong with it.

Rule files hold ``list``, ``macro``, ``rule``, ``detector`` and ``policy``
items. The loader (`rules.loader`) parses YAML with node marks, merges
append/override across files, and hands each kind to its compiler:

- ``rule`` (with lists and macros)  -> `rules.engine`
- ``detector``                       -> `rules.metrics.compile_items`
- ``policy``                         -> `rules.policy.compile_items`

Compilers report problems as :class:`Diagnostic` values (collected, not
raised one at a time), each printed as ``path:line:col: CODE message``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Location:
    """1-based line and column in a rule file (from the YAML parser's node marks)."""

    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    location: Location
    code: str  # e.g. "OVR102"
    message: str
    hint: str = ""
    severity: str = "error"  # error | warning
    snippet: str = ""

    def __str__(self) -> str:
        text = f"{self.location}: {self.code} {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.location.path, "line": self.location.line, "col": self.location.col,
                "code": self.code, "message": self.message, "hint": self.hint, "severity": self.severity}


@dataclass(slots=True)
class RawItem:
    """One item after YAML parsing and append/override merging, not yet compiled."""

    kind: str  # list | macro | rule | detector | policy
    name: str
    body: dict[str, Any]
    location: Location
    key_locations: dict[str, Location] = field(default_factory=dict)  # top-level key -> where its value starts

    def where(self, key: str) -> Location:
        return self.key_locations.get(key, self.location)


Predicate = Callable[[dict[str, Any]], bool]


class CompileContext(Protocol):
    """What the loader offers to the compilers of each item kind."""

    def compile_condition(self, source: str, location: Location) -> Predicate | None:
        """Compile a condition expression (with the loaded lists and macros).

        Returns None after recording a diagnostic when the expression is invalid.
        """

    def error(self, location: Location, code: str, message: str, hint: str = "") -> None:
        """Record a diagnostic; compilation continues so every error is reported."""
