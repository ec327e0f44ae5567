"""The worker's Faust app recovers tables with StreamSafeRecovery (streams/faust_recovery.py).

The real-broker regression test is tests/integration/faults/test_restart_after_restore.py; this one
fails fast when the app stops installing the fix, or when a Faust upgrade removes the internals the
fix relies on (it overrides part of faust-streaming 0.15.3's recovery).
"""

from __future__ import annotations

from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer

from streams.app import create_app
from streams.faust_recovery import StreamSafeRecovery, StreamSafeTableManager
from streams.settings import Settings


def test_the_app_recovers_tables_with_the_stream_safe_recovery() -> None:
    app = create_app(Settings(), "127.0.0.1:1", lambda *a, **k: None)
    assert isinstance(app.tables, StreamSafeTableManager)
    assert isinstance(app.tables.recovery, StreamSafeRecovery)
    assert app.tables.recovery is app.tables.recovery


def test_the_faust_internals_the_fix_relies_on_exist() -> None:
    for name in ("_get_active_partitions", "stop_flow", "resume_flow", "seek_to_committed", "seek_wait",
                 "earliest_offsets", "assignment", "_wait_next_records"):
        assert callable(getattr(Consumer, name, None)), name
    for name in ("on_recovery_completed", "_is_changelog_tp", "_wait"):
        assert callable(getattr(Recovery, name, None)), name
    assert isinstance(TableManager.__dict__.get("recovery"), property)
