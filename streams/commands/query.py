"""`overseer query NAME` — the named auditor queries, and `--sql` for read-only SQL."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from streams.settings import Settings

console = Console()
err = Console(stderr=True)


def query(
    name: str = typer.Argument("", help="model-history | model-hourly | trace | detections | detections-by-rule | "
                                        "killswitch-log | operator-actions (empty with --sql)"),
    model: str = typer.Option("", help="model name (request_model)"),
    since: str = typer.Option("", help="start of the period, e.g. 2026-03-01 or 2026-03-01T12:00:00Z"),
    until: str = typer.Option("", help="end of the period (exclusive)"),
    agent_run: str = typer.Option("", "--agent-run", help="agent run id (trace, detections)"),
    trace: str = typer.Option("", help="trace id (trace)"),
    rule: str = typer.Option("", help="rule id (detections)"),
    scope: str = typer.Option("", help="scope value (killswitch-log)"),
    operator: str = typer.Option("", help="operator (operator-actions)"),
    limit: int = typer.Option(100_000, help="at most this many rows"),
    sql: str = typer.Option("", "--sql", help="one read-only statement instead of a named query"),
    fmt: str = typer.Option("table", "--format", help="table | csv | json | parquet"),
    output: Path | None = typer.Option(None, "-o", "--output", help="write here (required for parquet)"),
    worker: str | None = typer.Option(None, help="a worker's API URL (default: open the store, else the "
                                                 "local worker holding it)"),
) -> None:
    """Answer an auditor's question from ClickHouse, even while a worker holds the embedded store."""
    from streams.audit.access import StoreError, open_store
    from streams.audit.output import (
        FORMATS,
        render_table,
        to_csv,
        to_json,
        write_parquet,
    )
    from streams.audit.queries import QUERIES, QueryError
    from streams.audit.readonly import WriteRefused

    if fmt not in FORMATS:
        err.print(f"[red]unknown format {fmt!r}[/]; use one of {', '.join(FORMATS)}")
        raise typer.Exit(2)
    if fmt == "parquet" and output is None:
        err.print("[red]--format parquet needs -o FILE[/]")
        raise typer.Exit(2)
    if not sql and not name:
        err.print("named queries:\n" + "\n".join(f"  {q.name:20} {q.help}" for q in QUERIES.values()))
        raise typer.Exit(2)
    params = {"model": model, "since": since, "until": until, "agent_run": agent_run, "trace": trace, "rule": rule,
              "scope": scope, "operator": operator, "limit": limit}
    try:
        store = open_store(Settings(), worker)
        table = store.sql(sql) if sql else store.named(name, params)
    except (WriteRefused, QueryError) as exc:
        err.print(f"[red]refused:[/] {exc}")
        raise typer.Exit(2) from exc
    except StoreError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    except Exception as exc:  # ClickHouse's own message (syntax, readonly mode, unknown column)
        err.print(f"[red]query failed:[/] {str(exc)[:2000]}")
        raise typer.Exit(1) from exc
    if fmt == "parquet":
        assert output is not None
        write_parquet(table, output)
    elif fmt == "table" and output is None:
        console.print(render_table(table, f"{name or 'sql'} — {len(table.rows)} rows from {store.where}"))
        return
    else:
        text = to_csv(table) if fmt == "csv" else to_json(table) if fmt == "json" else to_csv(table)
        if output is None:
            typer.echo(text, nl=False)
            return
        output.write_text(text)
    err.print(f"{len(table.rows)} rows -> {output}")
