"""The options engine for dbt's Python models: the lake partitions of the options' top of book,
their quotes with implied volatility and gamma exposure, and the day sums over them (zero gamma,
gamma exposure by strike)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from book_engine.bronze_input import bronze_mbo_batches, landed_manifest
from book_engine.replay import MboColumns
from book_engine.surfaces import ENGINE_VERSION
from cluster.engine_partitions import EngineJob, EnginePartitionStore, PartitionTimer
from cluster.planning import (
    OPTIONS_TASK_BYTES_PER_RECORD,
    TASK_BASE_BYTES,
    BuildInputs,
    build_fingerprint,
    included_days,
    lake_folder,
    lake_partitions,
    landed_sources,
)
from foundation.computed_ahead import computed_ahead
from foundation.partitions import Partition
from gex.chain import chain_cutoff_ns, options_chain
from gex.day_sums import QuoteDaySums, quote_day_sums
from gex.options_surface import (
    OPTIONS_BOOK_SCHEMA,
    OPTIONS_QUOTES_SCHEMA,
    OptionsChain,
    OptionsSettings,
    ProfileSettings,
    SpotSeries,
    WholeSeconds,
    book_quote_batches,
    options_book_batches,
)

OPTIONS_BOOK_INPUTS = BuildInputs(("options_mbo",), ("options_definitions",))


QUOTE_INPUTS = BuildInputs(
    ("futures_mbo", "options_mbo"), ("options_definitions", "options_statistics")
)


OPTIONS_BOOK_FOLDER = "options_book_1s"


OPTIONS_QUOTES_FOLDER = "options_quotes_1s"


def _options_chain(
    config: Mapping[str, Any],
    definitions: duckdb.DuckDBPyRelation,
    statistics: duckdb.DuckDBPyRelation,
    symbol: str,
    day: dt.date,
) -> OptionsChain:
    return options_chain(
        definitions,
        statistics,
        symbol,
        day,
        chain_cutoff_ns(config, day),
        float(config["options_tick_size"]),
    )


def _options_book_partition(
    lake_dir: str, config: Mapping[str, Any], symbol: str, day: dt.date
) -> Partition:
    """A contract-day's options book partition, fingerprinted from what the options' replay
    reads: the day's options records, the definitions (the chain and its ticks) and the
    settings of the replay's window."""
    settings = OptionsSettings.from_config(config)
    label = (
        f"engine{ENGINE_VERSION}:book:{settings.timezone}:{settings.surface_window}:"
        f"{config['options_tick_size']}:chain_before={config['surface_window_start']}"
    )
    return Partition(
        symbol, day, build_fingerprint(lake_dir, OPTIONS_BOOK_INPUTS, symbol, day, label)
    )


def _options_days(lake_dir: str, selection: duckdb.DuckDBPyRelation) -> list[tuple[str, dt.date]]:
    """The included contract-days whose options were landed (a day without them has no
    quotes)."""
    return [
        (symbol, day)
        for symbol, day in included_days(selection)
        if day in landed_sources(lake_dir, "options_mbo", symbol)
    ]


def options_book_partitions(
    *,
    config: Mapping[str, Any],
    selection: duckdb.DuckDBPyRelation,
    definitions: duckdb.DuckDBPyRelation,
    statistics: duckdb.DuckDBPyRelation,
    on_partition: PartitionTimer | None = None,
) -> pa.Table:
    """The lake partitions of the options' top of book by second (OPTIONS_BOOK_SCHEMA), one
    per included contract-day whose options were landed (ENGINE_PARTITIONS_SCHEMA), each
    replayed and written unless the lake holds it from the same inputs and settings. The
    replay needs no spot, so it runs beside the futures' replay; the quotes read it."""
    settings = OptionsSettings.from_config(config)
    lake_dir = lake_folder(config)

    def job(partition: Partition) -> EngineJob:
        landed = landed_manifest(lake_dir, "options_mbo", partition.symbol, partition.day)
        return EngineJob(
            model=OPTIONS_BOOK_FOLDER,
            partition=partition,
            compute=options_book_rows,
            arguments={
                "lake_dir": lake_dir,
                "chain": _options_chain(
                    config, definitions, statistics, partition.symbol, partition.day
                ),
                "settings": settings,
            },
            memory_bytes=TASK_BASE_BYTES + landed["records"] * OPTIONS_TASK_BYTES_PER_RECORD,
        )

    partitions = [
        _options_book_partition(lake_dir, config, symbol, day)
        for symbol, day in _options_days(lake_dir, selection)
    ]
    return lake_partitions(
        OPTIONS_BOOK_FOLDER, OPTIONS_BOOK_SCHEMA, partitions, job, lake_dir, on_partition
    )


def options_book_rows(
    partition: Partition, *, lake_dir: str, chain: OptionsChain, settings: OptionsSettings
) -> Iterator[pa.RecordBatch]:
    """OPTIONS_BOOK_SCHEMA rows of one contract-day (in the dbt process or a Ray task)."""
    symbol, day = partition.symbol, partition.day
    options = map(MboColumns.from_arrow, bronze_mbo_batches(lake_dir, "options_mbo", symbol, day))
    return options_book_batches(symbol, day, options, chain, settings)


def options_quote_partitions(
    *,
    config: Mapping[str, Any],
    selection: duckdb.DuckDBPyRelation,
    definitions: duckdb.DuckDBPyRelation,
    statistics: duckdb.DuckDBPyRelation,
    book: duckdb.DuckDBPyRelation,
    on_partition: PartitionTimer | None = None,
) -> pa.Table:
    """The lake partitions of options_quotes_1s rows, one per included contract-day whose
    options were landed (ENGINE_PARTITIONS_SCHEMA), each computed and written unless the lake
    holds it from the same inputs and settings: from the day's options book partition
    (options_book_partitions) and the future's spot."""
    settings = OptionsSettings.from_config(config)
    lake_dir = lake_folder(config)
    label = (
        f"engine{ENGINE_VERSION}:{settings}:{config['options_tick_size']}:"
        f"chain_before={config['surface_window_start']}"
    )
    partitions = [
        Partition(symbol, day, build_fingerprint(lake_dir, QUOTE_INPUTS, symbol, day, label))
        for symbol, day in _options_days(lake_dir, selection)
    ]

    def job(partition: Partition) -> EngineJob:
        day, symbol = partition.day, partition.symbol
        spots = (
            book.filter(
                f"symbol = '{symbol}' and dt = DATE '{day.isoformat()}' and book_valid "
                "and spot_price is not null"
            )
            .project("epoch_ns(window_start) as second, spot_price")
            .order("second")
            .fetchnumpy()
        )
        spot = SpotSeries(np.asarray(spots["second"], np.int64), np.asarray(spots["spot_price"]))
        landed = landed_manifest(lake_dir, "options_mbo", symbol, day)
        return EngineJob(
            model=OPTIONS_QUOTES_FOLDER,
            partition=partition,
            compute=quote_rows,
            arguments={
                "lake_dir": lake_dir,
                "book": _options_book_partition(lake_dir, config, symbol, day),
                "chain": _options_chain(config, definitions, statistics, symbol, day),
                "spot": spot,
                "settings": settings,
                "sums": quote_day_sums(ProfileSettings.from_config(config)),
            },
            memory_bytes=TASK_BASE_BYTES + landed["records"] * OPTIONS_TASK_BYTES_PER_RECORD,
        )

    return lake_partitions(
        OPTIONS_QUOTES_FOLDER, OPTIONS_QUOTES_SCHEMA, partitions, job, lake_dir, on_partition
    )


def quote_rows(
    partition: Partition,
    *,
    lake_dir: str,
    book: Partition,
    chain: OptionsChain,
    spot: SpotSeries,
    settings: OptionsSettings,
    sums: Sequence[QuoteDaySums],
) -> Iterator[pa.RecordBatch]:
    """options_quotes_1s rows of one contract-day (in the dbt process or a Ray task), from
    its options book partition (`book`; replayed and written first when the lake does not
    hold it, so the quotes are always computed from the same batches). The same rows' `sums`
    (zero gamma, gamma exposure by strike) are computed as each whole second arrives and
    written to the lake's engine partitions, where their models (built after this one) read
    them instead of reading 17 million option-seconds back from the warehouse."""
    symbol, day = partition.symbol, partition.day
    store = EnginePartitionStore(lake_dir)
    stored_book = store.stored(OPTIONS_BOOK_FOLDER, book) or store.write(
        OPTIONS_BOOK_FOLDER,
        book,
        OPTIONS_BOOK_SCHEMA,
        computed_ahead(options_book_rows(book, lake_dir=lake_dir, chain=chain, settings=settings)),
    )
    whole_seconds = WholeSeconds(f"options_mbo symbol={symbol} dt={day}")
    with contextlib.ExitStack() as stack:
        writers = []
        for summed in sums:
            day_partition = Partition(symbol, day, summed.fingerprint(partition.fingerprint))
            writer = stack.enter_context(store.writing(summed.model, day_partition, summed.schema))
            writers.append((summed, day_partition.fingerprint, writer))

        def write(seconds: pa.Table) -> None:
            for summed, fingerprint, writer in writers:
                writer.write_batch(summed.rows(symbol, day, seconds, fingerprint))

        # the book is read and the quotes computed on threads of their own, beside these sums
        book_rows = computed_ahead(store.read(stored_book, OPTIONS_BOOK_SCHEMA))
        quotes = book_quote_batches(
            symbol, day, book_rows, chain, spot, settings, partition.fingerprint
        )
        for batch in computed_ahead(quotes):
            yield batch
            for seconds in whole_seconds.add(batch):
                write(seconds)
        for seconds in whole_seconds.finish():
            write(seconds)


def quote_days(
    quote_partitions: duckdb.DuckDBPyRelation, fingerprint: Callable[[str], str]
) -> list[Partition]:
    """Each day of options_quotes_1s (engine_options_quote_partitions), fingerprinted from its
    quotes' fingerprint: a model over the quotes recomputes a day when they or its settings
    changed."""
    return [
        Partition(symbol, day, fingerprint(quotes_fingerprint))
        for symbol, day, quotes_fingerprint in quote_partitions.project(
            "symbol, dt, build_fingerprint"
        )
        .distinct()
        .order("dt, symbol")
        .fetchall()
    ]


def quote_day_partitions(
    model: str,
    *,
    config: Mapping[str, Any],
    quote_partitions: duckdb.DuckDBPyRelation,
    quotes: duckdb.DuckDBPyRelation,
    on_partition: PartitionTimer | None = None,
) -> pa.Table:
    """The lake partitions of `model` (one of gex.day_sums' tables, "zero_gamma_1s" or
    "gex_by_strike_1s"), one per day of options_quotes_1s (ENGINE_PARTITIONS_SCHEMA). The
    options engine writes them as it computes the quotes (quote_rows); a day without its
    partition (the lake's engine folder removed, or a changed setting of this model only) is
    summed here from its quotes read back from the warehouse."""
    [summed] = [s for s in quote_day_sums(ProfileSettings.from_config(config)) if s.model == model]
    lake_dir = lake_folder(config)

    def job(partition: Partition) -> EngineJob:
        table = (
            quotes.filter(
                f"symbol = '{partition.symbol}' and dt = DATE '{partition.day.isoformat()}'"
            )
            # in scan order: the sums take each second's options in instrument order
            .project(", ".join(summed.columns))
            .to_arrow_table()
        )
        return EngineJob(
            model=summed.model,
            partition=partition,
            compute=quote_day_rows,
            arguments={"quotes": table, "summed": summed},
            memory_bytes=TASK_BASE_BYTES + 4 * table.nbytes,
        )

    return lake_partitions(
        summed.model,
        summed.schema,
        quote_days(quote_partitions, summed.fingerprint),
        job,
        lake_dir,
        on_partition,
    )


def quote_day_rows(
    partition: Partition, *, quotes: pa.Table, summed: QuoteDaySums
) -> Iterator[pa.RecordBatch]:
    yield summed.rows(partition.symbol, partition.day, quotes, partition.fingerprint)
