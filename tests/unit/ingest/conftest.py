"""Sample payloads of tests/fixtures/ingest, loaded fresh for every test (tests may mutate them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ingest"


@pytest.fixture()
def otlp_export() -> dict[str, Any]:
    return json.loads((FIXTURES / "otlp_genai_trace.json").read_text())


@pytest.fixture()
def otlp_protobuf() -> bytes:
    return (FIXTURES / "otlp_genai_trace.pb").read_bytes()


@pytest.fixture()
def litellm_payloads() -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "litellm_payloads.json").read_text())


@pytest.fixture()
def openai_objects() -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "openai_objects.json").read_text())


@pytest.fixture()
def native_lines() -> list[Any]:
    return [json.loads(line) for line in (FIXTURES / "native_events.ndjson").read_text().splitlines() if line]
