"""Read docker-compose.yml the way Compose does, without Docker.

Compose resolves YAML anchors and merge keys, then interpolates ``${VAR}``
expressions from the environment (and an ``--env-file``), then applies
profiles. This module does the same for the tests, so they check the file
Compose would actually run, not only its text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO / "docker-compose.yml"

# $$ | ${NAME} | ${NAME<op>arg} | $NAME  (op: :- - :? ? :+ +)
_EXPR = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(KeyError):
    """A ``${VAR:?message}`` whose variable is unset (or empty)."""


class Reference:
    """One ``${...}`` expression found in the file."""

    def __init__(self, name: str, op: str | None, arg: str | None) -> None:
        self.name, self.op, self.arg = name, op, arg

    @property
    def required(self) -> bool:
        return self.op in (":?", "?")

    @property
    def has_default(self) -> bool:
        return self.op in (":-", "-")


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The file as YAML (anchors and ``<<`` merges resolved), not interpolated."""
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; ``#`` comments and blank lines ignored."""
    env: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not KEY=VALUE: {raw!r}")
        env[key.strip()] = value.strip()
    return env


def references(node: Any) -> list[Reference]:
    """Every variable reference in the document, keys and values."""
    found: list[Reference] = []
    if isinstance(node, str):
        for m in _EXPR.finditer(node):
            if m.group("braced"):
                found.append(Reference(m.group("braced"), m.group("op"), m.group("arg")))
            elif m.group("named"):
                found.append(Reference(m.group("named"), None, None))
    elif isinstance(node, Mapping):
        for key, value in node.items():
            found += references(key) + references(value)
    elif isinstance(node, list):
        for item in node:
            found += references(item)
    return found


def _substitute(text: str, env: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group("escaped"):
            return "$"
        name = m.group("braced") or m.group("named")
        op, arg = m.group("op"), m.group("arg") or ""
        value = env.get(name)
        unset_or_empty = not value
        if op == ":-":
            return arg if unset_or_empty else value  # type: ignore[return-value]
        if op == "-":
            return arg if value is None else value
        if op == ":?":
            if unset_or_empty:
                raise MissingVariable(f"{name}: {arg}")
            return value  # type: ignore[return-value]
        if op == "?":
            if value is None:
                raise MissingVariable(f"{name}: {arg}")
            return value
        if op == ":+":
            return "" if unset_or_empty else arg
        if op == "+":
            return "" if value is None else arg
        return value or ""

    return _EXPR.sub(one, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """A copy of ``node`` with every string interpolated from ``env``."""
    if isinstance(node, str):
        return _substitute(node, env)
    if isinstance(node, Mapping):
        return {interpolate(k, env): interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    return node


def active_services(doc: Mapping[str, Any], profiles: set[str]) -> dict[str, Any]:
    """Services Compose starts with these profiles enabled."""
    return {name: svc for name, svc in doc["services"].items()
            if not svc.get("profiles") or profiles & set(svc["profiles"])}


def env_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a dict of strings (list or map form)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}
