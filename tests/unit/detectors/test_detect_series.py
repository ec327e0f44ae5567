"""`overseer detect-series` through Typer's CliRunner, on small CSV files."""

from __future__ import annotations

import csv
import doctest
import io
from pathlib import Path

import numpy as np
import orjson
import pytest
import typer
from typer.testing import CliRunner

import streams.commands.detect_series as module
from rules.detectors import create
from rules.detectors.registry import DEFAULT_SERIES_DETECTOR
from streams.commands.detect_series import detect_series

app = typer.Typer()
app.command("detect-series")(detect_series)
app.command("noop")(lambda: None)  # two commands, so the name is part of the command line as in `overseer`
runner = CliRunner()
T0 = 1_767_225_600


def series_csv(path: Path, values: list[float], iso: bool = False, header: bool = True) -> Path:
    lines = ["timestamp,value"] if header else []
    for i, v in enumerate(values):
        ts = f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00Z" if iso else str(T0 + 60 * i)
        lines.append(f"{ts},{v}")
    path.write_text("\n".join(lines) + "\n")
    return path


def spiky() -> list[float]:
    values = [round(float(v), 4) for v in np.random.default_rng(2).normal(100, 5, 80)]
    values[60] = 400.0
    return values


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_module_examples_run() -> None:
    assert doctest.testmod(module).failed == 0


def test_default_detector_scores_every_row_and_flags_the_spike(tmp_path: Path) -> None:
    values = spiky()
    result = runner.invoke(app, ["detect-series", str(series_csv(tmp_path / "s.csv", values))])
    assert result.exit_code == 0, result.output
    rows = rows_of(result.stdout)
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score"]
    assert [float(r["value"]) for r in rows] == values
    scores = [float(r["anomaly_score"]) for r in rows]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert max(range(len(scores)), key=scores.__getitem__) == 60
    assert scores[60] >= 0.5 and sum(s >= 0.5 for s in scores) == 1


def test_scores_are_exactly_the_live_detectors(tmp_path: Path) -> None:
    values = spiky()
    out = tmp_path / "scored.csv"
    args = ["detect-series", str(series_csv(tmp_path / "s.csv", values, iso=True)), "--detector", "ewma_zscore",
            "--param", "alpha=0.2", "-p", "warmup=5", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    live = create("ewma_zscore", alpha=0.2, warmup=5)
    expected = [live.update(v, ts=T0 + 60.0 * i) for i, v in enumerate(values)]
    got = [float(r["anomaly_score"]) for r in rows_of(out.read_text())]
    assert got[:5] == [0.0] * 5 and expected[:5] == [None] * 5  # warm-up rows score 0
    assert got[5:] == [round(s, 6) for s in expected[5:]]
    assert "-> " in result.stderr and "5 in warm-up" in result.stderr


def test_json_summary_and_novelty_on_string_values(tmp_path: Path) -> None:
    path = tmp_path / "tools.csv"
    path.write_text("ts,value\n" + "".join(f"{T0 + i},{'bash' if i % 2 else 'python'}\n" for i in range(12))
                    + f"{T0 + 12},nmap\n")
    result = runner.invoke(app, ["detect-series", str(path), "-d", "novelty", "-p", "warmup=4", "--json"])
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    assert (summary["detector"], summary["rows"], summary["warmup_rows"], summary["anomalies"]) == ("novelty", 13, 4, 1)
    assert summary["scored"][-1] == {"timestamp": str(T0 + 12), "value": "nmap", "anomaly_score": 0.5}


def test_headerless_file_with_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(f"\n{T0},1.5\n\n{T0 + 60},2.5\n")
    result = runner.invoke(app, ["detect-series", str(path), "-d", "mad"])
    assert result.exit_code == 0, result.output
    assert [r["value"] for r in rows_of(result.stdout)] == ["1.5", "2.5"]


def test_bad_rows_are_reported_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"timestamp,value\n{T0},1\nyesterday,2\n{T0 + 120},abc\n{T0 + 180}\n{T0 + 240},nan\n")
    result = runner.invoke(app, ["detect-series", str(path)])
    assert result.exit_code == 2
    assert "line 3: bad timestamp 'yesterday'" in result.stderr
    assert "line 4: bad value 'abc'" in result.stderr
    assert "line 5: expected columns timestamp,value" in result.stderr
    assert "line 6: bad value 'nan'" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("args", "message"), [
    (["-d", "prophet"], "unknown detector 'prophet'"),
    (["-d", "mad", "-p", "alpha=0.1"], "has no parameter alpha"),
    (["-p", "window"], "expected name=value"),
    (["-d", "mad", "-p", "window=1"], "window must be >= 3"),
])
def test_bad_options_say_what_to_do(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["detect-series", str(series_csv(tmp_path / "s.csv", [1.0, 2.0])), *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["detect-series", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_default_is_the_documented_recommendation() -> None:
    docs = Path(__file__).resolve().parents[3] / "docs" / "detectors.md"
    assert f"`{DEFAULT_SERIES_DETECTOR}`" in docs.read_text()


def test_header_with_other_names_uses_columns_by_position(tmp_path: Path) -> None:
    path = tmp_path / "named.csv"
    path.write_text(f"time,latency_p99\n{T0},120.5\n{T0 + 60},130.0\n")
    result = runner.invoke(app, ["detect-series", str(path), "-d", "mad"])
    assert result.exit_code == 0, result.output
    assert [r["value"] for r in rows_of(result.stdout)] == ["120.5", "130.0"]


def test_named_columns_in_any_order(tmp_path: Path) -> None:
    path = tmp_path / "swapped.csv"
    path.write_text(f"value,host,timestamp\n1.5,a,{T0}\n2.5,b,{T0 + 60}\n")
    result = runner.invoke(app, ["detect-series", str(path), "-d", "mad"])
    assert result.exit_code == 0, result.output
    assert [(r["timestamp"], r["value"]) for r in rows_of(result.stdout)] == [(str(T0), "1.5"), (str(T0 + 60), "2.5")]
