"""`overseer rules validate|test` — check rule files and run the tests written inside them.

Both exit non-zero on any error or failing test, and print human text (with
colours) or, with ``--json``, one JSON document on stdout.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from rules.engine import Engine, load_engine
from rules.errors import RuleLoadError, diagnostic_dict, render
from rules.items import Diagnostic
from rules.testing import run_rule_tests

rules_app = typer.Typer(help="Validate rule files and run their tests.", no_args_is_help=True)
PathsArg = typer.Argument(..., help="rule files or directories (loaded in order; directories sorted)")


def _load(paths: list[Path]) -> tuple[Engine | None, list[Diagnostic]]:
    try:
        engine = load_engine(paths)
    except RuleLoadError as exc:
        return None, exc.diagnostics
    return engine, engine.diagnostics


def _print_diagnostics(console: Console, diagnostics: list[Diagnostic]) -> None:
    for d in diagnostics:
        colour = "red" if d.severity == "error" else "yellow"
        head, _, rest = render(d).partition("\n")
        console.print(f"[{colour}]{escape(head)}[/]")
        if rest:
            console.print(escape(rest), highlight=False)


@rules_app.command("validate")
def validate(paths: list[Path] = PathsArg, as_json: bool = typer.Option(False, "--json")) -> None:
    """Load and compile the rule files; report every problem with file:line:col."""
    engine, diagnostics = _load(paths)
    errors = [d for d in diagnostics if d.severity == "error"]
    if as_json:
        print(json.dumps({"ok": engine is not None, "rules": len(engine.rules) if engine else 0,
                          "diagnostics": [diagnostic_dict(d) for d in diagnostics]}, indent=2))
    else:
        console = Console()
        _print_diagnostics(console, diagnostics)
        if engine is not None:
            console.print(f"[green]ok[/]: {len(engine.rules)} rule(s), {len(engine.items('list'))} list(s), "
                          f"{len(engine.items('macro'))} macro(s) from {len(engine.loaded.files)} file(s)")
        else:
            console.print(f"[red]{len(errors)} error(s)[/]")
    if engine is None:
        raise typer.Exit(1)


@rules_app.command("test")
def test(paths: list[Path] = PathsArg, as_json: bool = typer.Option(False, "--json"),
         rule: list[str] = typer.Option(None, "--rule", help="only these rule ids")) -> None:  # noqa: B008
    """Run every test case written in the rule files through the engine."""
    engine, diagnostics = _load(paths)
    if engine is None:
        if as_json:
            print(json.dumps({"ok": False, "diagnostics": [diagnostic_dict(d) for d in diagnostics]}, indent=2))
        else:
            _print_diagnostics(Console(), diagnostics)
        raise typer.Exit(1)
    results = run_rule_tests(engine, rule or None)
    untested = [r.id for r in engine.rules if not r.tests and (not rule or r.id in rule)]
    failed = [r for r in results if not r.passed]
    if as_json:
        print(json.dumps({"ok": not failed, "passed": len(results) - len(failed), "failed": len(failed),
                          "untested_rules": untested, "results": [r.to_dict() for r in results]}, indent=2))
    else:
        console = Console()
        for r in results:
            mark = "[green]PASS[/]" if r.passed else "[red]FAIL[/]"
            line = f"{mark} {escape(r.rule_id)} :: {escape(r.name)}"
            if not r.passed:
                line += f"\n     {escape(str(r.location))}: {escape(r.message)}"
            console.print(line, highlight=False, soft_wrap=True)
        for rid in untested:
            console.print(f"[yellow]no tests[/] {escape(rid)}")
        colour = "red" if failed else "green"
        console.print(f"[{colour}]{len(results) - len(failed)} passed, {len(failed)} failed[/]")
    if failed:
        raise typer.Exit(1)
