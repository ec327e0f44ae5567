"""``--sql`` is for reading: a statement check first, then ``readonly=1`` in ClickHouse itself.

The check gives a clear message before anything runs; the engine's read-only
mode is the guarantee (a ``SELECT`` can not write, whatever it hides).

>>> check_read_only("SELECT 1")
'SELECT 1'
>>> try:
...     check_read_only("ALTER TABLE events DELETE WHERE 1")
... except WriteRefused as exc:
...     print(exc)
only one read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS) is allowed; got ALTER
"""

from __future__ import annotations

READ_ONLY_PREFIXES = ("select", "with", "show", "describe", "desc", "explain", "exists")


class WriteRefused(ValueError):
    """The SQL would write, or holds more than one statement."""


def check_read_only(sql: str) -> str:
    text = sql.strip().rstrip(";").strip()
    first = text.split(None, 1)[0].upper() if text else "nothing"
    if not text.lower().startswith(READ_ONLY_PREFIXES) or ";" in text:
        raise WriteRefused("only one read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS) "
                           f"is allowed; got {first}")
    return text
