"""`overseer kafka up|down|status|jars` — the local Apache Kafka (KRaft) cluster."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from streams.kafka.launcher import DEFAULT_KAFKA_VERSION, LauncherError, LocalKafka, resolve_jars
from streams.settings import Settings

kafka_app = typer.Typer(help="Run a local Apache Kafka (KRaft) cluster on loopback.", no_args_is_help=True)
console = Console(stderr=True)


def _launcher(base_port: int) -> LocalKafka:
    s = Settings()
    return LocalKafka(s.home, s.cache_dir, base_port=base_port, engine=s.kafka_engine)


@kafka_app.command("up")
def up(brokers: int = typer.Option(1, "--brokers", min=1, max=5, help="nodes in the KRaft quorum"),
       base_port: int = typer.Option(19092, help="client port of node 1; node i uses base+2(i-1)"),
       as_json: bool = typer.Option(False, "--json")) -> None:
    """Start the cluster (resolving the jars through Maven on first use) and wait until it answers."""
    try:
        with console.status(f"starting {brokers} Kafka node(s)…"):
            cluster = _launcher(base_port).up(brokers=brokers)
    except LauncherError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    if cluster.kind == "tansu":
        console.print("[yellow]warning:[/] Tansu broker (no Java runtime found, or OVERSEER_KAFKA_ENGINE=tansu): "
                      "memory only — nothing survives a restart; producers must run with "
                      "OVERSEER_KAFKA_IDEMPOTENCE=false")
    if as_json:
        print(json.dumps({"bootstrap": cluster.bootstrap, "kind": cluster.kind, "nodes": len(cluster.nodes)}))
    else:
        console.print(f"[green]Kafka {cluster.version} ({cluster.kind}) up[/] — "
                      f"export OVERSEER_KAFKA_BOOTSTRAP={cluster.bootstrap}")


@kafka_app.command("down")
def down(base_port: int = typer.Option(19092)) -> None:
    """Stop every node of the local cluster (data stays until `make clean`)."""
    _launcher(base_port).down()
    console.print("Kafka stopped")


@kafka_app.command("status")
def status(base_port: int = typer.Option(19092), as_json: bool = typer.Option(False, "--json")) -> None:
    """Show each node: pid, port, alive, listening."""
    st = _launcher(base_port).status()
    if as_json:
        print(json.dumps(st))
        return
    if not st["nodes"]:
        console.print("no local Kafka cluster")
        raise typer.Exit(1)
    table = Table("node", "pid", "port", "alive", "listening", title=f"{st['kind']} {st['version']} — {st['bootstrap']}")
    for n in st["nodes"]:
        table.add_row(str(n["node_id"]), str(n["pid"]), str(n["port"]), str(n["alive"]), str(n["listening"]))
    Console().print(table)
    if not st["running"]:
        raise typer.Exit(1)


@kafka_app.command("jars")
def jars(version: str = typer.Option(DEFAULT_KAFKA_VERSION, "--version")) -> None:
    """Resolve the broker jars through Maven into the cache (done by `make deps`)."""
    try:
        path = resolve_jars(Settings().cache_dir, version)
    except LauncherError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"Kafka {version} jars in {path}")
