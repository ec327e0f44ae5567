"""The human-readable table of a bench result."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def render(console: Console, r: dict[str, Any]) -> None:
    table = Table(title=f"overseer bench — {r['events']} events, producer batches of {r['batch_size']}")
    table.add_column("pipeline")
    table.add_column("events/s per worker", justify="right")
    table.add_column("peak RSS MB", justify="right")
    rss = r["peak_rss_mb"]
    table.add_row("(a) ceiling: getmany + orjson", f"{r['ceiling_eps']:,.0f}", f"{rss['ceiling']}")
    table.add_row("    same, one event per message", f"{r['ceiling_single_message_eps']:,.0f}", "")
    table.add_row("(b) baseline: per-event Faust + table", f"{r['baseline_eps']:,.0f}", f"{rss['baseline']}")
    for n, w in r["workers"].items():
        table.add_row(f"(c) overseer, {n} worker(s)", f"{w['eps_per_worker']:,.0f}",
                      f"{rss['overseer_worker']}" if n == next(iter(r["workers"])) else "")
    if r.get("overseer_single_message_eps") is not None:
        table.add_row("(c′) overseer, one event per message", f"{r['overseer_single_message_eps']:,.0f}", "")
    console.print(table)
    ok = {True: "[green]met[/]", False: "[red]missed[/]"}
    t = r["targets"]
    console.print(f"(c)/(b) = {r['ratio_vs_baseline']:.1f}× (target ≥ 10×: {ok[t['overseer_10x_baseline']]}); "
                  f"(c)/(a) = {r['ratio_vs_ceiling']:.0%} (target ≥ 50%: {ok[t['overseer_half_of_ceiling']]})")
    floor = r.get("storage_floor")
    if floor:
        console.print(f"storage floor: ClickHouse spends {floor['store']['cpu_us_per_event']:.1f} µs of CPU per event "
                      f"stored, {floor['store_vs_ceiling']:.1f}× the ceiling's {floor['ceiling_us_per_event']:.1f} µs: "
                      f"even with nothing else to do, (c)/(a) ≤ {r['ratio_vs_ceiling_storage_bound']:.0%} "
                      f"on {floor['cores']} cores")
    if r.get("ratio_vs_baseline_cpu") is not None:
        cpu = r["cpu_eps"]
        console.print(f"per CPU-second: ceiling {cpu['ceiling']:,.0f}, baseline {cpu['baseline']:,.0f}, overseer "
                      f"{cpu['overseer']:,.0f} events → (c)/(b) {r['ratio_vs_baseline_cpu']:.1f}×, "
                      f"(c)/(a) {r['ratio_vs_ceiling_cpu']:.0%}")
    console.print(f"detection latency p50 {r['latency_ms_p50']} ms, p99 {r['latency_ms_p99']} ms "
                  f"({r['latency_samples']} detections); every event stored: {r['every_event_stored']}")
    console.print(f"state: {r['state_bytes_per_key']:.0f} bytes per active key (traced), "
                  f"{r['state_rss_bytes_per_key']:.0f} RSS growth, {r['snapshot_bytes_per_key']:.0f} in a snapshot, "
                  f"over {r['state_keys']:,} keys (target ≤ 200: {ok[t['state_200_bytes_per_key']]})")
    worst = r["state"]["worst"]
    console.print(f"       worst case (window + sequence + dedup per key): {worst['state_bytes_per_key']:.0f} bytes "
                  f"traced, {worst['snapshot_bytes_per_key']:.0f} in a snapshot")
