"""Redact configured content fields before anything is stored.

``OVERSEER_REDACT_FIELDS=content,tool_arguments`` replaces those fields of
every event by :data:`MARKER` before the ClickHouse write; where the table has
a ``<field>_hash`` column, the SHA-256 of the original value is kept there
(unless the producer already sent one), so auditors can still match a known
text against what was seen without the text being stored. Rules and
detectors run *before* redaction, on the event as received.

Fields that are not plain strings (``attributes.*`` keys) are matched inside
the ``attributes`` map. Detections quote event fields in their output and
evidence; :meth:`Redactor.scrub` replaces the batch's redacted values there too,
so the text reaches neither the detections table nor the detections topic.

>>> r = Redactor(["content"])
>>> e = {"content": "my secret prompt", "content_hash": None}
>>> r.apply([e]), e["content"], e["content_hash"][:12]
(1, '[REDACTED]', 'sha256:234bd')
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

MARKER = "[REDACTED]"
HASHED = frozenset({"content", "tool_arguments"})


def sha256_ref(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class Redactor:
    def __init__(self, fields: Iterable[str]) -> None:
        self.fields = tuple(dict.fromkeys(f.strip() for f in fields if f and f.strip()))
        self._top = tuple(f for f in self.fields if not f.startswith("attributes."))
        self._attrs = tuple(f.removeprefix("attributes.") for f in self.fields if f.startswith("attributes."))

    def __bool__(self) -> bool:
        return bool(self.fields)

    def apply(self, events: list[dict[str, Any]]) -> int:
        """Redact in place; returns how many values were replaced."""
        n = 0
        for e in events:
            for name in self._top:
                value = e.get(name)
                if value is None or value == "" or value == MARKER:
                    continue
                text = value if isinstance(value, str) else str(value)
                if name in HASHED and not e.get(f"{name}_hash"):
                    e[f"{name}_hash"] = sha256_ref(text)
                e[name] = MARKER
                n += 1
            if self._attrs:
                attrs = e.get("attributes")
                if attrs:
                    hit = [k for k in self._attrs if k in attrs and attrs[k] != MARKER]
                    if hit:
                        e["attributes"] = {**attrs, **{k: MARKER for k in hit}}
                        n += len(hit)
        return n

    def originals(self, events: list[dict[str, Any]]) -> list[str]:
        """The values this batch's redaction removes (before :meth:`apply`), longest first."""
        found: set[str] = set()
        for e in events:
            for name in self._top:
                value = e.get(name)
                if isinstance(value, str) and len(value) >= 4 and value != MARKER:
                    found.add(value)
            attrs = e.get("attributes") or {}
            for key in self._attrs:
                value = attrs.get(key)
                if isinstance(value, str) and len(value) >= 4 and value != MARKER:
                    found.add(value)
        return sorted(found, key=len, reverse=True)

    def scrub(self, obj: Any, secrets: list[str]) -> Any:
        """``obj`` with every occurrence of ``secrets`` in its strings replaced by the marker."""
        if not secrets:
            return obj
        if isinstance(obj, str):
            for secret in secrets:
                if secret in obj:
                    obj = obj.replace(secret, MARKER)
            return obj
        if isinstance(obj, dict):
            return {k: self.scrub(v, secrets) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.scrub(v, secrets) for v in obj)
        return obj

    def scrub_detections(self, detections: list[Any], secrets: list[str]) -> list[Any]:
        if not secrets:
            return detections
        return [d.model_copy(update={"output": self.scrub(d.output, secrets), "title": self.scrub(d.title, secrets),
                                     "evidence": self.scrub(d.evidence, secrets)}) for d in detections]
