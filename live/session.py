"""One live session: route the feed's records as ingest routes them, and run the warehouse's
engine on them as they arrive. Today: the selected contract's 1-second futures surfaces
(engine_book_snapshot_1s, engine_depth_and_flow_1s), row for row what the warehouse builds
from the same records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from databento.common.symbology import InstrumentMap

from book_engine.replay import MboColumns, WindowChunk, WindowReplay
from book_engine.surfaces import Partition, SurfaceSettings, book_batch, depth_batch
from ingest.bronze_tables import SourceSchema
from ingest.routing import OptionDefinitions, Router, day_to_date, epoch_days
from live.feed import FeedBatch
from spymaster.lake import Lake

LIVE_FINGERPRINT = "live"  # build_fingerprint of rows built live (no landed inputs to hash)
FUTURES_MBO = "futures_mbo"


class LiveError(Exception):
    """The feed cannot be run live; the message names what is missing or wrong."""


@dataclass(frozen=True)
class LiveContract:
    """The contract-day the live surfaces are built for."""

    symbol: str
    day: dt.date


Sink = Callable[[str, pa.RecordBatch], None]


class FuturesSurfaces:
    """The selected contract's 1-second book and depth-and-flow rows as its records arrive."""

    def __init__(
        self, contract: LiveContract, settings: SurfaceSettings, instrument_id: int, tick: int
    ) -> None:
        self.partition = Partition(contract.symbol, contract.day, LIVE_FINGERPRINT)
        self.replay = WindowReplay(
            {instrument_id: tick},
            settings.window_config(contract.day),
            instrument_ids=[instrument_id],
        )

    def push(self, columns: MboColumns) -> Iterator[tuple[str, pa.RecordBatch]]:
        yield from self._tables(self.replay.push(columns))

    def finish(self) -> Iterator[tuple[str, pa.RecordBatch]]:
        yield from self._tables(self.replay.finish())

    def _tables(self, chunks: Iterator[WindowChunk]) -> Iterator[tuple[str, pa.RecordBatch]]:
        for chunk in chunks:
            if len(chunk.book_rows):
                yield "engine_book_snapshot_1s", book_batch(chunk, self.partition, LIVE_FINGERPRINT)
            if len(chunk.depth_rows):
                yield (
                    "engine_depth_and_flow_1s",
                    depth_batch(chunk, self.partition, LIVE_FINGERPRINT),
                )


class LiveSession:
    """Routes each batch of the feed, keeps the futures definitions, and drives the surfaces
    of `contract` once its definition is known."""

    def __init__(
        self, lake: Lake, contract: LiveContract, settings: SurfaceSettings, sink: Sink
    ) -> None:
        self.lake = lake
        self.contract = contract
        self.settings = settings
        self.sink = sink
        self.routers: dict[str, Router] = {}
        self.futures_ticks: dict[str, tuple[int, int]] = {}  # raw symbol -> (instrument, tick)
        self.surfaces: FuturesSurfaces | None = None
        self.records = 0

    def apply(self, batch: FeedBatch, symbology: InstrumentMap) -> None:
        """`symbology`: the batch source's instrument_id -> raw symbol map."""
        self.records += len(batch.records)
        if batch.schema is SourceSchema.DEFINITION:
            self._definitions(batch.records)
        elif batch.schema is SourceSchema.MBO:
            if batch.source not in self.routers:
                self.routers[batch.source] = Router(
                    Path(batch.source), batch.schema, symbology, OptionDefinitions(self.lake)
                )
            self._mbo(batch, self.routers[batch.source])

    def finish(self) -> None:
        if self.surfaces is None:
            raise LiveError(
                f"no definition of {self.contract.symbol} in the feed: its tick size is "
                "unknown (replay the day's ES.FUT definition file too)"
            )
        for table, rows in self.surfaces.finish():
            self.sink(table, rows)

    def _definitions(self, records: np.ndarray) -> None:
        futures = records[records["instrument_class"] == b"F"]
        for record in futures:
            symbol = record["raw_symbol"].decode()
            self.futures_ticks[symbol] = (
                int(record["instrument_id"]),
                int(record["min_price_increment"]),
            )
        if self.surfaces is None and self.contract.symbol in self.futures_ticks:
            instrument_id, tick = self.futures_ticks[self.contract.symbol]
            self.surfaces = FuturesSurfaces(self.contract, self.settings, instrument_id, tick)

    def _mbo(self, batch: FeedBatch, router: Router) -> None:
        records = batch.records
        days = epoch_days(records["ts_recv"])
        routes = router.route_rows(records, days, batch.offset)
        # exactly the records of the contract-day's bronze partition
        wanted = np.array(
            [
                route.table == FUTURES_MBO and route.symbol == self.contract.symbol
                for route in router.landed
            ]
            + [False],
            dtype=np.bool_,
        )
        today = days == (self.contract.day - day_to_date(0)).days
        rows = wanted[np.where(routes >= 0, routes, len(router.landed))] & today
        if not rows.any():
            return
        if self.surfaces is None:
            raise LiveError(
                f"{batch.source}: records of {self.contract.symbol} before its definition "
                "(replay the day's ES.FUT definition file too)"
            )
        for table, rows_batch in self.surfaces.push(MboColumns.from_dbn(records[rows])):
            self.sink(table, rows_batch)
