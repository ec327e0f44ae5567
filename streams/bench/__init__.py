"""`overseer bench`: the same generated events through the ceiling, the per-event
Faust baseline and Overseer's own workers, on one broker, in one run.

Modules follow the run: ``traffic`` (generate and produce), ``ceiling`` (raw
aiokafka + orjson), ``baseline`` (idiomatic per-event Faust app), ``workers``
(real ``overseer worker`` subprocesses), ``state`` (bytes per active key),
``run`` (the orchestration and the JSON report).
"""
