"""The `overseer` command line: one Typer app, one sub-app per command group."""

from __future__ import annotations

import typer

from streams.commands.demo import demo
from streams.commands.kafka import kafka_app
from streams.commands.worker import db_app, worker

app = typer.Typer(help="Overseer — behaviour monitoring and kill-switch for AI models and agents.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
app.add_typer(kafka_app, name="kafka")
app.add_typer(db_app, name="db")
app.command("worker")(worker)
app.command("demo")(demo)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
