"""The `overseer` command line: one Typer app, one sub-app per command group."""

from __future__ import annotations

import typer

from streams.commands.bench import bench
from streams.commands.alerts import alerts_app
from streams.commands.audit import audit_app
from streams.commands.backtest import backtest
from streams.commands.demo import demo
from streams.commands.detect_series import detect_series
from streams.commands.ingest import ingest_app
from streams.commands.kafka import kafka_app
from streams.commands.query import query
from streams.commands.report import report
from streams.commands.killswitch import killswitch_app
from streams.commands.rules import rules_app
from streams.commands.send import send
from streams.commands.worker import db_app, worker

app = typer.Typer(help="Overseer — behaviour monitoring and kill-switch for AI models and agents.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
app.command("demo")(demo)
app.command("worker")(worker)
app.add_typer(kafka_app, name="kafka")
app.add_typer(db_app, name="db")
app.add_typer(rules_app, name="rules")
app.add_typer(killswitch_app, name="killswitch")
app.add_typer(alerts_app, name="alerts")
app.add_typer(ingest_app, name="ingest")
app.command("send")(send)
app.command("detect-series")(detect_series)
app.command("query")(query)
app.command("report")(report)
app.add_typer(audit_app, name="audit")
app.command("backtest")(backtest)
app.command("bench")(bench)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
