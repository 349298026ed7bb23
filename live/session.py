"""One live session: route the feed's records as ingest routes them, and run the warehouse's
engine and readers on them as they arrive. Today: the selected contract's 1-second futures
surfaces (engine_book_snapshot_1s, engine_depth_and_flow_1s) and its options' quotes, implied
volatility and gamma exposure (engine_options_quotes_1s), its signed sums by strike
(engine_gex_by_strike_1s) and zero-gamma level (engine_zero_gamma_1s), row for row what the
warehouse builds from the same records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from databento.common.symbology import InstrumentMap

from book_engine.definitions import definition_ticks
from book_engine.errors import EngineError
from book_engine.replay import MboColumns, WindowChunk, WindowReplay
from book_engine.surfaces import SurfaceSettings, book_batch, depth_batch
from foundation.dbn_facts import PRICE_SCALE, UNDEF_PRICE
from foundation.lake import Lake
from foundation.partitions import Partition
from gex.chain import chain_cutoff_ns, options_chain
from gex.day_sums import quote_day_sums
from gex.options_surface import (
    OptionsChain,
    OptionsSettings,
    ProfileSettings,
    SpotSeries,
    quote_batch,
)
from ingest.bronze_tables import AssetClass, Records, SourceSchema, table_name, to_record_batch
from ingest.routing import Router, day_to_date, epoch_days
from live.bronze import LiveBronze, LiveOptionDefinitions
from live.feed import SECOND_NS, FeedBatch

LIVE_FINGERPRINT = "live"  # build_fingerprint of rows built live (no landed inputs to hash)
FUTURES_MBO = table_name(AssetClass.FUTURES, SourceSchema.MBO)
OPTIONS_MBO = table_name(AssetClass.OPTIONS, SourceSchema.MBO)
FUTURES_DEFINITIONS = table_name(AssetClass.FUTURES, SourceSchema.DEFINITION)
OPTIONS_DEFINITIONS = table_name(AssetClass.OPTIONS, SourceSchema.DEFINITION)
OPTIONS_STATISTICS = table_name(AssetClass.OPTIONS, SourceSchema.STATISTICS)
# the future's records are held at most this long (market time): the push at a second's end,
# on the path to its frame, then carries at most this much of it (~1 ms instead of ~3)
HOLD_NS = 250_000_000


class LiveError(Exception):
    """The feed cannot be run live; the message names what is missing or wrong."""


@dataclass(frozen=True)
class LiveContract:
    """The contract-day the live tables are built for."""

    symbol: str
    day: dt.date


@dataclass(frozen=True)
class LiveSettings:
    surfaces: SurfaceSettings
    options: OptionsSettings
    profile: ProfileSettings
    options_config: Mapping[str, Any]  # the options models' config (tick, session start)


Sink = Callable[[str, pa.RecordBatch], None]


class FuturesSurfaces:
    """The contract's 1-second book and depth-and-flow rows as its records arrive, and its
    spot by second (what the options are priced on)."""

    def __init__(
        self, contract: LiveContract, settings: SurfaceSettings, instrument_id: int, tick: int
    ) -> None:
        self.partition = Partition(contract.symbol, contract.day, LIVE_FINGERPRINT)
        self.replay = WindowReplay({instrument_id: tick}, settings.window_config(contract.day))
        self._spot_seconds = np.zeros(1 << 12, np.int64)
        self._spots = np.zeros(1 << 12)
        self._spot_count = 0

    def push(self, columns: MboColumns) -> Iterator[tuple[str, pa.RecordBatch]]:
        yield from self._tables(self.replay.push(columns))

    def finish(self) -> Iterator[tuple[str, pa.RecordBatch]]:
        yield from self._tables(self.replay.finish())

    def close_until(self, market_ns: int) -> Iterator[tuple[str, pa.RecordBatch]]:
        yield from self._tables(self.replay.close_until(market_ns))

    def lose_records(self, after_ns: int) -> Iterator[tuple[str, pa.RecordBatch]]:
        yield from self._tables(self.replay.lose_records(after_ns))

    def spot_series(self) -> SpotSeries:
        """Valid seconds with a spot, as the options reader selects them from the book."""
        n = self._spot_count
        return SpotSeries(self._spot_seconds[:n], self._spots[:n])

    def _add_spots(self, seconds: np.ndarray, spots: np.ndarray) -> None:
        n, more = self._spot_count, len(seconds)
        if n + more > len(self._spots):
            size = max(2 * len(self._spots), n + more)
            self._spot_seconds = np.resize(self._spot_seconds, size)
            self._spots = np.resize(self._spots, size)
        self._spot_seconds[n : n + more] = seconds
        self._spots[n : n + more] = spots
        self._spot_count = n + more

    def _tables(self, chunks: Iterator[WindowChunk]) -> Iterator[tuple[str, pa.RecordBatch]]:
        for chunk in chunks:
            rows = chunk.book_rows
            if len(rows):
                known = rows["book_valid"].astype(bool) & (rows["spot_price"] != UNDEF_PRICE)
                spots = rows["spot_price"][known] / PRICE_SCALE
                self._add_spots(rows["window_start"][known], spots)
                yield "engine_book_snapshot_1s", book_batch(chunk, self.partition, LIVE_FINGERPRINT)
            if len(chunk.depth_rows):
                yield (
                    "engine_depth_and_flow_1s",
                    depth_batch(chunk, self.partition, LIVE_FINGERPRINT),
                )


class OptionsQuotes:
    """The contract's options through the engine; each closed second is priced once the
    future's spot of that second is known and the open interest is settled (received before
    the session opens), then its zero-gamma level follows. An option listed during the
    session joins at its first record, as defined by then."""

    def __init__(self, contract: LiveContract, settings: LiveSettings, bronze: LiveBronze) -> None:
        self.contract = contract
        self.settings = settings
        self.bronze = bronze
        self.sums = quote_day_sums(settings.profile)
        self.cutoff_ns = chain_cutoff_ns(settings.options_config, contract.day)
        self.tick = float(settings.options_config["options_tick_size"])
        self.defined = self._chain()  # open interest may still be arriving
        self.index = self.defined.index()
        self.replay = WindowReplay(
            self.defined.ticks(), settings.options.window_config(contract.day)
        )
        self.chain: OptionsChain | None = None  # with the settled open interest
        self.pending: list[WindowChunk] = []
        # the replay's instrument ids (one array until an option is added) -> chain positions
        self._positions: tuple[np.ndarray, np.ndarray] | None = None
        n = len(self.defined.instrument_ids)
        self.last_solved = (np.full(n, np.nan), np.zeros(n, np.int64))

    def _chain(self) -> OptionsChain:
        return options_chain(
            self.bronze.relation(OPTIONS_DEFINITIONS),
            self.bronze.relation(OPTIONS_STATISTICS),
            self.contract.symbol,
            self.contract.day,
            self.cutoff_ns,
            self.tick,
        )

    def _define(self, chain: OptionsChain) -> None:
        """Options defined since the chain was read (listed during the session): each
        option's position in the chain's instrument order may move, its state moves along."""
        moved = chain.positions(self.defined.instrument_ids)
        count = len(chain.instrument_ids)
        sigma, solved_ns = self.last_solved
        self.last_solved = (np.full(count, np.nan), np.zeros(count, np.int64))
        self.last_solved[0][moved] = sigma
        self.last_solved[1][moved] = solved_ns
        self.replay.define(chain.ticks())
        self.defined, self.index = chain, chain.index()
        self._positions = None
        if self.chain is not None:
            self.chain = chain  # read after the open: its open interest is settled

    def push(self, columns: MboColumns) -> None:
        unknown = {int(i) for i in np.unique(columns.instrument_id)} - self.index.keys()
        if unknown:
            chain = self._chain()
            undefined = sorted(unknown - chain.index().keys())
            if undefined:
                raise EngineError(
                    f"options_mbo symbol={self.contract.symbol} dt={self.contract.day}: "
                    f"instrument(s) {undefined[:10]} have no option definition on or before "
                    "that day"
                )
            self._define(chain)
        self.pending += [c for c in self.replay.push(columns) if len(c.book_rows)]

    def finish(self) -> None:
        self.pending += [c for c in self.replay.finish() if len(c.book_rows)]

    def lose_records(self, after_ns: int) -> None:
        self.pending += [c for c in self.replay.lose_records(after_ns) if len(c.book_rows)]

    def priced_until_ns(self) -> int:
        """Every second before this has all its quote rows emitted."""
        if self.pending:
            return int(self.pending[0].book_rows["window_start"][0])
        return self.replay.closed_until_ns

    def close_until(self, market_ns: int) -> None:
        self.pending += [c for c in self.replay.close_until(market_ns) if len(c.book_rows)]

    def _chain_positions(self, instrument_ids: np.ndarray) -> np.ndarray:
        """Each of the replay's instruments' position in the chain (computed again only
        when the replay's instruments or the chain change: a second's pricing took 0.5 ms
        to look up 1,200 options)."""
        if self._positions is None or self._positions[0] is not instrument_ids:
            self._positions = (instrument_ids, self.defined.positions(instrument_ids))
        return self._positions[1]

    def priced(
        self, stream_ns: int, spot: SpotSeries, spot_closed_until_ns: int, final: bool
    ) -> Iterator[tuple[str, pa.RecordBatch]]:
        """Quote and zero-gamma rows of every pending second that can be priced now."""
        if self.chain is None and (final or stream_ns >= self.cutoff_ns):
            chain = self._chain()
            self._define(chain)
            self.chain = chain
        if self.chain is None:
            return
        while self.pending:
            chunk = self.pending[0]
            rows = chunk.book_rows
            ready = rows["window_start"] + 1_000_000_000 <= spot_closed_until_ns
            if not ready.any():
                return
            if ready.all():
                self.pending.pop(0)
            else:
                cut = int(np.flatnonzero(~ready)[0])
                self.pending[0] = WindowChunk(rows[cut:], chunk.depth_rows, chunk.instrument_ids)
                rows = rows[:cut]
            option = self._chain_positions(chunk.instrument_ids)[rows["instrument"]]
            quotes = quote_batch(
                self.contract.symbol, self.contract.day, rows["window_start"],
                rows["bid_price"], rows["ask_price"], rows["book_valid"], option, self.chain,
                spot, self.settings.options, LIVE_FINGERPRINT, self.last_solved,
            )  # fmt: skip
            yield "engine_options_quotes_1s", quotes
            quote_table = pa.Table.from_batches([quotes])
            for summed in self.sums:
                rows = summed.rows(
                    self.contract.symbol, self.contract.day, quote_table, LIVE_FINGERPRINT
                )
                if rows.num_rows:
                    yield f"engine_{summed.model}", rows


class HeldRecords:
    """The contract's futures records not yet given to its engine, gathered from the feed's
    batches: a paced feed sends ~200 a second, and each push into the engine and each
    conversion to bronze rows has a fixed cost (~0.5 and ~1.2 ms: a third of a core at 1x);
    held until a record or the clock reaches the end of the first one's second (before that
    second can close) or HOLD_NS after it, they go a few times a second."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray]] = []  # records, their file positions
        self.source = ""  # the feed source of the held records
        self.due_ns = 0  # when the held records go (see above)

    def add(self, records: np.ndarray, positions: np.ndarray, source: str) -> None:
        if not self.parts:
            self.source = source
            first = int(records["ts_recv"][0])
            self.due_ns = min((first // SECOND_NS + 1) * SECOND_NS, first + HOLD_NS)
        self.parts.append((records, positions))

    def take(self) -> tuple[np.ndarray, Records, str]:
        """The held records as one array, as bronze's converter reads them, and their
        source; nothing is held after."""
        # as bytes: concatenating ~200 small structured arrays field by field took 7.6 ms
        dtype = self.parts[0][0].dtype
        records = np.concatenate([r.view(np.uint8) for r, _ in self.parts]).view(dtype)
        positions = np.concatenate([p for _, p in self.parts])
        source = self.source
        self.parts, self.source = [], ""
        return records, _GatheredRecords(records, positions), source


class _GatheredRecords(Records):
    """Records gathered from several batches: their file positions are not consecutive."""

    def __init__(self, chunk: np.ndarray, positions: np.ndarray) -> None:
        super().__init__(chunk, 0)
        self.positions = positions

    def record_index(self) -> np.ndarray:
        return self.positions


class LiveSession:
    """Routes each batch of the feed into the live bronze tables and the engines of
    `contract`: the future's surfaces once its definition is known, its options' quotes."""

    def __init__(
        self, lake: Lake, contract: LiveContract, settings: LiveSettings, sink: Sink
    ) -> None:
        self.contract = contract
        self.settings = settings
        self.sink = sink
        self.bronze = LiveBronze(lake, contract.day)
        self.option_definitions = LiveOptionDefinitions(self.bronze)
        self.routers: dict[tuple[str, SourceSchema], Router] = {}
        self.futures: FuturesSurfaces | None = None
        self.held = HeldRecords()  # the future's records not yet in its engine
        self.options: OptionsQuotes | None = None
        self.records = 0
        self.stream_ns = 0
        self._day = (contract.day - day_to_date(0)).days

    def tick(self, market_ns: int) -> None:
        """Every record before `market_ns` was applied: close the seconds ending by then."""
        self.stream_ns = max(self.stream_ns, market_ns)
        if self.held.parts and market_ns >= self.held.due_ns:
            self._push_futures()
        if self.futures is not None:
            self._emit(self.futures.close_until(market_ns))
        if self.options is not None:
            self.options.close_until(market_ns)
        self._price(final=False)

    def apply(self, batch: FeedBatch, symbology: InstrumentMap) -> None:
        """`symbology`: the batch source's instrument_id -> raw symbol map."""
        self.records += len(batch.records)
        if not len(batch.records):
            return
        key = (batch.source, batch.schema)  # a live source mixes schemas
        if key not in self.routers:
            self.routers[key] = Router(
                Path(batch.source), batch.schema, symbology, self.option_definitions
            )
        router = self.routers[key]
        if batch.schema in (SourceSchema.DEFINITION, SourceSchema.STATISTICS):
            self.bronze.land(router, batch.schema, batch.records, batch.offset)
        elif batch.schema is SourceSchema.MBO:
            self._mbo(batch, router)
        if batch.schema is not SourceSchema.DEFINITION:
            # batches of one list come by product: market time is the latest record's
            self.stream_ns = max(self.stream_ns, int(batch.records["ts_recv"][-1]))
            self._price(final=False)

    def lose_records(self, after_ns: int) -> None:
        """The feed lost records after `after_ns`: the future's and every option's book is
        empty and invalid from there until the resubscription's snapshot restates it."""
        if self.held.parts:
            self._push_futures()
        if self.futures is not None:
            self._emit(self.futures.lose_records(after_ns))
        if self.options is not None:
            self.options.lose_records(after_ns)
        self._price(final=False)

    def watermarks(self) -> dict[str, int]:
        """Per source of live rows (the futures engine with the contract's records, the
        options engine), the time before which its rows are complete. Before the options'
        first record, option rows are complete only before the first second priced (a feed
        may send the options' records after the future's)."""
        futures = self.futures.replay.closed_until_ns if self.futures is not None else 0
        if self.options is not None:
            options = self.options.priced_until_ns()
        else:
            options = chain_cutoff_ns(self.settings.options_config, self.contract.day)
        return {"futures_engine": futures, "options_engine": min(options, futures)}

    def finish(self) -> None:
        if self.futures is None:
            raise LiveError(
                f"no records of {self.contract.symbol} on {self.contract.day} in the feed"
            )
        if self.held.parts:
            self._push_futures()
        self._emit(self.futures.finish())
        if self.options is not None:
            self.options.finish()
            self._price(final=True)

    def _price(self, final: bool) -> None:
        if self.options is None or self.futures is None:
            return
        self._emit(
            self.options.priced(
                self.stream_ns,
                self.futures.spot_series(),
                self.futures.replay.closed_until_ns,
                final,
            )
        )

    def _emit(self, tables: Iterator[tuple[str, pa.RecordBatch]]) -> None:
        for table, rows in tables:
            self.sink(table, rows)

    def _rows(self, router: Router, records: np.ndarray, offset: int) -> dict[str, np.ndarray]:
        """Per bronze table, which records belong to the contract-day's partition (routed
        once for both products)."""
        days = epoch_days(records["ts_recv"])
        routes = router.route_rows(records, days, offset)
        today = days == self._day
        rows = {}
        for table in (FUTURES_MBO, OPTIONS_MBO):
            wanted = np.array(
                [r.table == table and r.symbol == self.contract.symbol for r in router.landed]
                + [False],
                dtype=np.bool_,
            )
            rows[table] = wanted[np.where(routes >= 0, routes, len(router.landed))] & today
        return rows

    def _mbo(self, batch: FeedBatch, router: Router) -> None:
        records = batch.records
        rows = self._rows(router, records, batch.offset)
        futures = rows[FUTURES_MBO]
        if futures.any():
            if self.futures is None:
                self.futures = self._futures(batch.source, records[futures])
            if self.held.parts and batch.source != self.held.source:
                self._push_futures()
            contract = records[futures]
            self.held.add(contract, batch.offset + np.flatnonzero(futures), batch.source)
            if int(contract["ts_recv"][-1]) >= self.held.due_ns:
                self._push_futures()  # the first held record's second can close
        options = rows[OPTIONS_MBO]
        if options.any():
            if self.options is None:
                self.options = OptionsQuotes(self.contract, self.settings, self.bronze)
            self.options.push(MboColumns.from_dbn(records[options]))

    def _push_futures(self) -> None:
        """The held records into the future's engine, then into bronze as ingest converts
        them (their file positions)."""
        assert self.futures is not None
        records, converted, source = self.held.take()
        try:
            self._emit(self.futures.push(MboColumns.from_dbn(records)))
        except EngineError as error:  # named as the warehouse names the partition
            raise EngineError(
                f"{FUTURES_MBO} symbol={self.contract.symbol} dt={self.contract.day} "
                f"({source}): {error}"
            ) from error
        batch = to_record_batch(SourceSchema.MBO, converted)
        rows = batch.num_rows
        batch = batch.append_column("symbol", pa.repeat(pa.scalar(self.contract.symbol), rows))
        self.sink(
            FUTURES_MBO, batch.append_column("dt", pa.repeat(pa.scalar(self.contract.day), rows))
        )

    def _futures(self, source: str, records: np.ndarray) -> FuturesSurfaces:
        instruments = sorted({int(i) for i in np.unique(records["instrument_id"])})
        if len(instruments) != 1:
            raise LiveError(
                f"{source}: {self.contract.symbol} has several instruments {instruments}"
            )
        try:
            ticks = definition_ticks(self.bronze.relation(FUTURES_DEFINITIONS))(
                self.contract.symbol, self.contract.day, instruments
            )
        except EngineError as error:
            raise LiveError(
                f"{source}: records of {self.contract.symbol} before its definition: {error}"
            ) from error
        return FuturesSurfaces(
            self.contract, self.settings.surfaces, instruments[0], ticks[instruments[0]]
        )
