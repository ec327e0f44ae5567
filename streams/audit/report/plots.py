"""The report's plots as inline SVG (matplotlib, Agg backend: no display, no external files)."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt

from streams.audit.report.data import ReportData


def _dt(ts: Any) -> Any:  # matplotlib plots datetimes; its stubs only say floats
    return datetime.fromtimestamp(float(ts), UTC)


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _time_axis(ax: Any) -> None:
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.grid(alpha=0.3)


def behaviour(d: ReportData) -> str:
    rows = d.behaviour.rows
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    t = [_dt(r[0]) for r in rows]
    axes[0].plot(t, [r[1] for r in rows], label="all events")
    axes[0].plot(t, [r[2] for r in rows], label="tool calls")
    axes[0].set_ylabel(f"per {d.bucket_s // 60} min")
    axes[0].legend(fontsize=8)
    axes[1].plot(t, [100 * float(r[3] or 0) for r in rows], color="tab:red")
    axes[1].set_ylabel("refusal rate %")
    axes[2].plot(t, [float(r[5]) if r[5] is not None else float("nan") for r in rows], color="tab:purple")
    axes[2].set_ylabel("p95 latency ms")
    for ax in axes:
        _time_axis(ax)
    fig.suptitle(f"Behaviour of {d.model} over time")
    return _svg(fig)


def categories(d: ReportData) -> str:
    series: dict[str, dict[float, int]] = defaultdict(dict)
    for t, cat, n in d.categories.rows:
        series[cat or "(none)"][float(t)] = int(n)
    times = sorted({t for s in series.values() for t in s})
    fig, ax = plt.subplots(figsize=(9, 3.5))
    if times:
        ax.stackplot([_dt(t) for t in times], *[[s.get(t, 0) for t in times] for s in series.values()],
                     labels=list(series))
        ax.legend(fontsize=7, loc="upper left", ncols=4)
    ax.set_ylabel("tool calls")
    _time_axis(ax)
    ax.set_title("Tool calls by action category")
    return _svg(fig)


def by_rule(d: ReportData) -> str:
    rows = list(reversed(d.by_rule.rows))
    fig, ax = plt.subplots(figsize=(9, max(2.0, 0.35 * len(rows) + 1)))
    colors = {"critical": "darkred", "high": "tab:red", "medium": "tab:orange", "low": "tab:olive", "info": "grey"}
    ax.barh([f"{r[0]} ({r[2]})" for r in rows], [int(r[3]) for r in rows],
            color=[colors.get(str(r[2]), "tab:blue") for r in rows])
    ax.set_xlabel("detections")
    ax.set_title("Detections per rule")
    ax.tick_params(axis="y", labelsize=8)
    return _svg(fig)


def killswitch(d: ReportData) -> str:
    rows = d.commands.rows
    scopes = sorted({f"{r[4]}={r[5]}" for r in rows}) or ["(none)"]
    fig, ax = plt.subplots(figsize=(9, max(2.0, 0.5 * len(scopes) + 1.2)))
    marker = {"issue": ("v", "tab:red"), "extend": (">", "tab:orange"), "release": ("^", "tab:green")}
    for r in rows:
        y = scopes.index(f"{r[4]}={r[5]}")
        m, c = marker.get(str(r[1]), ("o", "grey"))
        if r[1] != "release":
            ax.hlines(y, _dt(r[0]), _dt(r[8]), color=c, alpha=0.3, linewidth=6)
        ax.plot([_dt(r[0])], [y], marker=m, color=c, markersize=10)
        ax.annotate(f"{r[1]} {r[2]}", (_dt(r[0]), y), textcoords="offset points", xytext=(4, 8), fontsize=7)
    ax.set_yticks(range(len(scopes)), scopes, fontsize=8)
    ax.set_xlim(_dt(min([d.first, *[float(r[0]) for r in rows]]) - 60),
                _dt(min(d.until, max([d.last, *[float(r[8]) for r in rows]]) + 60)))
    _time_axis(ax)
    ax.set_title("Kill-switch timeline (▼ issued, ► extended, ▲ released; bar = lease)")
    return _svg(fig)


def baselines(d: ReportData) -> list[tuple[str, str]]:
    """One plot per detector: the observed value of each flagged bucket against its baseline ± spread."""
    per: dict[str, list[list[Any]]] = defaultdict(list)
    for r in d.baselines.rows:
        if r[1]:
            per[str(r[0])].append(r)
    out = []
    for rule, rows in list(per.items())[:8]:
        fig, ax = plt.subplots(figsize=(9, 3))
        t = [_dt(r[1]) for r in rows]
        base = [float(r[3]) for r in rows]
        band = [3 * float(r[4] or 0) for r in rows]
        ax.errorbar(t, base, yerr=band, fmt="_", color="tab:blue", ecolor="tab:blue", elinewidth=6, alpha=0.35,
                    markersize=18, label="baseline ± 3 spread (the expected range)")
        ax.plot(t, [float(r[2]) for r in rows], "o", color="tab:red", label="observed (flagged)")
        for r, when in zip(rows, t, strict=True):
            ax.annotate(f"observed {float(r[2]):.3g}\nbaseline {float(r[3]):.3g} ± {float(r[4] or 0):.2g}", (when, float(r[2])),
                        textcoords="offset points", xytext=(6, 6), fontsize=7)
        ax.set_xlim(_dt(d.first - 60), _dt(d.last + 60))
        ax.legend(fontsize=8)
        _time_axis(ax)
        ax.set_title(f"{rule}: observed against its statistical baseline")
        out.append((rule, _svg(fig)))
    return out
