"""Ordered ClickHouse DDL migrations shipped with the package.

Files are ``NNNN_name.sql`` in ``schemas/migrations/``; statements are
separated by ``;`` at the end of a line. The runner lives in
`streams.store.migrate` (schemas never talks to a database).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    checksum: str


def _split(sql: str) -> tuple[str, ...]:
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return tuple(s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip())


def load_migrations() -> list[Migration]:
    """All migrations in version order.

    >>> [m.version for m in load_migrations()][:1]
    [1]
    """
    found: list[Migration] = []
    for entry in resources.files("schemas").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        sql = entry.read_text(encoding="utf-8")
        found.append(Migration(int(match.group(1)), match.group(2), _split(sql),
                               hashlib.sha256(sql.encode()).hexdigest()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in schemas/migrations: {versions}")
    return found
