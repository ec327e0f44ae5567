"""`overseer audit verify|retention` — check the hash chains; apply the content retention."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from streams.settings import Settings

console = Console()
err = Console(stderr=True)
audit_app = typer.Typer(help="Tamper evidence and retention of the audit trail.", no_args_is_help=True)


@audit_app.command("verify")
def verify(
    as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout"),
    anchor: Path | None = typer.Option(None, help="a head file written earlier with --save-anchor: also catches "
                                                  "a cut tail or a rewritten chain"),
    save_anchor: Path | None = typer.Option(None, help="write the current heads here, to keep somewhere else"),
    worker: str | None = typer.Option(None, help="a worker's API URL (default: the store, else its local worker)"),
) -> None:
    """Recompute the hash chains of detections, kill-switch commands and operator actions.

    Exit code 0 when every row is where the chain says, 3 when a row was changed, inserted or deleted.
    """
    from streams.audit.access import StoreError, open_store

    try:
        report = open_store(Settings(), worker).verify(json.loads(anchor.read_text()) if anchor else None)
    except StoreError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    if save_anchor is not None:
        save_anchor.write_text(json.dumps({t["table"]: {"seq": t["head_seq"], "row_hash": t["head_hash"]}
                                           for t in report["tables"]}, indent=1))
    if as_json:
        typer.echo(json.dumps(report))
    else:
        for t in report["tables"]:
            mark = "[green]ok[/]" if not t["findings"] else f"[red]{len(t['findings'])} finding(s)[/]"
            console.print(f"{t['table']:22} {t['rows']:>8} rows  head {t['head_seq']:>7} "
                          f"{t['head_hash'][:16] or '-':16}  {mark}")
            for f in t["findings"]:
                console.print(f"  [red]{f['kind']:8}[/] {f['table']} chain_seq={f['chain_seq']} id={f['row_id']}: "
                              f"{f['detail']}")
        console.print("[green]audit trail intact[/]" if report["ok"] else "[red]audit trail tampered with[/]")
    raise typer.Exit(0 if report["ok"] else 3)


@audit_app.command("retention")
def retention(days: int | None = typer.Option(None, help="default: OVERSEER_CONTENT_RETENTION_DAYS")) -> None:
    """Apply the content retention (workers do it at start-up; this is for a store no worker holds)."""
    from streams.audit.retention import apply_retention, current_retention
    from streams.store.client import connect_settings

    settings = Settings()
    client = connect_settings(settings)
    changed = apply_retention(client, days or settings.content_retention_days)
    console.print(f"content retention {current_retention(client)} ({'changed' if changed else 'unchanged'})")
