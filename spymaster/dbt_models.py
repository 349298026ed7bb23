"""What the dbt Python models share: settings from their config, the contract-days to build,
and loaders over DuckDB relations. The models themselves stay a few lines long."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from book_engine.errors import EngineError, instrument_list
from book_engine.kernel import first_out_of_order
from book_engine.replay import MboColumns
from book_engine.surfaces import (
    BOOK_SNAPSHOT_SCHEMA,
    DEPTH_AND_FLOW_SCHEMA,
    ENGINE_VERSION,
    MBO_COLUMNS,
    Partition,
    SurfaceSettings,
    book_batch,
    depth_and_flow_batches,
    depth_batch,
    futures_chunks,
)
from cluster.engine_partitions import (
    EngineJob,
    EnginePartitionStore,
    PartitionTimer,
    job_batches,
    job_partitions,
)
from cluster.ray_runtime import requested_address
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
from ingest.partitions import PartitionKey, read_manifest
from spymaster.computed_ahead import computed_ahead
from spymaster.dbn_facts import PRICE_SCALE, UNDEF_PRICE
from spymaster.exchange_time import parse_time, utc_ns
from spymaster.lake_files import file_system


def lake_folder(config: Mapping[str, Any]) -> str:
    """The lake of a model's config ($SPYMASTER_LAKE) as an absolute path: Ray workers do
    not share this process's working directory."""
    return str(Path(str(config["lake_dir"])).resolve())


def surface_settings(config: Mapping[str, Any]) -> SurfaceSettings:
    """The engine settings a model receives in its `surface_settings` config (dbt vars)."""
    return SurfaceSettings(
        timezone=str(config["exchange_timezone"]),
        depth_ticks=int(config["depth_ticks"]),
        rest_ms=int(config["resting_ms"]),
        surface_window=(
            parse_time(str(config["surface_window_start"])),
            parse_time(str(config["surface_window_end"])),
        ),
        pre_open=(
            parse_time(str(config["pre_open_start"])),
            parse_time(str(config["pre_open_end"])),
        ),
    )


@dataclass(frozen=True)
class BuildInputs:
    """The bronze tables a contract-day's build reads: the day's partition of each of
    `day_tables`, and every partition up to and including the day of `history_tables` (the
    latest definition or statistic on or before the day may come from any of them)."""

    day_tables: tuple[str, ...]
    history_tables: tuple[str, ...]


SURFACE_INPUTS = BuildInputs(("futures_mbo",), ("futures_definitions",))
OPTIONS_BOOK_INPUTS = BuildInputs(("options_mbo",), ("options_definitions",))
QUOTE_INPUTS = BuildInputs(
    ("futures_mbo", "options_mbo"), ("options_definitions", "options_statistics")
)


@cache
def _manifest_sha256(manifest: Path, identity: tuple[int, int, int]) -> str:
    """A manifest's source SHA-256, read once per version of the file (inode, size, mtime)."""
    return json.loads(manifest.read_text())["sources"][0]["sha256"]


def _landed(lake_dir: str, table: str, symbol: str) -> dict[dt.date, str]:
    """The source SHA-256 of each landed partition of a table for a symbol, by date."""
    folder = Path(lake_dir) / "bronze" / table / f"symbol={symbol}"
    landed = {}
    for manifest in folder.glob("dt=*/_manifest.json"):
        day = dt.date.fromisoformat(manifest.parent.name.removeprefix("dt="))
        status = manifest.stat()
        landed[day] = _manifest_sha256(
            manifest, (status.st_ino, status.st_size, status.st_mtime_ns)
        )
    return landed


def build_fingerprint(
    lake_dir: str, inputs: BuildInputs, symbol: str, day: dt.date, settings: str
) -> str:
    """One fingerprint per contract-day and model: the settings and the source SHA-256 of
    every bronze partition the build reads. A day is rebuilt exactly when one of them changed
    (a statistics file landed after the day was built, say), or a setting did."""
    digest = hashlib.sha256(settings.encode())
    for table in inputs.day_tables:
        digest.update(f"{table}:{_landed(lake_dir, table, symbol).get(day, 'absent')};".encode())
    for table in inputs.history_tables:
        for landed_day, sha in sorted(_landed(lake_dir, table, symbol).items()):
            if landed_day <= day:
                digest.update(f"{table}:{landed_day}:{sha};".encode())
    return digest.hexdigest()[:32]


def included_days(selection: duckdb.DuckDBPyRelation) -> list[tuple[str, dt.date]]:
    """(selected contract, session date) of every included day, in date order."""
    return selection.filter("is_included").project("selected_symbol, dt").order("dt").fetchall()


def partitions_to_build(
    session: duckdb.DuckDBPyConnection,
    this: object,
    is_incremental: bool,
    partitions: Sequence[Partition],
) -> list[Partition]:
    """Contract-days whose rows were not built from the same inputs and settings (all of them
    on a full build): a new day does not recompute old ones, a changed input rebuilds its day."""
    if not is_incremental:
        return list(partitions)
    built = set(
        session.sql(f"select distinct symbol, dt, build_fingerprint from {this}").fetchall()
    )
    return [p for p in partitions if (p.symbol, p.day, p.fingerprint) not in built]


def in_file_order(table: pa.Table) -> pa.Table:
    """The records in file order. A partition is one Parquet file written in that order and
    a scan keeps it, so sorting (a third of a busy day's load) is only needed when the check
    finds otherwise."""
    last = None
    for chunk in table.column("record_index").chunks:
        record_index = chunk.to_numpy()  # no copy: int64 without nulls
        if len(record_index) == 0:
            continue
        if (last is not None and record_index[0] <= last) or first_out_of_order(
            record_index, True
        ) >= 0:
            return table.sort_by("record_index")
        last = record_index[-1]
    return table


def bronze_mbo(lake_dir: str, table: str, symbol: str, day: dt.date) -> pa.Table:
    """The engine's columns of one landed MBO partition, in file order, whole."""
    return pa.concat_tables(bronze_mbo_batches(lake_dir, table, symbol, day))


def bronze_mbo_batches(lake_dir: str, table: str, symbol: str, day: dt.date) -> Iterator[pa.Table]:
    """The engine's columns of one landed MBO partition in file order, a row group at a time,
    read from the Parquet file its manifest names (through the file system layer: the same on
    every Ray node). Ingest writes records in file order, so the row groups' record_index
    ranges follow each other (their statistics say so); a file where they do not is read
    whole and sorted. The next row groups are decoded on a thread of their own while the
    caller replays this one (the options engine alone: 20.7 -> 19.1 s on the busy day)."""
    return computed_ahead(_bronze_row_groups(lake_dir, table, symbol, day))


def _bronze_row_groups(lake_dir: str, table: str, symbol: str, day: dt.date) -> Iterator[pa.Table]:
    key = PartitionKey(table, symbol, day)
    data_file = _landed_manifest(lake_dir, table, symbol, day)["data_file"]
    fs, root = file_system(f"{lake_dir.rstrip('/')}/bronze")
    columns = [*MBO_COLUMNS, "record_index"]
    with fs.open_input_file(f"{key.folder(root)}/{data_file}") as source:
        # action and side as Parquet's dictionaries: no string per record
        parquet = pq.ParquetFile(source, read_dictionary=["action", "side"])
        if parquet.num_row_groups > 1 and _row_groups_follow_each_other(parquet.metadata):
            for group in range(parquet.num_row_groups):
                records = parquet.read_row_group(group, columns=columns)
                yield in_file_order(records).drop_columns(["record_index"])
        else:
            yield in_file_order(parquet.read(columns=columns)).drop_columns(["record_index"])


def _row_groups_follow_each_other(metadata: pq.FileMetaData) -> bool:
    """Whether each row group's record_index values all come after the previous group's, by
    the groups' min/max statistics (a file without them: not known)."""
    position = metadata.schema.names.index("record_index")
    last = None
    for group in range(metadata.num_row_groups):
        statistics = metadata.row_group(group).column(position).statistics
        if statistics is None or not statistics.has_min_max:
            return False
        if last is not None and statistics.min <= last:
            return False
        last = statistics.max
    return True


def _landed_manifest(lake_dir: str, table: str, symbol: str, day: dt.date) -> dict[str, Any]:
    """A bronze partition's manifest: its data file, records and instrument ids."""
    manifest = read_manifest(lake_dir, PartitionKey(table, symbol, day))
    if manifest is None:
        raise EngineError(f"{table} symbol={symbol} dt={day}: no landed partition (run ingest)")
    return manifest


def definition_ticks(
    definitions: duckdb.DuckDBPyRelation,
) -> Callable[[str, dt.date, Sequence[int]], Mapping[int, int]]:
    """Tick size (price units) of each instrument: its latest definition on or before the day."""

    def ticks_for(symbol: str, day: dt.date, instrument_ids: Sequence[int]) -> Mapping[int, int]:
        ids = ", ".join(str(int(i)) for i in instrument_ids)
        rows = (
            definitions.filter(f"instrument_id in ({ids}) and dt <= DATE '{day.isoformat()}'")
            .project("instrument_id, dt, record_index, min_price_increment")
            .order("instrument_id, dt, record_index")
            .fetchall()
        )
        ticks = {int(instrument): int(tick) for instrument, _, _, tick in rows}
        missing = sorted({int(i) for i in instrument_ids} - ticks.keys())
        if missing:
            raise EngineError(
                f"futures_mbo symbol={symbol} dt={day}: instrument(s) {instrument_list(missing)} "
                "have no definition on or before that day; land the ES.FUT definition file of "
                "that day"
            )
        return ticks

    return ticks_for


# per input record, what a task holds at its peak (the records as Arrow and NumPy, the engine's
# state, the rows out); declared to Ray so a node is not overcommitted
FUTURES_TASK_BYTES_PER_RECORD = 160
OPTIONS_TASK_BYTES_PER_RECORD = 240
TASK_BASE_BYTES = 512 << 20


def surface_rows(
    partition: Partition,
    *,
    surface: str,
    lake_dir: str,
    ticks: Mapping[int, int],
    settings: SurfaceSettings,
) -> Iterator[pa.RecordBatch]:
    """The rows of `surface` for one contract-day (in the dbt process or a Ray task)."""
    load = lambda symbol, day: bronze_mbo_batches(lake_dir, "futures_mbo", symbol, day)  # noqa: E731
    if surface == "depth_and_flow":
        return depth_and_flow_batches([partition], load, lambda *_: ticks, settings)
    return _book_snapshot_writing_depth_and_flow(partition, load, ticks, settings, lake_dir)


def _book_snapshot_writing_depth_and_flow(
    partition: Partition,
    load: Callable[[str, dt.date], pa.Table],
    ticks: Mapping[int, int],
    settings: SurfaceSettings,
    lake_dir: str,
) -> Iterator[pa.RecordBatch]:
    """book_snapshot_1s rows of one contract-day. The same replay's depth_and_flow_1s rows
    are written to the lake's engine partitions, where the depth-and-flow model (built after
    this one) reads them: each futures day is replayed once for both surfaces."""
    store = EnginePartitionStore(lake_dir)
    with store.writing("depth_and_flow_1s", partition, DEPTH_AND_FLOW_SCHEMA) as depth:
        # the next chunk's replay runs beside this chunk's conversion and Parquet writing
        for chunk in computed_ahead(futures_chunks(partition, load, lambda *_: ticks, settings)):
            if len(chunk.depth_rows):
                depth.write_batch(depth_batch(chunk, partition, partition.fingerprint))
            if len(chunk.book_rows):
                yield book_batch(chunk, partition, partition.fingerprint)


def book_snapshot_reader(
    *,
    session: duckdb.DuckDBPyConnection,
    this: object,
    is_incremental: bool,
    config: Mapping[str, Any],
    selection: duckdb.DuckDBPyRelation,
    definitions: duckdb.DuckDBPyRelation,
    on_partition: PartitionTimer | None = None,
) -> pa.RecordBatchReader:
    """book_snapshot_1s rows of every included contract-day still to build, one partition at
    a time (a Ray task each with --ray); the same replay writes the day's depth_and_flow_1s
    partition to the lake."""
    settings = surface_settings(config)
    lake_dir = lake_folder(config)
    partitions = _surface_partitions(lake_dir, selection, settings)
    todo = partitions_to_build(session, this, is_incremental, partitions)
    job = _surface_job("book_snapshot", lake_dir, definition_ticks(definitions), settings)
    return _reader(BOOK_SNAPSHOT_SCHEMA, map(job, todo), lake_dir, on_partition)


def depth_and_flow_partitions(
    *,
    config: Mapping[str, Any],
    selection: duckdb.DuckDBPyRelation,
    definitions: duckdb.DuckDBPyRelation,
    on_partition: PartitionTimer | None = None,
) -> pa.Table:
    """The lake partitions of depth_and_flow_1s rows, one per included contract-day
    (ENGINE_PARTITIONS_SCHEMA). The book snapshot's replay of a day writes them; a day without
    its partition (the lake's engine folder removed, say) is replayed here."""
    settings = surface_settings(config)
    lake_dir = lake_folder(config)
    return lake_partitions(
        DEPTH_AND_FLOW_FOLDER,
        DEPTH_AND_FLOW_SCHEMA,
        _surface_partitions(lake_dir, selection, settings),
        _surface_job("depth_and_flow", lake_dir, definition_ticks(definitions), settings),
        lake_dir,
        on_partition,
    )


def _surface_partitions(
    lake_dir: str, selection: duckdb.DuckDBPyRelation, settings: SurfaceSettings
) -> list[Partition]:
    return [
        Partition(
            symbol,
            day,
            build_fingerprint(lake_dir, SURFACE_INPUTS, symbol, day, settings.fingerprint),
        )
        for symbol, day in included_days(selection)
    ]


def _surface_job(
    surface: str,
    lake_dir: str,
    ticks_for: Callable[[str, dt.date, Sequence[int]], Mapping[int, int]],
    settings: SurfaceSettings,
) -> Callable[[Partition], EngineJob]:
    def job(partition: Partition) -> EngineJob:
        landed = _landed_manifest(lake_dir, "futures_mbo", partition.symbol, partition.day)
        return EngineJob(
            model=f"{surface}_1s",
            partition=partition,
            compute=surface_rows,
            arguments={
                "surface": surface,
                "lake_dir": lake_dir,
                "ticks": ticks_for(partition.symbol, partition.day, landed["instrument_ids"]),
                "settings": settings,
            },
            memory_bytes=TASK_BASE_BYTES + landed["records"] * FUTURES_TASK_BYTES_PER_RECORD,
        )

    return job


def _reader(
    schema: pa.Schema,
    jobs: Iterator[EngineJob],
    lake_dir: str,
    on_partition: PartitionTimer | None,
) -> pa.RecordBatchReader:
    """The jobs' rows for dbt: computed here, or by Ray tasks with SPYMASTER_RAY_ADDRESS
    (`on_partition`, for the benchmark, hears each task's partition and seconds)."""
    batches = job_batches(
        jobs,
        schema,
        lake_root=lake_dir,
        ray_address=requested_address(None),
        on_partition=on_partition,
    )
    return pa.RecordBatchReader.from_batches(schema, batches)


# One row per contract-day partition of an engine model kept in the lake (the rows' Parquet
# file under <lake>/engine/<folder>/symbol=<s>/dt=<d>/), as its manifest names it. The
# warehouse reads such rows through a view (the engine_partitions_view macro): storing them in
# DuckDB too cost more than computing them (the demo's 35.6 M option-seconds: 16 s of wall
# time and 31 s of CPU, where writing them as Parquet costs 5 s).
ENGINE_PARTITIONS_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("dt", pa.date32(), nullable=False),
        pa.field("build_fingerprint", pa.string(), nullable=False),
        pa.field("data_file", pa.string(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
    ]
)
DEPTH_AND_FLOW_FOLDER = "depth_and_flow_1s"
OPTIONS_BOOK_FOLDER = "options_book_1s"
OPTIONS_QUOTES_FOLDER = "options_quotes_1s"


def lake_partitions(
    folder: str,
    schema: pa.Schema,
    partitions: Sequence[Partition],
    job: Callable[[Partition], EngineJob],
    lake_dir: str,
    on_partition: PartitionTimer | None,
) -> pa.Table:
    """Each partition's row (ENGINE_PARTITIONS_SCHEMA), in order: as the lake holds it when it
    was written from the same inputs and settings (its build fingerprint), else computed and
    written first (here, or as Ray tasks with SPYMASTER_RAY_ADDRESS)."""
    store = EnginePartitionStore(lake_dir)
    stored = [store.stored(folder, partition) for partition in partitions]
    written = job_partitions(
        (job(p) for p, manifest in zip(partitions, stored, strict=True) if manifest is None),
        schema,
        lake_root=lake_dir,
        ray_address=requested_address(None),
        on_partition=on_partition,
    )
    manifests = [manifest or next(written) for manifest in stored]
    return pa.Table.from_pylist(
        [
            {
                "symbol": manifest["symbol"],
                "dt": dt.date.fromisoformat(manifest["dt"]),
                "build_fingerprint": manifest["build_fingerprint"],
                "data_file": manifest["data_file"],
                "rows": manifest["rows"],
            }
            for manifest in manifests
        ],
        schema=ENGINE_PARTITIONS_SCHEMA,
    )


# ---- options: quotes, implied volatility and gamma exposure (gex_surface_1s)


def options_settings(config: Mapping[str, Any]) -> OptionsSettings:
    return OptionsSettings(
        timezone=str(config["exchange_timezone"]),
        surface_window=(
            parse_time(str(config["surface_window_start"])),
            parse_time(str(config["surface_window_end"])),
        ),
        min_minutes_to_expiry=float(config["min_minutes_to_expiry"]),
        rate=float(config["black76_rate"]),
        iv_carry_seconds=int(config["iv_carry_seconds"]),
    )


def options_chain(
    definitions: duckdb.DuckDBPyRelation,
    statistics: duckdb.DuckDBPyRelation,
    symbol: str,
    day: dt.date,
    cutoff_ns: int,
    options_tick: float,
) -> OptionsChain:
    """Options of an underlying that day as known when its first second is priced
    (`cutoff_ns`, chain_cutoff_ns): each option's latest definition received before then,
    and its latest open interest (stat_type 9) received before then. An option first defined
    later (listed during the session) takes its first definition, the one its records follow,
    and had no open contracts when the day's open interest was published: its open interest
    is 0, not unknown. A definition received after that changes nothing that day, so every
    second uses only what was known by then, and a live session reading the chain at any
    later moment gets this same chain."""
    records = definitions.filter(f"symbol = '{symbol}' and dt <= DATE '{day.isoformat()}'").project(
        "instrument_id, dt, record_index, raw_symbol, strike_price, instrument_class, "
        "expiration, unit_of_measure_qty, min_price_increment, ts_recv"
    )
    # in (instrument, dt, record order): the latest record before the cutoff wins, else the first
    by_instrument: dict[int, tuple[object, ...]] = {}
    first_defined_ns: dict[int, int] = {}
    for row in sorted(records.fetchall()):
        instrument, ts_recv = row[0], row[-1]
        if instrument not in by_instrument or ts_recv < cutoff_ns:
            by_instrument[instrument] = row[3:]
        first_defined_ns[instrument] = min(first_defined_ns.get(instrument, ts_recv), ts_recv)
    statistics_rows = statistics.filter(
        f"symbol = '{symbol}' and dt <= DATE '{day.isoformat()}' and stat_type = 9 "
        "and update_action = 1 "
        f"and ts_recv < {cutoff_ns}"
    ).project("instrument_id, ts_recv, record_index, quantity, dt")
    interest = {}
    published_ns = None  # when the day's open interest came (None: no statistics that day)
    for instrument, ts_recv, _, quantity, stat_day in sorted(statistics_rows.fetchall()):
        interest[instrument] = quantity
        if stat_day == day:
            published_ns = max(published_ns or ts_recv, ts_recv)

    def open_interest(instrument: int) -> float:
        if instrument in interest:
            return float(interest[instrument])
        if published_ns is not None and first_defined_ns[instrument] > published_ns:
            return 0.0
        return np.nan

    ids = sorted(by_instrument)
    rows = [by_instrument[i] for i in ids]
    tick = round(options_tick * PRICE_SCALE)
    return OptionsChain(
        instrument_ids=np.array(ids, dtype=np.int64),
        raw_symbols=[row[0] for row in rows],
        strikes=np.array([row[1] / PRICE_SCALE for row in rows]),
        is_call=np.array([row[2] == "C" for row in rows]),
        expiration_ns=np.array([row[3] for row in rows], dtype=np.int64),
        multiplier=np.array([row[4] / PRICE_SCALE for row in rows]),
        tick=np.array(
            [tick if row[5] in (None, UNDEF_PRICE) else row[5] for row in rows], dtype=np.int64
        ),
        open_interest=np.array([open_interest(i) for i in ids]),
    )


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
    settings = options_settings(config)
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
        if day in _landed(lake_dir, "options_mbo", symbol)
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
    settings = options_settings(config)
    lake_dir = lake_folder(config)

    def job(partition: Partition) -> EngineJob:
        landed = _landed_manifest(lake_dir, "options_mbo", partition.symbol, partition.day)
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
    settings = options_settings(config)
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
        landed = _landed_manifest(lake_dir, "options_mbo", symbol, day)
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
                "sums": quote_day_sums(profile_settings(config)),
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


def profile_settings(config: Mapping[str, Any]) -> ProfileSettings:
    return ProfileSettings(
        half_width_points=float(config["zero_gamma_half_width_points"]),
        step_points=float(config["zero_gamma_step_points"]),
        rate=float(config["black76_rate"]),
        call_sign=float(config["dealer_sign_call"]),
        put_sign=float(config["dealer_sign_put"]),
    )


def chain_cutoff_ns(config: Mapping[str, Any], day: dt.date) -> int:
    """The first second the options are priced (the surface window's start): definitions and
    open interest count when received before it (options_chain), so every second's exposure
    uses only what was known by then, and a live session can price from that second on."""
    return utc_ns(
        day, parse_time(str(config["surface_window_start"])), str(config["exchange_timezone"])
    )


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
    [summed] = [s for s in quote_day_sums(profile_settings(config)) if s.model == model]
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
