"""`overseer demo` — the whole loop, live, on local infrastructure."""

from __future__ import annotations

import typer

from streams.settings import Settings


def demo(duration: float = typer.Option(40.0, "--duration", min=5, help="seconds of traffic"),
         rate: float = typer.Option(400.0, "--rate", min=1, help="events per second"),
         speed: float = typer.Option(30.0, "--speed", min=1, help="fleet seconds per wall-clock second"),
         seed: int = typer.Option(7, "--seed"),
         keep_kafka: bool = typer.Option(False, "--keep-kafka", help="leave the local broker running"),
         as_json: bool = typer.Option(False, "--json", help="print one JSON summary object as the last line")) -> None:
    """Start Kafka and a worker, send synthetic fleet traffic with injected risky behaviour, show what happens."""
    from streams.demo.run import DemoOptions, run_demo

    summary = run_demo(Settings(), DemoOptions(duration=duration, rate=rate, speed=speed, seed=seed,
                                               keep_kafka=keep_kafka), as_json)
    if not summary["complete"]:
        raise typer.Exit(1)
