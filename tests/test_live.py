"""Live: a day's raw files replayed as a feed through the warehouse's engine give
the warehouse's rows for that day, row for row; bad input is named."""

from __future__ import annotations

import datetime as dt
import gc
import shutil
from pathlib import Path

import databento as db
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from foundation import project as project_module
from foundation.exchange_time import day_start_ns
from foundation.lake import Lake
from foundation.project import project_digest
from gex.chain import chain_cutoff_ns
from ingest.landing import ingest
from live import command as live_command
from live.command import LiveRun, run_feed
from live.databento_feed import LIVE_SOURCE, GatewayFeed
from live.feed import ClockTick, DbnReplay, Pace
from live.layers import open_live_layers
from live.session import LiveContract, LiveError, LiveSession
from live.settings import live_settings
from spymaster.cli import main
from spymaster.warehouse_diff import compare_rows
from tests.gateway import GatewaySession, day_end, subscription_before
from tests.markets import warehouse

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def included_day(market_lake: Lake) -> tuple[str, dt.date]:
    symbol, day = warehouse(
        market_lake,
        "select selected_symbol, dt from silver.contract_day_selection "
        "where is_included order by dt desc limit 1",
    )[0]
    return symbol, day


@pytest.fixture(scope="module")
def emitted(
    market_lake: Lake, included_day: tuple[str, dt.date], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("live") / "emit"
    files = market_lake.raw_day_files(included_day[1])
    assert (
        len(files) == 5
    )  # the day's futures MBO and definitions, options MBO, definitions, statistics
    argv = ["live", "--lake", str(market_lake.root), "--replay", *map(str, files)]
    assert main([*argv, "--speed", "max", "--emit", str(out)]) == 0
    return out


ENGINE_TABLES = (
    "engine_book_snapshot_1s",
    "engine_depth_and_flow_1s",
    "engine_options_quotes_1s",
    "engine_zero_gamma_1s",
    "engine_gex_by_strike_1s",
)
SQL_TABLES = (
    "book_snapshot_1s", "depth_and_flow_1s", "options_quotes_1s", "vacuum_surface_1s",
    "vacuum_score_1s", "physics_bands_1s", "gex_surface_1s", "session_calendar",
    "physics_norm_calibration", "session_trades", "futures_bars", "session_levels",
    "research_seconds", "feature_windows", "level_features", "market_features",
    "approach_episodes", "approach_triggers", "trigger_vectors", "trigger_outcomes",
    "trigger_conditions", "retrieval_vectors",
    "retrieval_trigger_signals", "trigger_signals",
)  # fmt: skip


def compared_columns(connection: duckdb.DuckDBPyConnection, table: str) -> str:
    """Every column but build_fingerprint and fold_fingerprint (the warehouse hashes what it
    read; live rows say `live`)."""
    return ", ".join(
        f'"{name}"'
        for (name,) in connection.execute(
            "select column_name from information_schema.columns where table_name = ? "
            "and column_name not in ('build_fingerprint', 'fold_fingerprint') "
            "order by ordinal_position",
            [table],
        ).fetchall()
    )


def live_and_warehouse_rows(
    lake: Lake, emitted: Path, table: str, day: dt.date
) -> tuple[int, int, int]:
    """Rows of the day in the warehouse, rows only live has, rows only the warehouse has."""
    connection = duckdb.connect(str(lake.duckdb_path), read_only=True)
    try:
        schema = connection.execute(
            "select table_schema from information_schema.tables where table_name = ?", [table]
        ).fetchall()[0][0]
        columns = compared_columns(connection, table)
        expected = f"select {columns} from {schema}.{table} where dt = DATE '{day}'"
        live = f"select {columns} from read_parquet('{emitted / table}.parquet')"
        count, only_warehouse, only_live = compare_rows(connection, expected, live, columns)
    finally:
        connection.close()
    return count, only_live, only_warehouse


@pytest.mark.parametrize("table", ENGINE_TABLES + SQL_TABLES)
def test_replaying_a_day_reproduces_the_warehouses_rows(
    market_lake: Lake,
    included_day: tuple[str, dt.date],
    emitted: Path,
    table: str,
) -> None:
    """Every row of the contract-day, every column but the fingerprint: the engine's tables,
    then every SQL layer down to the triggers and their neighbours (from the indexes of the
    sessions before the day)."""
    count, only_live, only_warehouse = live_and_warehouse_rows(
        market_lake, emitted, table, included_day[1]
    )
    assert (only_live, only_warehouse) == (0, 0)
    assert count > (1000 if table.endswith("_1s") else 0)
    if table in ENGINE_TABLES:
        fingerprints = pq.read_table(emitted / f"{table}.parquet").column("build_fingerprint")
        assert set(fingerprints.to_pylist()) == {"live"}


def test_options_listed_during_the_session_are_quoted_live_from_their_first_record(
    market_lake: Lake, included_day: tuple[str, dt.date], emitted: Path
) -> None:
    """The replayed day lists strikes as the future moves, before and after the open (when
    the chain's open interest is settled): live learns each from its definition in the
    stream, and quotes it from its first record on, never before its listing (the parity
    test above checks every row against the warehouse)."""
    symbol, day = included_day
    connection = duckdb.connect(str(market_lake.duckdb_path), read_only=True)
    try:
        rows = connection.execute(
            f"""
            with listed as (
                select instrument_id, min(ts_recv) as defined_ns
                from bronze.options_definitions
                where dt = ? and symbol = ?
                group by instrument_id
                having min(ts_recv) > epoch_ns(?::timestamp)
            )
            select
                listed.instrument_id,
                listed.defined_ns,
                min(epoch_ns(quotes.window_start)) as first_second_ns,
                count(*) filter (where quotes.iv_status = 'ok') as solved
            from listed
            inner join read_parquet('{emitted / "engine_options_quotes_1s.parquet"}') as quotes
                using (instrument_id)
            group by all
            """,
            [day, symbol, day],
        ).fetchall()
    finally:
        connection.close()
    opening = chain_cutoff_ns(live_settings().options_config, day)
    assert any(defined < opening for _, defined, _, _ in rows)
    assert any(defined >= opening for _, defined, _, _ in rows)
    assert all(first >= defined // 10**9 * 10**9 for _, defined, first, _ in rows)
    assert sum(solved > 0 for *_, solved in rows) >= len(rows) // 2


def test_live_emits_every_live_table_and_chooses_the_contract(
    included_day: tuple[str, dt.date], emitted: Path
) -> None:
    symbol, day = included_day
    written = {path.name.removesuffix(".parquet") for path in emitted.glob("*.parquet")}
    assert written == {*ENGINE_TABLES, *SQL_TABLES, "contract_day_selection"}
    choice = pq.read_table(emitted / "contract_day_selection.parquet").to_pylist()
    assert [(row["dt"], row["selected_symbol"], row["is_included"]) for row in choice] == [
        (day, symbol, True)
    ]


def test_a_contract_without_a_definition_is_named(
    market_lake: Lake, included_day: tuple[str, dt.date], tmp_path: Path
) -> None:
    """A lake with no landed history and a feed without the day's definitions: the
    contract's tick size is unknown."""
    symbol, day = included_day
    mbo = [path for path in market_lake.raw_day_files(day, ("ES.FUT",)) if ".mbo." in path.name]
    feed = DbnReplay(mbo, None, day)
    session = LiveSession(
        Lake(tmp_path / "empty"), LiveContract(symbol, day), live_settings(), lambda *_: None
    )

    def run() -> None:
        for batch in feed:
            if not isinstance(batch, ClockTick):
                session.apply(batch, feed.symbology[batch.source])

    with pytest.raises(LiveError) as raised:
        run()
    assert f"records of {symbol} before its definition" in str(raised.value)
    assert "land the ES.FUT definition file of that day" in str(raised.value)


def test_live_needs_the_warehouse(
    market_lake: Lake,
    included_day: tuple[str, dt.date],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    symbol, day = included_day
    mbo = [path for path in market_lake.raw_day_files(day, ("ES.FUT",)) if ".mbo." in path.name]
    argv = ["live", "--lake", str(tmp_path / "empty"), "--symbol", symbol]
    assert main([*argv, "--replay", *map(str, mbo)]) == 1
    assert "no warehouse; live reads its earlier sessions" in capsys.readouterr().err


def test_bad_arguments_are_named(
    market_lake: Lake, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lake = str(market_lake.root)
    files = sorted((market_lake.raw / "ES.FUT" / "mbo").glob("*.dbn.zst"))
    assert main(["live", "--lake", lake, "--replay", str(files[0]), "--speed", "0"]) == 1
    assert "--speed '0': a positive number or max" in capsys.readouterr().err
    assert main(["live", "--lake", lake, "--replay", *map(str, files[:2])]) == 1
    assert "must cover one day" in capsys.readouterr().err
    assert main(["live", "--lake", lake, "--replay", str(tmp_path / "nothing.dbn.zst")]) == 1
    assert "nothing.dbn.zst" in capsys.readouterr().err


def test_a_paced_replay_waits_for_each_record_at_its_speed() -> None:
    """At 10x, a record 5 s of market time after the first is due 0.5 s after it."""
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pace = Pace(10.0, clock=lambda: now[0], sleep=sleep)
    pace.wait(1_000_000_000)
    pace.wait(6_000_000_000)
    assert slept == [pytest.approx(0.5)]
    now[0] += 2.0  # running late: no wait
    pace.wait(7_000_000_000)
    assert len(slept) == 1


@pytest.fixture(scope="module")
def through_databento_path(
    market_lake: Lake,
    included_day: tuple[str, dt.date],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[LiveRun, Path, Path]:
    """The day's records as one gateway session delivers them (databento_dbn objects, symbols
    mapped into one map), read by a thread and drained as they became available, through
    everything after the subscription call: (the run, the emitted tables, the raw files it
    captured)."""
    symbol, day = included_day
    clock = [0]
    paths = market_lake.raw_day_files(day)
    sessions: list[GatewaySession] = []

    def subscribe() -> GatewaySession:
        sessions.append(GatewaySession(subscription_before(paths, day), clock, day_end(day)))
        return sessions[-1]

    feed = GatewayFeed(subscribe, day_start_ns(day), day_end(day), clock_ns=lambda: clock[0])
    for path in market_lake.raw_day_files(day):
        feed.symbology[LIVE_SOURCE].insert_metadata(db.DBNStore.from_file(path).metadata)
    folder = tmp_path_factory.mktemp("databento")
    out, raw = folder / "emit", folder / "captured"
    run = run_feed(market_lake, feed, feed.symbology, day, symbol, out, capture=raw)
    assert [session.stopped for session in sessions] == [True]
    assert run.gaps == []
    return run, out, raw


def test_the_databento_live_path_reproduces_the_warehouses_rows(
    market_lake: Lake,
    included_day: tuple[str, dt.date],
    through_databento_path: tuple[LiveRun, Path, Path],
) -> None:
    _, day = included_day
    run, out, raw = through_databento_path
    assert run.rows["engine_options_quotes_1s"] > 1000
    assert len(list(raw.rglob("*.dbn.zst"))) == 5
    for table in ENGINE_TABLES + SQL_TABLES:
        _, only_live, only_warehouse = live_and_warehouse_rows(market_lake, out, table, day)
        assert (only_live, only_warehouse) == (0, 0), table


def test_a_missing_api_key_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABENTO_API_KEY", raising=False)
    assert main(["live", "--lake", str(tmp_path), "--databento"]) == 1
    assert "no Databento API key: set DATABENTO_API_KEY" in capsys.readouterr().err


def test_what_live_received_lands_as_the_same_bronze(
    market_lake: Lake,
    included_day: tuple[str, dt.date],
    through_databento_path: tuple[LiveRun, Path, Path],
    tmp_path: Path,
) -> None:
    """Nothing seen live is lost: the day captured from the Live path, ingested into a new
    lake, is the original day's bronze, every table, row for row."""
    _, day = included_day
    captured = Lake(tmp_path / "lake")
    shutil.copytree(through_databento_path[2], captured.raw)
    ingest(captured.raw, captured, workers=1)
    tables = sorted(
        path.name
        for path in (captured.root / "bronze").iterdir()
        if path.is_dir() and not path.name.startswith("_")
    )
    assert tables == [
        "futures_definitions", "futures_mbo", "options_definitions", "options_mbo",
        "options_statistics",
    ]  # fmt: skip
    connection = duckdb.connect()
    try:
        for table in tables:

            def rows(lake: Lake, table: str = table) -> pa.Table:
                return connection.sql(
                    f"select * from {lake.read_bronze_sql(table)} where dt = DATE '{day}' "
                    "order by symbol, record_index"
                ).to_arrow_table()

            original = rows(market_lake)
            assert original.num_rows > 0, table
            assert rows(captured).equals(original), table
    finally:
        connection.close()


def test_a_pace_starts_at_its_start() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pace = Pace(2.0, clock=lambda: now[0], sleep=sleep, start_ns=10_000_000_000)
    pace.wait(1_000_000_000)
    pace.wait(9_000_000_000)  # catching up: no wait, the clock has not started
    assert slept == []
    assert not pace.started()
    pace.wait(10_000_000_000)
    pace.wait(12_000_000_000)
    assert slept == [pytest.approx(1.0)]
    assert pace.origin_ns == 10_000_000_000


def test_the_project_digest_changes_with_what_dbt_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live reuses `dbt compile`'s output, and the benchmarks their built markets, while no
    file dbt reads has changed."""
    (tmp_path / "models").mkdir()
    (tmp_path / "dbt_project.yml").write_text("name: x\n")
    model = tmp_path / "models" / "m.sql"
    model.write_text("select 1")
    monkeypatch.setattr(project_module, "PROJECT_ROOT", tmp_path)
    first = project_digest()
    assert project_digest() == first
    model.write_text("select 2")
    assert project_digest() != first
    (tmp_path / "models" / "__pycache__").mkdir()
    (tmp_path / "models" / "__pycache__" / "m.pyc").write_bytes(b"\0")
    model.write_text("select 1")
    assert project_digest() == first


def test_the_layers_of_a_second_run_once_the_options_have_it_too(
    market_lake: Lake, included_day: tuple[str, dt.date]
) -> None:
    """A stage runs once everything it reads has a second: the options' rows of a second
    are complete just after the future's, and the layers of that second (vacuum, bands, the
    gamma surface) are computed together once they are, not a step later."""
    symbol, day = included_day
    opening = warehouse(
        market_lake, f"select session_window_start from silver.session_calendar where dt = '{day}'"
    )[0][0]
    start = int(opening.replace(tzinfo=dt.UTC).timestamp()) * 1_000_000_000
    second = 1_000_000_000
    layers = open_live_layers(market_lake, LiveContract(symbol, day), lambda *_: None, second)
    stages = layers.stages
    try:
        connection = duckdb.connect(str(market_lake.duckdb_path), read_only=True)

        def add(tables: tuple[str, ...], lower: int, upper: int) -> None:
            """The warehouse's rows of [lower, upper) as the engine's rows live."""
            for table in tables:
                layers.tables.add(
                    table,
                    connection.sql(
                        f"select * from silver.{table} where dt = '{day}' and window_start >= "
                        f"make_timestamp({lower // 1000}) and window_start < "
                        f"make_timestamp({upper // 1000}) order by all"
                    ).to_arrow_table(),
                )

        def step(futures_ns: int, options_ns: int) -> None:
            stages.advance({"futures_engine": futures_ns, "options_engine": options_ns})
            stages.catch_up()

        futures = ("engine_book_snapshot_1s", "engine_depth_and_flow_1s")
        options = ("engine_options_quotes_1s", "engine_gex_by_strike_1s", "engine_zero_gamma_1s")
        try:
            add(futures + options, stages.day_end_ns - 86_400 * second, start)
            step(start, start)
            add(futures, start, start + second)
            step(start + second, start)
            assert stages.until["physics_bands_1s"] == start  # waits for the options
            assert stages.until["gex_surface_1s"] == start
            add(options, start, start + second)
            step(start + second, start + second)
            assert stages.until["gex_surface_1s"] == start + second
            assert stages.until["physics_bands_1s"] == start + second
            rows = layers.tables.rows("gex_surface_1s")
            window = pa.compute.cast(rows["window_start"], pa.int64())
            assert pa.compute.sum(pa.compute.equal(window, start // 1000)).as_py() > 0
        finally:
            connection.close()
    finally:
        layers.close()


def test_a_live_run_keeps_its_startup_objects_out_of_the_cyclic_collector(
    market_lake: Lake, included_day: tuple[str, dt.date], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While records flow, what was made before them is frozen (a full collection went over
    it all, stopping every thread for 120-250 ms); when the run ends it is collected again."""
    symbol, day = included_day
    frozen: list[int] = []
    consume = live_command._FeedRun.consume

    def counting(run: live_command._FeedRun, *args: object) -> LiveRun:
        frozen.append(gc.get_freeze_count())
        return consume(run, *args)

    monkeypatch.setattr(live_command._FeedRun, "consume", counting)
    opening = warehouse(
        market_lake, f"select session_window_start from silver.session_calendar where dt = '{day}'"
    )[0][0]
    stop = int(opening.replace(tzinfo=dt.UTC).timestamp()) * 1_000_000_000
    feed = DbnReplay(market_lake.raw_day_files(day, ("ES.FUT",)), None, day, 0, stop)
    run_feed(market_lake, feed, feed.symbology, day, symbol, None)
    assert len(frozen) == 1
    assert frozen[0] > 10_000
    assert gc.get_freeze_count() == 0


def test_a_view_no_live_model_reads_is_emitted_not_stored(
    market_lake: Lake, included_day: tuple[str, dt.date]
) -> None:
    """options_quotes_1s is a view in the warehouse that no live model reads: live emits its
    rows and shows it as a view over the live rows, without a second copy of them."""
    symbol, day = included_day
    opening = warehouse(
        market_lake, f"select session_window_start from silver.session_calendar where dt = '{day}'"
    )[0][0]
    start = int(opening.replace(tzinfo=dt.UTC).timestamp()) * 1_000_000_000
    emitted: dict[str, int] = {}

    def emit(table: str, rows: pa.Table) -> None:
        emitted[table] = emitted.get(table, 0) + rows.num_rows

    layers = open_live_layers(market_lake, LiveContract(symbol, day), emit, 3600 * 10**9)
    try:
        rows = warehouse(
            market_lake,
            f"select count(*) from silver.engine_options_quotes_1s where dt = '{day}' "
            f"and window_start < make_timestamp({start // 1000})",
        )[0][0]
        connection = duckdb.connect(str(market_lake.duckdb_path), read_only=True)
        try:
            layers.tables.add(
                "engine_options_quotes_1s",
                connection.sql(
                    f"select * from silver.engine_options_quotes_1s where dt = '{day}' and "
                    f"window_start < make_timestamp({start // 1000})"
                ).to_arrow_table(),
            )
        finally:
            connection.close()
        layers.stages.advance({"futures_engine": start, "options_engine": start})
        layers.stages.finish()
        assert emitted["options_quotes_1s"] == rows > 0
        cursor = layers.tables.catalog_cursor()
        stored = cursor.execute(
            "select table_catalog, table_type from information_schema.tables "
            "where table_name = 'options_quotes_1s' order by all"
        ).fetchall()
        assert ("memory", "BASE TABLE") not in stored
        assert ("spymaster", "VIEW") in stored
        shown = cursor.execute(
            f"select count(*) from silver.options_quotes_1s where dt = '{day}'"
        ).fetchall()[0][0]
        assert shown == rows
    finally:
        layers.close()
