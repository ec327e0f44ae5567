"""`overseer send FILE|- --format native|otlp|litellm|openai` — publish a file of events.

Registered by the CLI as ``app.command("send")(send)``. Exit status: 0 when
every item was sent, 2 when some were refused (they are on the dead-letter
topic, and listed), 1 when nothing could be done (unreadable file, no broker).
"""

from __future__ import annotations

import asyncio
import json

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streams.ingest.adapters import FORMATS, AdapterOptions, PayloadError
from streams.ingest.files import Unit, read_source, split_units
from streams.ingest.producer import EventPublisher
from streams.ingest.sender import SendSummary, send_units
from streams.settings import Settings

console = Console(stderr=True)


def send(
    file: str = typer.Argument(..., help="file to send, or - for stdin (NDJSON, JSON array, one object, .pb)"),
    format: str = typer.Option("native", "--format", "-f", help=f"input format: {', '.join(FORMATS)}"),
    topic: str | None = typer.Option(None, "--topic", help="events topic (default overseer.events.v1)"),
    deadletter_topic: str | None = typer.Option(None, "--deadletter-topic", help="where refused items go "
                                                "(default overseer.deadletter.v1)"),
    bootstrap: str | None = typer.Option(None, "--bootstrap", help="host:port; default OVERSEER_KAFKA_BOOTSTRAP "
                                                                   "or the local cluster"),
    producer_id: str | None = typer.Option(None, "--producer-id", help="stamped on each batch"),
    deployment_id: str | None = typer.Option(None, "--deployment-id", help="for events that do not say"),
    tenant_id: str | None = typer.Option(None, "--tenant-id", help="for events that do not say"),
    keep_content: bool = typer.Option(False, "--keep-content", help="keep prompt/completion/argument text, "
                                                                    "not only sha256 hashes"),
    keep_arguments: bool = typer.Option(False, "--keep-arguments", help="keep tool-call arguments (commands, "
                                                                        "paths, URLs) as text; prompts stay hashed"),
    batch_size: int = typer.Option(500, "--batch-size", min=1, help="events per Kafka message"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout"),
) -> None:
    """Send a file of events in any supported format to the events topic, with a progress bar."""
    if format not in FORMATS:
        console.print(f"[red]error:[/] unknown format {format!r}; use one of {', '.join(FORMATS)}")
        raise typer.Exit(1)
    settings = Settings()
    try:
        name, data = read_source(file)
        units = split_units(name, data, format)
        server = bootstrap or _bootstrap(settings)
    except (PayloadError, RuntimeError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    context = {k: v for k, v in (("deployment_id", deployment_id), ("tenant_id", tenant_id)) if v}
    options = AdapterOptions(keep_content=keep_content, keep_arguments=keep_arguments, context=context)
    summary = SendSummary(name, format, topic or settings.topic("events"))
    publisher = EventPublisher(server, summary.topic, deadletter_topic or settings.topic("deadletter"),
                               producer_id=producer_id, max_batch=batch_size,
                               max_message_bytes=settings.max_message_bytes, client_kwargs=_client_kwargs(settings))
    try:
        asyncio.run(_run(publisher, units, format, options, summary, show=not as_json))
    except Exception as exc:  # Kafka unreachable, topic missing, ...: say what and stop
        console.print(f"[red]error:[/] sending to {server} failed: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from exc
    _report(summary, as_json)
    if summary.rejected:
        raise typer.Exit(2)


async def _run(publisher: EventPublisher, units: list[Unit], fmt: str, options: AdapterOptions,
               summary: SendSummary, show: bool) -> None:
    await publisher.start()
    try:
        with Progress(TextColumn("[bold]sending[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, disable=not show, transient=False) as progress:
            task = progress.add_task(summary.source, total=len(units))
            await send_units(publisher, units, fmt, options, summary,
                             advance=lambda n: progress.advance(task, n))
    finally:
        await publisher.stop()


def _bootstrap(settings: Settings) -> str:
    from streams.kafka.clients import resolve_bootstrap

    return resolve_bootstrap(settings)


def _client_kwargs(settings: Settings) -> dict[str, object]:
    """TLS/SASL settings, and idempotence off where the broker cannot do it (the Tansu fallback)."""
    from streams.kafka.clients import producer_kwargs

    return producer_kwargs(settings)


def _report(summary: SendSummary, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary.to_dict()))
        return
    colour = "green" if not summary.rejected else "yellow"
    console.print(f"[{colour}]sent {summary.sent} events[/] in {summary.messages} messages to {summary.topic}"
                  f" — {summary.rejected} rejected, {summary.skipped} skipped (not GenAI)")
    if summary.errors:
        table = Table("reason", "where / error", title="rejected (on the dead-letter topic)")
        for err in summary.errors:
            table.add_row(err["reason"], err["error"])
        console.print(table)
