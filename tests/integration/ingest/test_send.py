"""`overseer send` for all four formats, through typer's CliRunner, to the real broker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from schemas.events import Event
from streams.commands.send import send
from tests.integration.ingest.conftest import Topics, events_of, read_topic

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ingest"


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("send")(send)
    app.command("noop")(lambda: None)  # two commands, so "send" is addressed by name as in the real CLI
    return app


def run(topics: Topics, *args: str, stdin: str | None = None) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli(), ["send", *args, "--bootstrap", topics.bootstrap, "--topic", topics.events,
                                        "--deadletter-topic", topics.deadletter, "--json"], input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("fmt", "fixture", "expected"), [
    ("native", "native_events.ndjson", 5),
    ("otlp", "otlp_genai_trace.json", 5),
    ("otlp", "otlp_genai_trace.pb", 5),
    ("litellm", "litellm_payloads.json", 6),
    ("openai", "openai_objects.json", 7),
])
def test_send_each_format(topics: Topics, fmt: str, fixture: str, expected: int) -> None:
    code, summary = run(topics, str(FIXTURES / fixture), "--format", fmt, "--producer-id", "cli-test",
                        "--keep-arguments")
    assert code == 0 and summary["sent"] == expected and summary["rejected"] == 0
    assert summary["skipped"] == (1 if fmt == "otlp" else 0)
    landed = asyncio.run(read_topic(topics.bootstrap, topics.events, summary["messages"]))
    assert len(landed) == summary["messages"]
    assert all(m.value["producer_id"] == "cli-test" for m in landed)
    events = events_of(landed)
    assert len(events) == expected
    validated = [Event.model_validate(e) for e in events]
    categories = {e.action_category for e in validated}
    assert {"weights_access", "exec", "net_egress"} <= categories  # the risky samples survive every format
    assert any("rm -rf /var/lib/postgresql" in (e.tool_arguments or "") for e in validated)
    assert not any(e.content for e in validated)  # arguments kept, prompts and completions still hashed


def test_stdin_bad_lines_and_context(topics: Topics) -> None:
    lines = [
        {"event_type": "inference", "ts": "2026-11-27T10:00:00Z", "agent_run_id": "r1"},
        "{broken json",
        {"event_type": "tool_call", "ts": "2026-11-27T10:00:01Z", "agent_run_id": "r1", "egress_bytes": -5},
        {"event_type": "tool_call", "ts": "2026-11-27T10:00:02Z", "agent_run_id": "r2", "deployment_id": "own"},
    ]
    stdin = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    code, summary = run(topics, "-", "--format", "native", "--deployment-id", "from-cli", stdin=stdin)
    assert code == 2
    assert (summary["sent"], summary["rejected"], summary["reasons"]) == (
        2, 2, {"malformed_json": 1, "schema_violation": 1})
    assert summary["errors"][0]["error"].startswith("line 2")
    assert summary["errors"][1]["error"].startswith("line 3, item 0: egress_bytes")
    events = events_of(asyncio.run(read_topic(topics.bootstrap, topics.events, 2)))
    assert sorted(e["deployment_id"] for e in events) == ["from-cli", "own"]
    dead = asyncio.run(read_topic(topics.bootstrap, topics.deadletter, 2))
    assert sorted(d.value["reason"] for d in dead) == ["malformed_json", "schema_violation"]
    assert all(d.value["source_topic"] == "ingest:file:stdin" for d in dead)


def test_unknown_format_and_missing_file(topics: Topics, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["send", str(FIXTURES / "openai_objects.json"), "--format", "csv"])
    assert result.exit_code == 1 and "unknown format" in result.output
    result = CliRunner().invoke(cli(), ["send", str(tmp_path / "nope.json"), "--bootstrap", topics.bootstrap])
    assert result.exit_code == 1 and "cannot read" in result.output


def test_human_summary(topics: Topics) -> None:
    result = CliRunner().invoke(cli(), ["send", str(FIXTURES / "litellm_payloads.json"), "--format", "litellm",
                                        "--bootstrap", topics.bootstrap, "--topic", topics.events,
                                        "--deadletter-topic", topics.deadletter])
    assert result.exit_code == 0, result.output
    assert "sent 6 events" in result.output and "0 rejected" in result.output


def test_otlp_ndjson_like_the_collector_file_exporter(topics: Topics, tmp_path: Path) -> None:
    export = json.loads((FIXTURES / "otlp_genai_trace.json").read_text())
    path = tmp_path / "traces.jsonl"
    path.write_text(json.dumps(export) + "\n" + json.dumps(export) + "\n")
    code, summary = run(topics, str(path), "--format", "otlp")
    assert code == 0 and (summary["units"], summary["sent"], summary["skipped"]) == (2, 10, 2)
    events = events_of(asyncio.run(read_topic(topics.bootstrap, topics.events, summary["messages"])))
    assert len(events) == 10 and len({e["event_id"] for e in events}) == 5  # same spans, same ids: dedupable
