"""The Databento Live source: GLBX.MDP3 market-by-order of ES.FUT and ES.OPT with the book
snapshot, plus definitions and statistics, through the official `databento.Live` client.

Records arrive one by one as databento_dbn objects; `RecordBatcher` turns them into the feed
batches the replay produces (the same record arrays: a record's bytes are its DBN layout), so
everything after the subscription is the code path the replay tests cover."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence

import databento as db
import databento_dbn
import numpy as np
from databento.common.symbology import InstrumentMap

from ingest.bronze_tables import SourceSchema
from live.feed import FeedBatch
from live.session import LiveError
from spymaster.dbn_facts import DATASET

LIVE_SOURCE = f"databento-live:{DATASET}"
SYMBOLS = ("ES.FUT", "ES.OPT")
# (schema, with the book snapshot): the snapshot exists for market-by-order only
SUBSCRIPTIONS = (("definition", False), ("statistics", False), ("mbo", True))
SCHEMA_OF = {
    databento_dbn.MBOMsg: SourceSchema.MBO,
    databento_dbn.InstrumentDefMsg: SourceSchema.DEFINITION,
    databento_dbn.StatMsg: SourceSchema.STATISTICS,
}
MAX_BATCH_RECORDS = 1 << 14


class RecordBatcher:
    """Records as they became available (a list each time the reader looked) to feed
    batches: each run of one schema in a list is a batch, so batches grow with the load and a
    quiet market sends each event at once (the engine itself waits for an event's F_LAST).
    Symbol mappings update `symbology`; a gateway error stops the feed with its text."""

    def __init__(self, symbology: InstrumentMap) -> None:
        self.symbology = symbology
        self.offsets = dict.fromkeys(SourceSchema, 0)

    def batches(
        self, available: Iterable[Sequence[databento_dbn.DBNRecord]]
    ) -> Iterator[FeedBatch]:
        for records in available:
            run: list[bytes] = []
            kind: type | None = None
            for record in records:
                if isinstance(record, databento_dbn.SymbolMappingMsg):
                    self.symbology.insert_symbol_mapping_msg(record)
                    continue
                if isinstance(record, databento_dbn.ErrorMsg):
                    raise LiveError(f"{LIVE_SOURCE}: the gateway reports an error: {record.err}")
                if type(record) not in SCHEMA_OF:
                    continue  # heartbeats and other system messages carry no market data
                if type(record) is not kind and run:
                    yield self._batch(kind, run)
                    run = []
                kind = type(record)
                run.append(bytes(record))
            if run:
                yield self._batch(kind, run)

    def _batch(self, kind: type | None, run: list[bytes]) -> FeedBatch:
        assert kind is not None
        schema = SCHEMA_OF[kind]
        records = np.frombuffer(b"".join(run), dtype=np.dtype(kind._dtypes))
        offset = self.offsets[schema]
        self.offsets[schema] += len(records)
        return FeedBatch(schema, records, LIVE_SOURCE, offset)


def drained(records: Iterator[databento_dbn.DBNRecord]) -> Iterator[list[databento_dbn.DBNRecord]]:
    """What a reader thread has received each time the consumer looks: the first record
    waits, the rest is what already arrived (at most MAX_BATCH_RECORDS)."""
    received: queue.Queue = queue.Queue()
    done = object()

    def read() -> None:
        try:
            for record in records:
                received.put(record)
        finally:
            received.put(done)

    threading.Thread(target=read, name="databento-live-reader", daemon=True).start()
    while True:
        first = received.get()
        if first is done:
            return
        available = [first]
        while len(available) < MAX_BATCH_RECORDS:
            try:
                record = received.get_nowait()
            except queue.Empty:
                break
            if record is done:
                yield available
                return
            available.append(record)
        yield available


class DatabentoLive:
    """The subscription as a feed (`symbology`: one map, kept by the gateway's mappings)."""

    def __init__(self, key: str | None = None) -> None:
        self.key = key or os.environ.get("DATABENTO_API_KEY")
        if not self.key:
            raise LiveError(
                "no Databento API key: set DATABENTO_API_KEY (a live subscription to "
                f"{DATASET} is needed)"
            )
        self.symbology = {LIVE_SOURCE: InstrumentMap()}

    def __iter__(self) -> Iterator[FeedBatch]:
        client = db.Live(key=self.key)
        for schema, snapshot in SUBSCRIPTIONS:
            client.subscribe(
                dataset=DATASET,
                schema=schema,
                stype_in="parent",
                symbols=list(SYMBOLS),
                snapshot=snapshot,
            )
        yield from RecordBatcher(self.symbology[LIVE_SOURCE]).batches(drained(iter(client)))
