"""`overseer killswitch list|issue|release|extend` — the operator's side of the kill-switch.

The CLI publishes signed commands to the compacted kill-switch topic and
reads its state back, verified like a gateway would. It never writes to
ClickHouse: the worker records every command it sees (and an
``operator_actions`` row for each manual one).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.table import Table

from rules.policy import parse_duration
from schemas.detections import Scope
from schemas.killswitch import LADDER, KillSwitchCommand, canonical_ts
from streams.enforcer.enforcer import Enforcer, EnforcerError
from streams.kafka.launcher import LocalKafka
from streams.killswitch.commands import OperatorError, build_extend, build_manual_issue, build_release
from streams.killswitch.signing import KeyRing, Signer, load_or_create_signing_key
from streams.killswitch.topic import ensure_compacted_topic, publish_commands, read_state
from streams.settings import Settings

killswitch_app = typer.Typer(help="Inspect and operate the kill-switch (signed, leased containment).",
                             no_args_is_help=True)
err = Console(stderr=True)

SCOPE_HELP = "KIND=VALUE, e.g. deployment=dep-1, model=m, tenant=t, agent_run=r, session=s, or fleet"
OPERATOR = typer.Option(..., "--operator", help="your identity (recorded in the audit log)")
REASON = typer.Option(..., "--reason", help="why (recorded in the audit log)")
MODE = typer.Option("enforce", "--mode", help="enforce or shadow")


class _Context:
    def __init__(self) -> None:
        self.settings = Settings()
        bootstrap = self.settings.kafka_bootstrap
        if not bootstrap:
            cluster = LocalKafka(self.settings.home, self.settings.cache_dir).load()
            if cluster is None:
                _fail("no Kafka: set OVERSEER_KAFKA_BOOTSTRAP or start one with `overseer kafka up`")
            bootstrap = cluster.bootstrap
        self.bootstrap: str = bootstrap
        self.topic = self.settings.topic("killswitch")

    def signer(self) -> Signer:
        path = self.settings.signing_key_path
        assert path is not None
        return load_or_create_signing_key(Path(path), self.settings.signing_key_id)

    def keyring(self) -> KeyRing:
        signer = self.signer()  # makes sure the key and keyring.json exist
        assert self.settings.signing_key_path is not None
        ring = KeyRing.load(Path(self.settings.signing_key_path).parent / "keyring.json")
        ring.add(signer.key_id, signer.public_key)
        return ring

    def state(self) -> Enforcer:
        try:
            asyncio.run(ensure_compacted_topic(self.bootstrap, self.topic, self.settings.topic_replication))
            return asyncio.run(read_state(self.bootstrap, self.topic, self.keyring()))
        except (EnforcerError, KafkaError, TimeoutError, OSError) as exc:
            _fail(f"cannot read {self.topic} from {self.bootstrap}: {exc!r}")

    def publish(self, cmd: KillSwitchCommand) -> None:
        try:
            asyncio.run(ensure_compacted_topic(self.bootstrap, self.topic, self.settings.topic_replication))
            asyncio.run(publish_commands(self.bootstrap, self.topic, [cmd]))
        except (KafkaError, TimeoutError, OSError) as exc:
            _fail(f"command {cmd.command_id} NOT published to {self.topic} on {self.bootstrap}: {exc!r}")


def _fail(message: str) -> Any:
    err.print(f"[red]error:[/] {message}")
    raise typer.Exit(1)


def _scope(text: str) -> Scope:
    kind, _, value = text.partition("=")
    if kind == "fleet":
        return Scope(kind="fleet", value=value or "all")
    if not value:
        _fail(f"--scope {text!r}: expected {SCOPE_HELP}")
    try:
        return Scope(kind=kind, value=value)
    except ValueError:
        return _fail(f"--scope {text!r}: unknown kind {kind!r}; expected {SCOPE_HELP}")


def _seconds(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        return _fail(str(exc))


def _row(cmd: KillSwitchCommand) -> dict[str, Any]:
    return {"slot": cmd.slot(), "scope": str(cmd.scope), "action": str(cmd.action), "mode": cmd.mode,
            "throttle_rate": cmd.throttle_rate, "revoked_tools": cmd.revoked_tools, "op": cmd.op,
            "issuer": cmd.issuer, "operators": cmd.operators, "issued_at": canonical_ts(cmd.issued_at),
            "lease_expires_at": canonical_ts(cmd.lease_expires_at), "reason": cmd.reason,
            "command_id": cmd.command_id, "key_id": cmd.key_id}


def _active(enforcer: Enforcer, scope: Scope, mode: str) -> KillSwitchCommand | None:
    slot = str(scope) if mode == "enforce" else f"shadow:{scope}"
    effect = enforcer.active.get(slot, datetime.now(UTC).timestamp())
    return effect.command if effect is not None else None


@killswitch_app.command("list")
def list_active(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Show the active containments (verified, unexpired), strongest first."""
    ctx = _Context()
    enforcer = ctx.state()
    rows = [_row(e.command) for e in enforcer.active.active(datetime.now(UTC).timestamp())]
    rejected = {k: v for k, v in enforcer.stats.items() if k.startswith("rejected_") and v}
    if as_json:
        print(json.dumps({"active": rows, "rejected": rejected}, indent=2))
        return
    table = Table("scope", "action", "mode", "issued by", "lease expires", "reason", title=f"active on {ctx.topic}")
    for r in rows:
        action = r["action"] + (f" {r['throttle_rate']}/s" if r["throttle_rate"] else "") + \
            (f" {','.join(r['revoked_tools'])}" if r["revoked_tools"] else "")
        by = r["issuer"] + (f" ({', '.join(r['operators'])})" if r["operators"] else "")
        table.add_row(r["scope"], action, r["mode"], by, r["lease_expires_at"], r["reason"])
    Console().print(table if rows else "nothing active")
    if rejected:
        err.print(f"[yellow]rejected messages on the topic:[/] {rejected}")


@killswitch_app.command("issue")
def issue(scope: str = typer.Option(..., "--scope", help=SCOPE_HELP),
          action: str = typer.Option(..., "--action", help=" | ".join(LADDER)),
          reason: str = REASON, operator: str = OPERATOR,
          lease: str = typer.Option("1h", "--lease", help="how long it holds unless extended: 30m, 1h, 2d"),
          mode: str = MODE,
          rate: float | None = typer.Option(None, "--rate", help="requests/s, for --action throttle"),
          tool: list[str] = typer.Option([], "--tool", help="tool to revoke (repeatable), for revoke_tools"),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Contain a scope by hand: a signed command that every gateway's enforcer obeys."""
    if action not in LADDER:
        _fail(f"--action {action!r}: expected one of {', '.join(LADDER)}")
    if mode not in ("enforce", "shadow"):
        _fail("--mode must be enforce or shadow")
    ctx = _Context()
    try:
        cmd = build_manual_issue(_scope(scope), action, [operator], reason, ctx.signer(), datetime.now(UTC),
                                 _seconds(lease), mode=mode, throttle_rate=rate, revoked_tools=tool)
    except OperatorError as exc:
        _fail(str(exc))
    ctx.publish(cmd)
    _done(cmd, as_json)


@killswitch_app.command("release")
def release(scope: str = typer.Option(..., "--scope", help=SCOPE_HELP), reason: str = REASON,
            operator: str = OPERATOR,
            second_operator: str | None = typer.Option(None, "--second-operator",
                                                       help="a second, distinct person (required for fleet scope)"),
            mode: str = MODE, as_json: bool = typer.Option(False, "--json")) -> None:
    """Lift an active containment. Fleet scope needs two distinct operators."""
    ctx = _Context()
    target = _scope(scope)
    operators = [operator] + ([second_operator] if second_operator else [])
    if target.kind == "fleet" and len({o.strip() for o in operators if o.strip()}) < 2:
        _fail("releasing a fleet-scope command needs two distinct operators (--second-operator NAME)")
    active = _active(ctx.state(), target, mode)
    if active is None:
        _fail(f"nothing active on {target} ({mode}); see `overseer killswitch list`")
    try:
        cmd = build_release(target, operators, reason, ctx.signer(), datetime.now(UTC), active=active)
    except OperatorError as exc:
        _fail(str(exc))
    ctx.publish(cmd)
    _done(cmd, as_json)


@killswitch_app.command("extend")
def extend(scope: str = typer.Option(..., "--scope", help=SCOPE_HELP),
           lease: str = typer.Option(..., "--lease", help="new lease from now: 30m, 2h, 1d"),
           reason: str = REASON, operator: str = OPERATOR, mode: str = MODE,
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Give an active containment a new lease (same action, same evidence)."""
    ctx = _Context()
    target = _scope(scope)
    active = _active(ctx.state(), target, mode)
    if active is None:
        _fail(f"nothing active on {target} ({mode}) to extend; see `overseer killswitch list`")
    try:
        cmd = build_extend(active, _seconds(lease), [operator], reason, ctx.signer(), datetime.now(UTC))
    except OperatorError as exc:
        _fail(str(exc))
    ctx.publish(cmd)
    _done(cmd, as_json)


def _done(cmd: KillSwitchCommand, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_row(cmd)))
    else:
        err.print(f"[green]{cmd.op}[/] {cmd.action} on {cmd.slot()} — command {cmd.command_id}, "
                  f"lease until {canonical_ts(cmd.lease_expires_at)}, signed by {cmd.key_id}")
