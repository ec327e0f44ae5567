"""`overseer backtest` — what a candidate rule set would have flagged and done on stored events."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from streams.settings import Settings

console = Console()
err = Console(stderr=True)


def backtest(
    rules: list[Path] = typer.Option(..., "--rules", help="candidate rule files or directories"),
    since: str = typer.Option("", help="start of the replayed period"),
    until: str = typer.Option("", help="end of the replayed period (exclusive)"),
    baseline: list[Path] | None = typer.Option(None, "--baseline", help="current rules (default: "
                                               "OVERSEER_RULES_PATHS, else the built-in packs)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout"),
    worker: str | None = typer.Option(None, help="a worker's API URL (default: the store, else its local worker)"),
) -> None:
    """Replay stored events through the candidate rules on the live code path; report new, lost and unchanged
    hits and the kill-switch commands the candidate would have issued."""
    from rules.errors import RuleLoadError
    from streams.audit.access import StoreError, open_store
    from streams.audit.backtest import backtest as run
    from streams.audit.replay import stored_events

    settings = Settings()
    try:
        store = open_store(settings, worker)
        report = run(stored_events(store, since, until), rules, baseline or settings.rules_paths or None,
                     settings.allowed_lateness_s)
    except RuleLoadError as exc:
        err.print(f"[red]rule files rejected[/]\n{exc}")
        raise typer.Exit(2) from exc
    except StoreError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(report))
        return
    console.print(f"replayed {report['events']} events: baseline {report['baseline']['hits']} hits, candidate "
                  f"{report['candidate']['hits']} hits ({len(report['new'])} new, {len(report['lost'])} lost, "
                  f"{report['unchanged']} unchanged)")
    t = Table("rule", "new", "lost", "unchanged", title="hits per rule")
    for rule, c in report["by_rule"].items():
        t.add_row(rule, str(c.get("new", 0)), str(c.get("lost", 0)), str(c.get("unchanged", 0)))
    console.print(t)
    cmds = report["commands"]
    console.print(f"kill-switch commands the candidate would have issued: {len(cmds['candidate'])} "
                  f"({len(cmds['new'])} not issued by the baseline, {len(cmds['lost'])} no longer issued)")
    for c in cmds["candidate"]:
        console.print(f"  {c['ts']}  {c['action']:12} {c['scope']:30} policy {c['policy_id']} ({c['mode']})")
