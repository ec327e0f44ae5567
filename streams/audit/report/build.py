"""Assemble the report page: plain-language sections, inline SVG plots, small tables, no external assets."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.audit.access import Store, Table
from streams.audit.report import plots
from streams.audit.report.data import ReportData, load

CSS = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
.explain{background:#f5f7fa;border-left:4px solid #8aa;padding:.6em 1em;font-size:.95em}
table{border-collapse:collapse;font-size:.85em;width:100%}td,th{border:1px solid #ddd;padding:3px 6px;
text-align:left;vertical-align:top;overflow-wrap:anywhere}th{background:#eee}.kpi{display:inline-block;margin:0 1.5em .5em 0}
.kpi b{display:block;font-size:1.6em}svg{max-width:100%;height:auto}"""


def _when(ts: Any) -> str:
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(t: Table, headers: list[str], time_cols: tuple[int, ...] = (0,), limit: int = 100) -> str:
    if not t.rows:
        return "<p><i>None in this period.</i></p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f"<td>{html.escape(_when(v) if i in time_cols and v is not None else str(v))}</td>"
        for i, v in enumerate(r[:len(headers)])) + "</tr>" for r in t.rows[:limit])
    more = f"<p><i>{len(t.rows) - limit} more not shown; use overseer query.</i></p>" if len(t.rows) > limit else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _period(d: ReportData) -> str:
    """The asked-for period; an open end is shown as the model's first or last event."""
    start = _when(d.since) if d.since > 0 else f"the first event ({_when(d.first)})"
    end = _when(d.until) if d.until < 7_000_000_000 else f"the last event ({_when(d.last)})"
    return f"{start} to {end}"


_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}


def summary_sentence(d: ReportData) -> str:
    """Two or three sentences a reader can take away without reading further."""
    s = d.summary
    out = [(f"{d.model} handled {s['inferences']:,} inferences and {s['tool_calls']:,} tool calls in "
            f"{s['agent_runs']:,} agent runs on {s['deployments']} deployment(s).")]
    if d.by_rule.rows:
        total = sum(int(r[3]) for r in d.by_rule.rows)
        worst = max(d.by_rule.rows, key=lambda r: (_RANK.get(str(r[2]), -1), int(r[3])))
        out.append(f"Overseer flagged it {total} time(s) under {len(d.by_rule.rows)} rule(s); the most severe was "
                   f"{worst[0]} ({worst[2]}): {worst[1]}.")
    else:
        out.append("Overseer flagged nothing.")
    issued = [r for r in d.commands.rows if r[1] != "release"]
    released = [r for r in d.commands.rows if r[1] == "release"]
    if issued:
        actions = sorted({f"{r[2]} of {r[4]}={r[5]}" for r in issued})
        out.append(f"{len(issued)} kill-switch command(s) were issued ({', '.join(actions)})"
                   + (f" and {len(released)} released." if released else "; none was released in this period."))
    else:
        out.append("No kill-switch command applied to it.")
    return " ".join(out)


def _explain(text: str) -> str:
    return f'<p class="explain">{text}</p>'


def render(d: ReportData) -> str:
    s = d.summary
    kpis = "".join(f'<span class="kpi"><b>{v:,}</b>{html.escape(k.replace("_", " "))}</span>' for k, v in s.items())
    baseline_plots = "".join(f"<h3>{html.escape(rule)}</h3>{svg}" for rule, svg in plots.baselines(d))
    m = html.escape(d.model)
    parts = [
        f"<h1>Behaviour report: {m}</h1>",
        (f"<p>Period {_period(d)}. Generated {_when(datetime.now(UTC).timestamp())} "
         "by Overseer from its audit store.</p>"),
        f"<p><b>In short:</b> {html.escape(summary_sentence(d))}</p>",
        _explain("Overseer watches AI models and agents while they run. Every model call (an <i>inference</i>) and "
                 "every action an agent takes (a <i>tool call</i>: reading a file, running a command, sending data "
                 "over the network) is logged as an event. Rules and statistical detectors look for risky "
                 "behaviour in those events; each match is a <i>detection</i>. When detections cross a policy's "
                 "threshold, Overseer sends a signed <i>kill-switch command</i> that pauses, throttles or cuts off "
                 "the model. This report shows all of that for one model in one period."),
        "<h2>In numbers</h2>", kpis,
        "<h2>Behaviour over time</h2>",
        _explain(f"How busy the model was, how often it refused a request, and how slow it was, in buckets of "
                 f"{d.bucket_s // 60} minutes. A sudden drop in refusals can mean safety behaviour has "
                 "regressed; a spike in tool calls can mean an agent is doing more than its task needs."),
        plots.behaviour(d), plots.categories(d),
        _explain("Tool calls by category: exec = running commands, net_egress = sending data out, "
                 "weights_access = touching model weights, credential_access = reading secrets."),
        "<h2>Detections per rule</h2>",
        _explain("Each bar is one rule or detector and how many times it matched. Severity is in brackets. "
                 "A rule matches a specific pattern (for example: an agent reads its own weights, then uploads "
                 "gigabytes to an unknown host); a detector flags a value far from its usual level."),
        plots.by_rule(d) if d.by_rule.rows else "<p><i>No detections in this period.</i></p>",
        _table(d.detections, ["time", "rule", "severity", "scope", "scope value", "what was seen"]),
        "<h2>Statistical baselines against observed values</h2>",
        _explain("Detectors learn what is normal (the <i>baseline</i>, with its typical variation, the "
                 "<i>spread</i>) and flag a time bucket whose observed value falls far outside it. Each red dot "
                 "is a flagged bucket; the shaded band is the normal range the detector expected."),
        baseline_plots or "<p><i>No statistical detector fired for this model in this period.</i></p>",
        "<h2>Kill-switch timeline</h2>",
        _explain("Every containment command that applied to this model or one of its deployments: when it was "
                 "issued, by a policy (<code>policy:…</code>) or a person (<code>operator:…</code>), why, and how "
                 "long its lease ran. A release lifts a containment and always names the person who asked."),
        plots.killswitch(d) if d.commands.rows else "<p><i>No kill-switch commands in this period.</i></p>",
        _table(d.commands, ["issued", "op", "action", "mode", "scope", "scope value", "issuer", "reason",
                            "lease until"], time_cols=(0, 8)),
        "<h2>Operator actions</h2>",
        _explain("What people did by hand in this period: manual containment, releases, lease extensions."),
        _table(d.actions, ["time", "operator", "action", "target", "reason"]),
        "<h2>How to check this report</h2>",
        _explain("Every number here comes from queries anyone can rerun: <code>overseer query model-history "
                 f"--model {m}</code>, <code>overseer query detections --model {m}</code>, <code>overseer query "
                 "killswitch-log</code>. Detections, commands and operator actions are hash-chained; "
                 "<code>overseer audit verify</code> shows whether any of them was changed, added or deleted."),
    ]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Overseer report: {m}</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")


def build_report(store: Store, model: str, since: str, until: str, output: Path) -> ReportData:
    data = load(store, model, since, until)
    output.write_text(render(data), encoding="utf-8")
    return data
