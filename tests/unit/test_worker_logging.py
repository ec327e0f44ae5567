"""The worker's logging: WARNING means WARNING for every library, not DEBUG records built and dropped."""

from __future__ import annotations

import logging

import faust

from streams.worker import faust_worker


def test_the_root_logger_keeps_the_requested_level() -> None:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        worker = faust_worker(faust.App("logging-probe", broker="kafka://127.0.0.1:1"), "WARNING")
        worker._setup_logging()
        assert not logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)
        assert root.getEffectiveLevel() == logging.WARNING
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
