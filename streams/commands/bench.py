"""`overseer bench` — the ceiling, the per-event Faust baseline and Overseer, on one broker, in one run."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer

from streams.settings import Settings


def bench(events: int = typer.Option(100_000, "--events", min=100, help="fleet events generated once, read by "
                                                                         "every phase"),
          batch_size: int = typer.Option(500, "--batch-size", min=1, help="events per Kafka message "
                                                                          "(producer-side batches)"),
          workers: str = typer.Option("1,2", "--workers", help="worker counts to measure, N workers on N "
                                                               "partitions"),
          baseline_events: int = typer.Option(20_000, "--baseline-events", min=100,
                                              help="events for the (slow) per-event baseline"),
          latency_seconds: float = typer.Option(10.0, "--latency-seconds", min=1,
                                                help="live traffic for the detection latency"),
          latency_rate: float = typer.Option(1000.0, "--latency-rate", min=10, help="events/s of live traffic"),
          state_keys: int = typer.Option(1_000_000, "--state-keys", min=1000,
                                         help="active keys for the state-size probe"),
          single_message: bool = typer.Option(True, "--single-message/--no-single-message",
                                              help="also run Overseer on the baseline's one-event-per-message topic"),
          workdir: str | None = typer.Option(None, "--workdir", help="default: $OVERSEER_HOME/bench"),
          keep: bool = typer.Option(False, "--keep", help="keep the work directory (logs) and the broker"),
          as_json: bool = typer.Option(False, "--json", help="print one JSON object as the last line")) -> None:
    """Measure events/s of (a) raw consume + decode, (b) a per-event Faust agent, (c) Overseer's workers."""
    from rich.console import Console

    from streams.bench.run import Bench, BenchOptions
    from streams.bench.summary import render

    try:
        counts = tuple(int(x) for x in workers.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter("--workers takes worker counts like 1,2") from None
    if not counts or min(counts) < 1:
        raise typer.BadParameter("--workers takes worker counts like 1,2")
    console = Console(stderr=as_json)
    opts = BenchOptions(events=events, batch_size=batch_size, workers=counts, baseline_events=baseline_events,
                        latency_seconds=latency_seconds, latency_rate=latency_rate, state_keys=state_keys, single_message=single_message,
                        workdir=Path(workdir) if workdir else None, keep=keep)
    result = Bench(Settings(), opts, say=lambda m: console.print(m, highlight=False)).run()
    render(console, result)
    if as_json:
        print(orjson.dumps(result).decode())
