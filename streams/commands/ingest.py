"""`overseer ingest serve` — the OTLP/HTTP receiver in front of the events topic."""

from __future__ import annotations

import logging

import typer
from aiohttp import web
from aiokafka.errors import KafkaError
from rich.console import Console

from streams.ingest.adapters import AdapterOptions
from streams.ingest.producer import EventPublisher
from streams.ingest.receiver import ReceiverConfig, make_app
from streams.settings import Settings

ingest_app = typer.Typer(help="Receive OTLP/HTTP traces and other formats into Kafka.", no_args_is_help=True)
console = Console(stderr=True)


@ingest_app.callback()
def ingest() -> None:
    """Receive OTLP/HTTP traces and other formats into Kafka (a group, so `serve` is always named)."""


@ingest_app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="bind address (0.0.0.0 to accept remote exporters)"),
    port: int = typer.Option(4318, "--port", help="4318 is the OTLP/HTTP default"),
    max_body_mb: float = typer.Option(8.0, "--max-body-mb", min=0.01, help="larger requests get 413"),
    max_pending: int = typer.Option(50_000, "--max-pending", min=1,
                                    help="events awaiting Kafka acks before requests get 503 (backpressure)"),
    keep_content: bool = typer.Option(False, "--keep-content", help="keep text, not only sha256 hashes"),
    keep_arguments: bool = typer.Option(False, "--keep-arguments",
                                        help="keep tool-call arguments as text; prompts stay hashed"),
    bootstrap: str | None = typer.Option(None, "--bootstrap"),
) -> None:
    """Serve POST /v1/traces (OTLP JSON/protobuf) and POST /v1/events?format=… until Ctrl-C."""
    from streams.kafka.clients import NoBrokerError, producer_kwargs, resolve_bootstrap

    settings = Settings()
    try:
        server = bootstrap or resolve_bootstrap(settings)
    except NoBrokerError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = ReceiverConfig(max_body_bytes=int(max_body_mb * 1024 * 1024),
                            options=AdapterOptions(keep_content=keep_content, keep_arguments=keep_arguments))

    async def app() -> web.Application:
        publisher = EventPublisher(server, settings.topic("events"), settings.topic("deadletter"),
                                   max_message_bytes=settings.max_message_bytes, max_pending_events=max_pending,
                                   client_kwargs=producer_kwargs(settings))  # idempotence per broker
        await publisher.start()
        application = make_app(publisher, config)

        async def stop(_app: web.Application) -> None:
            await publisher.stop()

        application.on_cleanup.append(stop)
        return application

    console.print(f"OTLP/HTTP receiver on http://{host}:{port}/v1/traces -> {settings.topic('events')} at {server}")
    try:
        web.run_app(app(), host=host, port=port, print=None)
    except KafkaError as exc:
        console.print(f"[red]error:[/] cannot reach Kafka at {server}: {exc}")
        raise typer.Exit(1) from exc
    except OSError as exc:
        console.print(f"[red]error:[/] cannot listen on {host}:{port}: {exc.strerror or exc}")
        raise typer.Exit(1) from exc

