"""Property tests (hypothesis): any finite input keeps every detector sane; any CSV text fails cleanly."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.detectors import REGISTRY, Detector
from streams.commands.detect_series import SeriesError, read_series

FINITE = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
NUMERIC = sorted(name for name, cls in REGISTRY.items() if cls.observation == "float")


@pytest.mark.parametrize("name", NUMERIC)
@settings(max_examples=40, deadline=None)
@given(xs=st.lists(FINITE, min_size=1, max_size=120), cut=st.integers(min_value=0, max_value=120))
def test_any_finite_series_scores_in_unit_interval_and_survives_restore(name: str, xs: list[float],
                                                                         cut: int) -> None:
    det = REGISTRY[name](warmup=3) if "warmup" in REGISTRY[name]().params else REGISTRY[name]()
    ts = [1_767_225_600.0 + 3600.0 * i for i in range(len(xs))]
    cut = min(cut, len(xs))
    head = [det.update(x, ts=t) for x, t in zip(xs[:cut], ts[:cut], strict=True)]
    twin = Detector.restore(orjson.loads(orjson.dumps(det.snapshot())))
    tail = [det.update(x, ts=t) for x, t in zip(xs[cut:], ts[cut:], strict=True)]
    assert [twin.update(x, ts=t) for x, t in zip(xs[cut:], ts[cut:], strict=True)] == tail
    for score in head + tail:
        assert score is None or (0.0 <= score <= 1.0 and not math.isnan(score))
    orjson.dumps(det.explain())


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("0123456789.,-:TZ+e \n\tnaifvlutesmp\"")), max_size=200))
def test_any_csv_text_parses_or_fails_with_line_numbers(text: str) -> None:
    try:
        rows = read_series(text)
    except SeriesError as exc:
        assert all(line.startswith(("line ", "... and")) for line in str(exc).splitlines())
        return
    for row in rows:
        assert math.isfinite(row.ts) and math.isfinite(row.value)


ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(), FINITE, st.text(max_size=5),
                      st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(),
                                                                            max_size=2))
FIELDS = ("event_type", "request_model", "deployment_id", "is_refusal", "latency_ms", "egress_bytes",
          "dest_host", "tool_name", "action_category", "error_type")


@settings(max_examples=60, deadline=None)
@given(events=st.lists(st.fixed_dictionaries({}, optional=dict.fromkeys(FIELDS, ANY_VALUE)), max_size=30))
def test_malformed_event_fields_never_break_the_stable_pack(events: list[dict[str, object]]) -> None:
    from rules.metrics import Partial
    from tests.unit.detectors.fleet import T0, pack_runtime

    runtime = pack_runtime()
    batch = [{**ev, "_ts": T0 + i, "event_id": f"e{i}"} for i, ev in enumerate(events)]
    partials = runtime.partials(batch)
    runtime.merge([Partial.from_bytes(p.to_bytes()) for p in partials])
    runtime.advance(T0 + 3600.0)
    assert runtime.stats["buckets_closed"] == len(partials)
    runtime.restore(runtime.snapshot())
