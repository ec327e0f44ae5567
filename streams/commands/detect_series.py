"""`overseer detect-series FILE.csv`: backtest a live detector on an exported metric series.

Reads ``timestamp,value`` rows and writes ``timestamp,value,anomaly_score``
with exactly the detector classes the live pipeline runs
(:mod:`rules.detectors`). Rows are scored in file order; each row is scored
against the state *before* it, then learned. Rows scored while the detector
is still warming up get ``anomaly_score`` 0.
"""

from __future__ import annotations

import csv
import inspect
import io
import math
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from rules.detectors.base import Detector
from rules.detectors.registry import DEFAULT_SERIES_DETECTOR, REGISTRY, create

MAX_REPORTED_ERRORS = 20
EPOCH_MS_ABOVE = 1e11  # an epoch-seconds value this large would be after the year 5000: it is milliseconds
TS_NAMES = ("timestamp", "ts", "time", "date", "datetime")


class SeriesError(ValueError):
    """The CSV could not be read; the message lists every bad line."""


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    raw_ts: str
    ts: float
    value: Any


def parse_timestamp(text: str) -> float:
    """Epoch seconds (or milliseconds) or ISO-8601 (naive means UTC) to epoch seconds.

    >>> parse_timestamp("1767225600"), parse_timestamp("2026-01-01T00:00:00Z")
    (1767225600.0, 1767225600.0)
    >>> parse_timestamp("1767225600000"), parse_timestamp("2026-01-01 01:00:00+01:00")
    (1767225600.0, 1767225600.0)
    """
    try:
        number = float(text)
    except ValueError:
        moment = datetime.fromisoformat(text.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if not math.isfinite(number):
        raise ValueError(f"timestamp {text!r} is not finite")
    return number / 1000.0 if abs(number) >= EPOCH_MS_ABOVE else number


def _columns(header: list[str]) -> tuple[int, int] | None:
    names = [h.strip().lower() for h in header]
    if "value" not in names:
        return None
    ts_col = next((names.index(n) for n in TS_NAMES if n in names), None)
    return (ts_col, names.index("value")) if ts_col is not None else None


def _is_header(record: list[str]) -> bool:
    try:
        parse_timestamp(record[0].strip())
    except ValueError:
        return len(record) >= 2 and not _is_number(record[1])
    return False


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_series(text: str, numeric: bool = True) -> list[Row]:
    """Rows of a ``timestamp,value`` CSV; a header is optional, blank lines are skipped.

    >>> [(r.line, r.ts, r.value) for r in read_series("timestamp,value\\n\\n1767225600,3.5\\n")]
    [(3, 1767225600.0, 3.5)]
    """
    rows: list[Row] = []
    errors: list[str] = []
    ts_col, value_col = 0, 1
    first = True
    for line_no, record in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not record or all(not cell.strip() for cell in record):
            continue
        if first:
            first = False
            named = _columns(record)
            if named is not None:
                ts_col, value_col = named
                continue
            if _is_header(record):
                continue  # a header with other names (time,metric): columns by position
        if len(record) <= max(ts_col, value_col):
            errors.append(f"line {line_no}: expected columns timestamp,value, got {len(record)} column(s)")
            continue
        raw_ts, raw_value = record[ts_col].strip(), record[value_col].strip()
        try:
            ts = parse_timestamp(raw_ts)
        except ValueError:
            errors.append(f"line {line_no}: bad timestamp {raw_ts!r} (use ISO-8601 or epoch seconds)")
            continue
        value: Any = raw_value
        if numeric:
            try:
                value = float(raw_value)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                errors.append(f"line {line_no}: bad value {raw_value!r} (need a finite number)")
                continue
        elif not raw_value:
            errors.append(f"line {line_no}: empty value")
            continue
        rows.append(Row(line_no, raw_ts, ts, value))
    if errors:
        more = len(errors) - MAX_REPORTED_ERRORS
        listed = errors[:MAX_REPORTED_ERRORS] + ([f"... and {more} more"] if more > 0 else [])
        raise SeriesError("\n".join(listed))
    return rows


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``k=v`` strings to a dict; values become int, float, bool or stay strings.

    >>> parse_params(["alpha=0.2", "warmup=5", "direction=up", "x=true"])
    {'alpha': 0.2, 'warmup': 5, 'direction': 'up', 'x': True}
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--param {pair!r}: expected name=value")
        params[name.strip()] = _literal(text.strip())
    return params


def _literal(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _build(name: str, params: dict[str, Any]) -> Detector:
    if name not in REGISTRY:
        raise ValueError(f"unknown detector {name!r}; known: {', '.join(sorted(REGISTRY))}")
    try:
        return create(name, **params)
    except TypeError:
        known = [p for p in inspect.signature(REGISTRY[name]).parameters]
        unknown = sorted(set(params) - set(known))
        raise ValueError(f"detector {name!r} has no parameter {', '.join(unknown)}; "
                         f"its parameters: {', '.join(known)}") from None


def score_rows(det: Detector, rows: list[Row]) -> list[float | None]:
    """One score per row, None while the detector warms up (or re-learns after a change)."""
    return [det.update(row.value, ts=row.ts) for row in rows]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def detect_series(
    file: Annotated[Path, typer.Argument(help="CSV with columns timestamp,value (header optional)")],
    detector: Annotated[str | None, typer.Option("--detector", "-d",
                                                 help=f"one of {', '.join(sorted(REGISTRY))}; "
                                                      f"default {DEFAULT_SERIES_DETECTOR}")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="detector parameter name=value")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write the scored CSV here (default stdout)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON summary (and rows unless --out)")] = False,
) -> None:
    """Score a timestamp,value series with a live detector: writes timestamp,value,anomaly_score."""
    name = detector or DEFAULT_SERIES_DETECTOR
    try:
        det = _build(name, parse_params(param or []))
        text = file.read_text(encoding="utf-8")
        rows = read_series(text, numeric=det.observation == "float")
        raw_scores = score_rows(det, rows)
    except FileNotFoundError:
        raise _fail(f"{file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"{file}: cannot read: {exc}") from None
    except SeriesError as exc:
        raise _fail(f"{file}: bad rows\n{exc}") from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    scores = [0.0 if s is None else round(s, 6) for s in raw_scores]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["timestamp", "value", "anomaly_score"])
    for row, score in zip(rows, scores, strict=True):
        writer.writerow([row.raw_ts, row.value, score])
    if out is not None:
        out.write_text(buffer.getvalue(), encoding="utf-8")
    summary = {
        "detector": det.name, "params": det.params, "rows": len(rows),
        "warmup_rows": sum(1 for s in raw_scores if s is None),
        "anomalies": sum(1 for s in scores if det.fires(s)), "fire_at": det.fire_at,
        "out": str(out) if out is not None else None,
    }
    if as_json:
        if out is None:
            summary["scored"] = [{"timestamp": r.raw_ts, "value": r.value, "anomaly_score": s}
                                 for r, s in zip(rows, scores, strict=True)]
        sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif out is None:
        sys.stdout.write(buffer.getvalue())
    else:
        typer.echo(f"{summary['rows']} rows scored with {det.name} ({summary['warmup_rows']} in warm-up, "
                   f"{summary['anomalies']} at or above {det.fire_at}) -> {out}", err=True)
