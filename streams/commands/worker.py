"""`overseer worker` and `overseer db migrate`."""

from __future__ import annotations

import typer
from rich.console import Console

from streams.settings import Settings

console = Console(stderr=True)
db_app = typer.Typer(help="ClickHouse schema management.", no_args_is_help=True)


def worker(loglevel: str = typer.Option("WARNING", help="Faust/mode log level")) -> None:
    """Run a worker: consume events, detect, store, and act (Ctrl-C stops it cleanly)."""
    from rules.errors import RuleLoadError
    from streams.kafka.clients import NoBrokerError
    from streams.worker import run_worker

    try:
        run_worker(Settings(), loglevel=loglevel)
    except RuleLoadError as exc:
        console.print(f"[red]rule files rejected; the worker did not start[/]\n{exc}")
        raise typer.Exit(2) from exc
    except NoBrokerError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the ClickHouse migrations (idempotent; workers also do it at start-up)."""
    from streams.store.client import connect_settings
    from streams.store.migrate import migrate

    settings = Settings()
    try:
        report = migrate(connect_settings(settings))
    except Exception as exc:
        hint = (" — the embedded store is held by a running worker, which migrates at start-up"
                if "lock" in str(exc).lower() or "EmbeddedServer" in str(exc) else "")
        console.print(f"[red]migration failed:[/] {exc}{hint}")
        raise typer.Exit(1) from exc
    console.print(f"applied {report.applied or 'nothing'}; already applied {report.already}")
