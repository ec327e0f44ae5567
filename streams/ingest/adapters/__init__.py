"""Adapters: what fleets already emit -> :class:`schemas.Event` dicts.

Each format has one pure function ``adapt(payload, options) -> AdapterResult``;
:func:`adapt` dispatches on the format name used by the CLI and the receiver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams.ingest.adapters import litellm, native, openai, otlp
from streams.ingest.adapters.base import AdapterOptions, AdapterResult, ItemError, PayloadError

Adapter = Callable[[Any, AdapterOptions], AdapterResult]

ADAPTERS: dict[str, Adapter] = {
    "native": native.adapt,
    "otlp": otlp.adapt,
    "litellm": litellm.adapt,
    "openai": openai.adapt,
}
FORMATS = tuple(ADAPTERS)


def adapt(fmt: str, payload: Any, options: AdapterOptions | None = None) -> AdapterResult:
    try:
        adapter = ADAPTERS[fmt]
    except KeyError:
        raise PayloadError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}") from None
    return adapter(payload, options or AdapterOptions())


__all__ = ["ADAPTERS", "FORMATS", "AdapterOptions", "AdapterResult", "ItemError", "PayloadError", "adapt"]
