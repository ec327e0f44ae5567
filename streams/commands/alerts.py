"""`overseer alerts list|show|ack|resolve|silence|silences|expire|release|hash-token` — on-call from a terminal.

Every command talks to a worker's HTTP API (``--url``, default the local
worker on ``OVERSEER_WORKER_WEB_PORT``) with ``--token`` / ``OVERSEER_API_TOKEN``,
so the CLI is authenticated, role-checked and audited exactly like the
console. ``--json`` prints the API's JSON on stdout for scripts. Exit codes:
0 done, 1 refused or failed (the API's message on stderr), 2 unreachable.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from streams.api.auth import hash_token
from streams.settings import Settings

alerts_app = typer.Typer(help="See and act on alerts and the kill-switch through a worker's HTTP API.",
                         no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _default_url() -> str:
    return f"http://127.0.0.1:{Settings().worker_web_port}"


URL = typer.Option(None, "--url", help="worker base URL [default: http://127.0.0.1:$OVERSEER_WORKER_WEB_PORT]")
TOKEN = typer.Option(None, "--token", envvar="OVERSEER_API_TOKEN", help="API token (or OVERSEER_API_TOKEN)")
JSON = typer.Option(False, "--json", help="print the API's JSON")
MATCHER = typer.Option([], "--matcher", "-m", help="NAME=VALUE, NAME!=VALUE, NAME=~RE, NAME!~RE (repeatable)")


def call(method: str, path: str, url: str | None, token: str | None, body: Any = None) -> Any:
    base = (url or _default_url()).rstrip("/")
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                 headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", "")
        except ValueError:
            message = exc.reason
        err.print(f"[red]error:[/] {method} {path}: {exc.code} {escape(str(message))}")
        raise typer.Exit(1) from exc
    except (urllib.error.URLError, OSError) as exc:
        err.print(f"[red]error:[/] cannot reach the worker at {base}: {exc} (is `overseer worker` running? --url?)")
        raise typer.Exit(2) from exc


def _age(seconds: float) -> str:
    s = int(seconds)
    return f"{s}s" if s < 60 else f"{s // 60}m" if s < 3600 else f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _print(result: Any, as_json: bool, text: str) -> None:
    if as_json:
        print(json.dumps(result, indent=None, sort_keys=True))
    else:
        out.print(text)


@alerts_app.command("list")
def list_alerts(state: str = typer.Option("firing,acknowledged", "--state", help="comma-separated; '' for all"),
                severity: str = typer.Option("", "--severity", help="comma-separated severities"),
                rule: str = typer.Option("", "--rule", help="rule id"),
                scope: str = typer.Option("", "--scope", help="KIND=VALUE"),
                limit: int = typer.Option(200, "--limit"),
                url: str | None = URL, token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """Alerts, newest change first (default: the active ones)."""
    query = {k: v for k, v in (("state", state), ("severity", severity), ("rule_id", rule), ("scope", scope),
                               ("limit", str(limit))) if v}
    result = call("GET", "/api/v1/alerts?" + urllib.parse.urlencode(query), url, token)
    if as_json:
        _print(result, True, "")
        return
    table = Table("severity", "state", "alert", "scope", "age", "count", "id")
    for a in result["alerts"]:
        flags = " ".join(f for f, on in (("[safety]", a["protected"]), ("[silenced]", a["silenced_by"]),
                                         ("[inhibited]", a["inhibited_by"])) if on)
        table.add_row(a["severity"], a["state"] + (f" by {a['acknowledged_by']}" if a["state"] == "acknowledged"
                                                   else ""), escape(f"{a['title']} {flags}"),
                      f"{a['scope']['kind']}={a['scope']['value']}", _age(a["age_s"]), str(a["count"]), a["alert_id"])
    out.print(table)


@alerts_app.command("show")
def show(alert_id: str, url: str | None = URL, token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """One alert: its rule, evidence events and timeline."""
    r = call("GET", f"/api/v1/alerts/{alert_id}", url, token)
    a = r["alert"]
    lines = [f"[bold]{escape(a['title'])}[/] — {a['scope']['kind']}={a['scope']['value']}",
             f"{a['severity']} · {a['state']} · {a['count']} detection(s) · {escape(a['summary'])}",
             f"rule: {a['rule_id']}" + (f" ({r['rule']['source']})" if r.get("rule") else ""), "timeline:"]
    lines += [f"  {t['ts']}  {t['kind']:<10} {escape(t['text'])}" for t in r["timeline"]]
    _print(r, as_json, "\n".join(lines))


@alerts_app.command("ack")
def ack(alert_id: str, reason: str = typer.Option("", "--reason"), url: str | None = URL,
        token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """Acknowledge an alert (role oncall or admin; audited)."""
    r = call("POST", f"/api/v1/alerts/{alert_id}/ack", url, token, {"reason": reason})
    _print(r, as_json, f"{alert_id}: {r['status']}" + (f" ({r['alert']['state']})" if "alert" in r else ""))


@alerts_app.command("resolve")
def resolve(alert_id: str, reason: str = typer.Option(..., "--reason", help="why (audited)"), url: str | None = URL,
            token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """Resolve an alert (role oncall or admin; audited)."""
    r = call("POST", f"/api/v1/alerts/{alert_id}/resolve", url, token, {"reason": reason})
    _print(r, as_json, f"{alert_id}: {r['status']}" + (f" ({r['alert']['state']})" if "alert" in r else ""))


@alerts_app.command("silence")
def silence(alert_id: str = typer.Argument(None, help="silence this alert's rule and scope; or give --matcher"),
            matcher: list[str] = MATCHER,
            owner: str = typer.Option(..., "--owner", help="who owns the silence"),
            reason: str = typer.Option(..., "--reason"),
            duration: str = typer.Option("1h", "--duration", help="e.g. 30m, 2h (over 24h needs admin)"),
            url: str | None = URL, token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """Silence an alert or a set of matchers. Safety-class alerts can never be silenced."""
    form = {"owner": owner, "reason": reason, "duration": duration}
    if bool(alert_id) == bool(matcher):
        err.print("[red]error:[/] give an ALERT_ID or at least one --matcher (not both)")
        raise typer.Exit(1)
    if alert_id:
        r = call("POST", f"/api/v1/alerts/{alert_id}/silence", url, token, form)
    else:
        r = call("POST", "/api/v1/silences", url, token, {**form, "matchers": matcher})
    s = r["silence"]
    _print(r, as_json, f"silence {s['silence_id']} until {s['ends_at']} (owner {s['owner']})")


@alerts_app.command("silences")
def silences(every: bool = typer.Option(False, "--all", help="include expired"), url: str | None = URL,
             token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """Active silences."""
    r = call("GET", "/api/v1/silences" + ("?all=1" if every else ""), url, token)
    lines = [f"{s['silence_id']}  {'active ' if s['active'] else 'expired'}  until {s['ends_at']}  "
             f"{s['owner']}: {escape(s['reason'])}  [{', '.join(escape(m) for m in s['matchers_text'])}]"
             for s in r["silences"]]
    _print(r, as_json, "\n".join(lines) or "no silences")


@alerts_app.command("expire")
def expire(silence_id: str, reason: str = typer.Option(..., "--reason"), url: str | None = URL,
           token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """End a silence now."""
    r = call("POST", f"/api/v1/silences/{silence_id}/expire", url, token, {"reason": reason})
    _print(r, as_json, f"silence {silence_id} expired")


@alerts_app.command("release")
def release(scope: str = typer.Argument(..., help="KIND=VALUE (deployment=dep-1) or fleet"),
            reason: str = typer.Option(..., "--reason"), mode: str = typer.Option("enforce", "--mode"),
            approve: str = typer.Option("", "--approve", help="approve a pending fleet release request by id"),
            url: str | None = URL, token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """Release a kill-switch through the API (fleet scope: a second operator approves with --approve ID)."""
    if approve:
        r = call("POST", f"/api/v1/killswitch/release-requests/{approve}/approve", url, token, {"reason": reason})
    else:
        r = call("POST", "/api/v1/killswitch/release", url, token, {"scope": scope, "reason": reason, "mode": mode})
    text = (f"{r['scope']}: released (command {r['command_id']})" if r["status"] == "released" else
            f"{scope}: waiting for a second operator — request {r['request']['request_id']}")
    _print(r, as_json, text)


@alerts_app.command("board")
def board(url: str | None = URL, token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """The kill-switch board: what is contained, by whom, until when."""
    r = call("GET", "/api/v1/killswitch", url, token)
    lines = [f"{k['scope']:<32} {k['action']:<12} {k['mode']:<8} by {' + '.join(k['operators']) or k['issuer']}"
             f"  until {k['lease_expires_at']} ({_age(max(0.0, k['remaining_s']))})  {escape(k['reason'][:80])}"
             for k in r["active"]]
    _print(r, as_json, "\n".join(lines) or "nothing contained")


@alerts_app.command("hash-token")
def hash_token_cmd(token: str = typer.Argument(..., help="the token to hash (keep the token itself secret)")) -> None:
    """Print the SHA-256 to put in the tokens file (OVERSEER_API_TOKENS_FILE)."""
    print(hash_token(token))

