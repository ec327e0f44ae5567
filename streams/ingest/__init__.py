"""Ingestion: what fleets already emit -> the events topic.

The path follows the data: ``adapters`` (one pure function per format) ->
``batching`` (producer-side batches, keyed like the topic) -> ``producer``
(idempotent, ``acks=all``, bounded in flight) -> Kafka; refused items ->
``deadletters``. Entry points: ``receiver`` (OTLP/HTTP), ``emitter`` (for
gateways), ``files`` + ``sender`` (``overseer send``). See docs/ingestion.md.
"""

from streams.ingest.adapters import FORMATS, AdapterOptions, AdapterResult, ItemError, PayloadError, adapt
from streams.ingest.emitter import AsyncEmitter, BufferFull, Emitter
from streams.ingest.producer import EventPublisher

__all__ = ["FORMATS", "AdapterOptions", "AdapterResult", "AsyncEmitter", "BufferFull", "Emitter", "EventPublisher",
           "ItemError", "PayloadError", "adapt"]
