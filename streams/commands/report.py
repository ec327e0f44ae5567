"""`overseer report` — one self-contained HTML report on a model's behaviour in a period."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from streams.settings import Settings

err = Console(stderr=True)


def report(
    model: str = typer.Option(..., help="model name (request_model)"),
    since: str = typer.Option("", help="start, e.g. 2026-03-01 (default: the first event)"),
    until: str = typer.Option("", help="end, exclusive (default: unbounded)"),
    output: Path = typer.Option(Path("report.html"), "-o", "--output"),
    worker: str | None = typer.Option(None, help="a worker's API URL (default: the store, else its local worker)"),
) -> None:
    """Write an HTML report (plots inline, no external assets) anyone can read without knowing Overseer."""
    from streams.audit.access import StoreError, open_store
    from streams.audit.report import build_report

    try:
        data = build_report(open_store(Settings(), worker), model, since, until, output)
    except StoreError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    err.print(f"report on {model}: {data.summary['events']} events -> {output}")
