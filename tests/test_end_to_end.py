"""End to end on a small generated market: simulate, ingest, dbt build, summary."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import databento as db
import databento_dbn as dbn
import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
import zstandard

from foundation.exchange_time import day_start_ns
from foundation.lake import Lake
from foundation.project import PROJECT_ROOT, dbt_command
from gex.black76 import MINUTES_PER_YEAR
from ingest.landing import ingest
from spymaster.cli import main
from spymaster.warehouse_diff import compare_rows
from synthetic_market.options_book import Smile
from tests.markets import MARKET_SESSIONS, copied_market, dbt, dbt_target, warehouse

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def market_lake(market_lake: Lake, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """This module's own copy of the market: it rebuilds models and changes files, which the
    other modules, reading the market meanwhile on the other xdist worker, must not see."""
    return copied_market(market_lake, tmp_path_factory.mktemp("market-copy"))


SESSIONS = MARKET_SESSIONS


def test_selection_follows_the_roll_of_the_generated_market(market_lake: Lake) -> None:
    rows = warehouse(
        market_lake,
        "select selected_symbol, exclusion_reason from silver.contract_day_selection order by dt",
    )
    symbols = [symbol for symbol, _ in rows]
    assert len(rows) == SESSIONS
    assert symbols[:3] == ["ESH4"] * 3
    assert symbols[3:] == ["ESM4"] * (SESSIONS - 3)
    reasons = [reason for _, reason in rows]
    assert reasons[1:5] == ["roll_boundary"] * 4
    assert reasons[0] is None
    assert reasons[5:] == [None] * (SESSIONS - 5)


def raw_records(folder: Path, instruments: set[int] | None = None) -> Counter[int]:
    """MBO records per instrument in the raw files under `folder` (read with databento), of
    `instruments` only when given."""
    counts: Counter[int] = Counter()
    for path in sorted(folder.rglob("*.mbo.dbn.zst")):
        ids, n = np.unique(
            db.DBNStore.from_file(path).to_ndarray()["instrument_id"], return_counts=True
        )
        counts.update({int(i): int(c) for i, c in zip(ids, n, strict=True)})
    return counts if instruments is None else Counter({i: counts[i] for i in instruments})


def test_every_layer_is_queryable(market_lake: Lake) -> None:
    """Bronze holds every raw MBO record of an outright future (not the calendar spread's)
    and of every option, per instrument."""
    outrights = set()
    for path in (market_lake.raw / "ES.FUT").rglob("*.definition.dbn.zst"):
        definitions = db.DBNStore.from_file(path).to_ndarray()
        futures = definitions["instrument_class"] == b"F"
        outrights |= {int(i) for i in definitions["instrument_id"][futures]}
    for table, folder, instruments in (
        ("futures_mbo", "ES.FUT", outrights),
        ("options_mbo", "ES.OPT", None),
    ):
        expected = raw_records(market_lake.raw / folder, instruments)
        landed = warehouse(
            market_lake, f"select instrument_id, count(*) from bronze.{table} group by all"
        )
        assert Counter(dict(landed)) == expected, table
        assert sum(expected.values()) > 10_000, table
    oi = warehouse(
        market_lake, "select count(*) from bronze.options_statistics where stat_type = 9"
    )
    assert oi == [(150 * SESSIONS,)]


def test_surfaces_cover_every_second_of_every_included_day(market_lake: Lake) -> None:
    included = warehouse(
        market_lake, "select count(*) from silver.contract_day_selection where is_included"
    )[0][0]
    per_day = warehouse(
        market_lake,
        "select dt, count(*), count(*) filter (where book_valid), "
        "min(window_start) filter (where book_valid), "
        "max(window_start) filter (where not book_valid) from silver.book_snapshot_1s "
        "group by dt order by dt",
    )
    assert len(per_day) == included >= 3
    # the contract's snapshot carries no F_LAST (in a parent-symbol file it stands only on the
    # whole snapshot's last record, here the spread's): its book is known from its first live
    # event on, and from then on every second is valid
    first_live = dict(
        warehouse(
            market_lake,
            "select mbo.dt, min(mbo.ts_recv) from bronze.futures_mbo as mbo "
            "join silver.contract_day_selection as selection "
            "on mbo.dt = selection.dt and mbo.symbol = selection.selected_symbol "
            "where selection.is_included and not mbo.is_snapshot group by mbo.dt",
        )
    )
    for day, rows, valid, first_valid, last_invalid in per_day:
        known = (first_live[day] - day_start_ns(day)) // 1_000_000_000
        assert rows == 86_400
        assert valid == 86_400 - known
        assert known < 60
        assert last_invalid is None or last_invalid < first_valid
    depth = warehouse(
        market_lake,
        "select count(distinct dt), min(rel_ticks), max(rel_ticks), sum(fill_qty) > 0, "
        "bool_and(window_valid) from silver.depth_and_flow_1s",
    )
    days, lowest, highest, has_fills, all_valid = depth[0]
    assert (days, has_fills, all_valid) == (included, True, True)
    assert -200 <= lowest < -20
    assert 20 < highest <= 200


# incremental engine tables: a day is deleted and inserted again only when it is rebuilt
ENGINE_TABLES = ("engine_book_snapshot_1s",)
# engine models whose rows stay in the lake (their folder under <lake>/engine), read by views
ENGINE_PARTITION_MODELS = {
    "engine_depth_and_flow_partitions": "depth_and_flow_1s",
    "engine_options_book_partitions": "options_book_1s",
    "engine_options_quote_partitions": "options_quotes_1s",
    "engine_gex_by_strike_partitions": "gex_by_strike_1s",
    "engine_zero_gamma_partitions": "zero_gamma_1s",
}


def engine_files(lake: Lake, folder: str) -> dict[str, tuple[int, bytes]]:
    """Each file of an engine folder (data files and manifests): its modification time and
    its bytes."""
    root = lake.root / "engine" / folder
    return {
        str(path.relative_to(root)): (path.stat().st_mtime_ns, path.read_bytes())
        for path in sorted(root.glob("*/*/*"))
    }


def test_a_second_build_replays_nothing(market_lake: Lake) -> None:
    """Nothing changed, so no day is computed again: the incremental engine tables delete and
    re-insert no day (the rows keep their row ids), and no partition kept in the lake is
    written again (its files keep their modification times)."""

    def identity() -> tuple[list[tuple[object, ...]], list[dict[str, tuple[int, bytes]]]]:
        return [
            warehouse(market_lake, f"select count(*), max(rowid) from silver.{table}")[0]
            for table in ENGINE_TABLES
        ], [engine_files(market_lake, folder) for folder in ENGINE_PARTITION_MODELS.values()]

    before = identity()
    assert all(before[1])
    dbt(market_lake, "build", "--select", *ENGINE_TABLES, *ENGINE_PARTITION_MODELS)
    assert identity() == before


def test_each_futures_day_is_replayed_once_for_both_surfaces(market_lake: Lake) -> None:
    """The book snapshot model's replay of a day writes the day's depth-and-flow partition to
    the lake (with the day's build fingerprint); the depth-and-flow partitions model lists it
    without replaying the day (test_a_second_build_replays_nothing). Without it (the engine
    folder removed) that model replays the day itself: the same bytes, the same rows."""
    folder = market_lake.root / "engine" / "depth_and_flow_1s"
    written = {
        (manifest["symbol"], manifest["dt"], manifest["build_fingerprint"])
        for manifest in (json.loads(p.read_text()) for p in folder.glob("*/*/_manifest.json"))
    }
    built = "select distinct symbol, dt::varchar, build_fingerprint from silver.{}"
    assert written == set(warehouse(market_lake, built.format("engine_depth_and_flow_1s")))
    assert written == set(warehouse(market_lake, built.format("engine_book_snapshot_1s")))

    def rows() -> list[tuple[object, ...]]:
        return warehouse(
            market_lake, "select count(*), sum(hash(d)) from silver.engine_depth_and_flow_1s d"
        )

    before, files = rows(), engine_files(market_lake, "depth_and_flow_1s")
    shutil.rmtree(folder)
    try:
        dbt(market_lake, "run", "--select", "engine_depth_and_flow_partitions")
        assert rows() == before
        assert {name: content for name, (_, content) in files.items()} == {
            name: content
            for name, (_, content) in engine_files(market_lake, "depth_and_flow_1s").items()
        }
    finally:  # the market as the other tests know it
        if not folder.exists():
            dbt(market_lake, "run", "--select", "engine_depth_and_flow_partitions")


def test_a_partition_changed_in_the_lake_fails_its_views_test(market_lake: Lake) -> None:
    """The engine views' rows are checked against the partitions' manifests (the key is
    unique by construction, checked on write): a data file rewritten with a row less fails
    rows_match_partitions."""
    [(symbol, day, data_file)] = warehouse(
        market_lake,
        "select symbol, dt::varchar, data_file from silver.engine_options_quote_partitions "
        "order by dt limit 1",
    )
    path = market_lake.root / "engine" / "options_quotes_1s" / f"symbol={symbol}/dt={day}"
    original = (path / data_file).read_bytes()
    test = ("test", "--select", "test_name:rows_match_partitions")
    dbt(market_lake, *test)
    try:
        rows = pq.read_table(path / data_file)
        pq.write_table(rows.slice(1), path / data_file)
        failed = subprocess.run(
            dbt_command(test), env=market_lake.environment(), cwd=PROJECT_ROOT,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert failed.returncode == 1, failed.stdout[-3000:]
        assert "FAIL 1 rows_match_partitions_engine_options_quotes_1s" in failed.stdout
    finally:
        (path / data_file).write_bytes(original)
    dbt(market_lake, *test)


def test_the_options_engine_sums_exposure_and_zero_gamma_as_it_computes_the_quotes(
    market_lake: Lake,
) -> None:
    """The options engine writes each day's zero-gamma levels and gamma exposure by strike to
    the lake's engine partitions as it computes the quotes (fingerprinted as their partitions
    models fingerprint the day); those models list them and the views read them. Without them
    (the engine folder removed) each partitions model sums the day's quotes read back from the
    warehouse itself: the same rows (in other row groups: the engine writes a few seconds at a
    time)."""
    sums = {
        "zero_gamma_1s": ("engine_zero_gamma_partitions", "engine_zero_gamma_1s"),
        "gex_by_strike_1s": ("engine_gex_by_strike_partitions", "engine_gex_by_strike_1s"),
    }
    listed = "select symbol, dt::varchar, build_fingerprint from silver.{}"
    for folder_name, (partitions, view) in sums.items():
        folder = market_lake.root / "engine" / folder_name
        written = {
            (manifest["symbol"], manifest["dt"], manifest["build_fingerprint"])
            for manifest in (json.loads(p.read_text()) for p in folder.glob("*/*/_manifest.json"))
        }
        assert written == set(warehouse(market_lake, listed.format(partitions)))
        assert written == set(
            warehouse(market_lake, f"select distinct * from ({listed})".format(view))
        )

    def rows() -> list[list[tuple[object, ...]]]:
        return [
            warehouse(market_lake, f"select count(*), sum(hash(t)) from silver.{view} t")
            for _, view in sums.values()
        ]

    before = rows()
    for folder_name in sums:
        shutil.rmtree(market_lake.root / "engine" / folder_name)
    try:
        dbt(market_lake, "run", "--select", *(partitions for partitions, _ in sums.values()))
        assert rows() == before
    finally:  # the market as the other tests know it
        for folder_name, (partitions, _) in sums.items():
            if not (market_lake.root / "engine" / folder_name).exists():
                dbt(market_lake, "run", "--select", partitions)


def test_the_options_engine_replays_a_day_whose_options_book_the_lake_lacks(
    market_lake: Lake,
) -> None:
    """The options' replay (engine_options_book_partitions, beside the futures' replay)
    writes each day's options book by second to the lake, and the quotes are computed from
    it. Without it (the engine folder removed) the options engine replays the day and writes
    it itself: the same book and quote files, byte for byte."""
    book = market_lake.root / "engine" / "options_book_1s"
    written = {
        (manifest["symbol"], manifest["dt"])
        for manifest in (json.loads(p.read_text()) for p in book.glob("*/*/_manifest.json"))
    }
    listed = "select symbol, dt::varchar from silver.engine_options_quote_partitions"
    assert written == set(warehouse(market_lake, listed))
    before = [
        engine_files(market_lake, folder) for folder in ("options_book_1s", "options_quotes_1s")
    ]
    shutil.rmtree(book)
    shutil.rmtree(market_lake.root / "engine" / "options_quotes_1s")
    dbt(market_lake, "run", "--select", "engine_options_quote_partitions")
    after = [
        engine_files(market_lake, folder) for folder in ("options_book_1s", "options_quotes_1s")
    ]
    assert [{name: content for name, (_, content) in files.items()} for files in after] == [
        {name: content for name, (_, content) in files.items()} for files in before
    ]


def test_every_sql_table_is_the_same_bits_whatever_the_thread_count(market_lake: Lake) -> None:
    """Idempotency: the same data gives the same tables. Each SQL table model runs again with 16
    threads (the build used 2), so rows reach each aggregate in another order: a float
    aggregation that is not order-stable gives other last bits, and a row differs."""
    dbt(market_lake, "compile", "--select", "tag:silver", "tag:gold")
    manifest = json.loads((dbt_target() / "manifest.json").read_text())
    models = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["language"] == "sql"
        and node["config"]["materialized"] in ("table", "day_partitioned")
        and "compiled_code" in node
    ]
    assert len(models) > 20
    connection = duckdb.connect(str(market_lake.duckdb_path), read_only=True)
    try:
        connection.execute("set threads = 16")
        differing = {}
        for node in models:
            connection.execute(f"create or replace temp table rerun as {node['compiled_code']}")
            described = connection.execute("select * from rerun limit 0").description
            columns = ", ".join(f'"{column[0]}"' for column in described)
            _, only_rerun, only_stored = compare_rows(
                connection, "select * from rerun", f"select * from {node['relation_name']}", columns
            )
            differing[node["name"]] = only_rerun + only_stored
    finally:
        connection.close()
    assert {name: n for name, n in differing.items() if n} == {}


def test_calibration_uses_only_earlier_sessions(market_lake: Lake) -> None:
    sessions = [
        day
        for (day,) in warehouse(
            market_lake,
            "select dt from silver.contract_day_selection where is_included order by dt",
        )
    ]
    calibrated = warehouse(
        market_lake,
        "select dt, min(sessions_used), max(sessions_used), count(*) "
        "from gold.physics_norm_calibration group by dt order by dt",
    )
    assert [day for day, *_ in calibrated] == sessions[1:]
    assert [(low, high) for _, low, high, _ in calibrated] == [
        (min(i, 5), min(i, 5)) for i in range(1, len(sessions))
    ]
    first_day_scores = warehouse(
        market_lake,
        f"select count(vacuum_score) from gold.vacuum_score_1s where dt = '{sessions[0]}'",
    )
    assert first_day_scores == [(0,)]
    later = warehouse(
        market_lake,
        f"select count(*), count(side_score), min(side_score), max(side_score) "
        f"from gold.physics_bands_1s where dt = '{sessions[-1]}'",
    )
    rows, scored, lowest, highest = later[0]
    assert rows > 10_000
    assert scored > rows / 2
    assert 0 <= lowest <= highest <= 1


def included_days(lake: Lake) -> list[tuple[dt.date, str]]:
    return warehouse(
        lake,
        "select dt, selected_symbol from silver.contract_day_selection where is_included "
        "order by dt",
    )


def test_calibration_percentiles_interpolate_the_earlier_sessions_pooled_values(
    market_lake: Lake,
) -> None:
    """Each percentile is located by rank in the pooled value counts of the K earlier
    sessions; recomputed here from their rows, sorted: position (n - 1) q, between the values
    at its floor and ceil ranks, lo + (hi - lo) d, to the bit. (This market's percentiles fall
    on repeated values; the model's unit test interpolates between two.)"""
    metrics = [
        "pull_add_log",
        "pull_intensity_rest_log1p",
        "erosion_ratio_log1p",
        "pull_add_log_d2",
        "wall_strength_log",
    ]
    sessions = [
        day
        for (day,) in warehouse(
            market_lake,
            "select dt from silver.contract_day_selection where is_included order by dt",
        )
    ]
    connection = duckdb.connect(str(market_lake.duckdb_path), read_only=True)
    try:
        values = {
            (day, metric): connection.execute(
                f"select v.{metric} from silver.vacuum_surface_1s as v "
                "join silver.session_calendar as c on v.dt = c.dt "
                "and v.window_start >= c.session_window_start "
                "and v.window_start < c.session_window_end "
                "where v.window_valid and v.dt = ?",
                [day],
            ).fetchnumpy()[metric]
            for day in sessions
            for metric in metrics
        }
    finally:
        connection.close()

    def percentile(pooled: np.ndarray, level: float) -> float:
        position = (len(pooled) - 1) * level
        lower, upper = math.floor(position), math.ceil(position)
        lo, hi = float(pooled[lower]), float(pooled[upper])
        return lo if lower == upper else lo + (hi - lo) * (position - lower)

    expected = []
    for i, day in enumerate(sessions[1:], start=1):
        history = sessions[max(0, i - 5) : i]
        for metric in metrics:
            pooled = np.sort(np.concatenate([values[earlier, metric] for earlier in history]))
            q05, q95 = percentile(pooled, 0.05), percentile(pooled, 0.95)
            expected.append((day, metric, q05.hex(), q95.hex(), len(history)))
    model = [
        (day, metric, q05.hex(), q95.hex(), used)
        for day, metric, q05, q95, used in warehouse(
            market_lake,
            "select dt, metric_name, q05, q95, sessions_used from gold.physics_norm_calibration",
        )
    ]
    assert len(expected) >= 3 * len(metrics)  # three calibrated sessions at least
    assert sorted(model) == sorted(expected)


def test_implied_volatilities_recover_the_generators_smile(market_lake: Lake) -> None:
    quotes = duckdb.connect(str(market_lake.duckdb_path), read_only=True)
    try:
        rows = quotes.sql(
            "select strike_price, futures_spot, minutes_to_expiry, implied_volatility, is_0dte "
            "from silver.options_quotes_1s where iv_status = 'ok' and second(window_start) = 0"
        ).fetchnumpy()
        statuses = dict(
            quotes.sql(
                "select iv_status, count(*) from silver.options_quotes_1s group by all"
            ).fetchall()
        )
    finally:
        quotes.close()
    assert statuses["ok"] > 0.9 * sum(statuses.values()), statuses
    log_moneyness = np.log(rows["strike_price"] / rows["futures_spot"])
    years = rows["minutes_to_expiry"] / MINUTES_PER_YEAR
    error = np.abs(rows["implied_volatility"] - Smile().volatility(log_moneyness, years))
    later = ~rows["is_0dte"] & (np.abs(log_moneyness) < 0.01)
    zero_dte = rows["is_0dte"] & (np.abs(log_moneyness) < 0.005)
    assert later.sum() > 1000
    assert zero_dte.sum() > 500
    # quotes are the model value rounded to ticks around a moving future: small errors
    assert np.median(error[later]) < 0.001
    assert np.percentile(error[later], 99) < 0.01
    assert np.median(error[zero_dte]) < 0.005
    assert np.percentile(error[zero_dte], 90) < 0.02


def test_open_interest_matches_the_statistics_files(market_lake: Lake) -> None:
    """Each option's open interest is its latest statistic up to the day. An option listed
    during the session (first defined after the day's statistics came) had no open contracts:
    0. One defined on an earlier day without a statistic is unknown."""
    listed_days = 0
    for day, symbol in included_days(market_lake):
        expected: dict[int, int | None] = {}
        for path in sorted((market_lake.raw / "ES.OPT" / "statistics").glob("*.dbn.zst")):
            if path.name > f"glbx-mdp3-{day:%Y%m%d}.statistics.dbn.zst":
                continue
            records = db.DBNStore.from_file(path).to_ndarray()
            for r in records[records["stat_type"] == int(dbn.StatType.OPEN_INTEREST)]:
                expected[int(r["instrument_id"])] = int(r["quantity"])
        published = int(records["ts_recv"].max())  # the day's own file came last
        first_defined = warehouse(
            market_lake,
            "select instrument_id, min(ts_recv) from bronze.options_definitions "
            "where symbol = ? and dt <= ? group by instrument_id",
            [symbol, day],
        )
        listed = [i for i, first in first_defined if first > published]
        assert not set(listed) & set(expected)
        for instrument, first in first_defined:
            expected.setdefault(instrument, 0 if first > published else None)
        listed_days += bool(listed)
        landed = dict(
            warehouse(
                market_lake,
                "select distinct instrument_id, open_interest from silver.options_quotes_1s "
                f"where dt = '{day}' and symbol = '{symbol}'",
            )
        )
        assert len(landed) >= 100, day  # the chain listed that day
        assert set(landed.items()) <= set(expected.items()), day
        assert sum(landed.get(i) == 0 for i in listed) >= len(listed) // 2, day
    assert listed_days >= 2


def test_gex_surface_grid_walls_and_zero_gamma(market_lake: Lake) -> None:
    day, _ = included_days(market_lake)[-1]
    moment = f"timestamp '{day} 15:00:00'"
    surface = warehouse(
        market_lake,
        "select strike_price, spot_price, net_gex, call_wall, put_wall, zero_gamma_level, "
        "dealer_sign_policy from silver.gex_surface_1s "
        f"where dt = '{day}' and window_start = {moment} order by strike_price",
    )
    assert len(surface) == 21
    spot = surface[0][1]
    assert surface[10][0] == 5 * round(spot / 5)
    assert {row[6] for row in surface} == {"calls 1, puts -1"}
    by_strike = warehouse(
        market_lake,
        "select strike_price, "
        "sum(gex) filter (where option_right = 'C'), -sum(gex) filter (where option_right = 'P') "
        f"from silver.options_quotes_1s where dt = '{day}' and window_start = {moment} "
        "group by strike_price",
    )
    call_wall = max(by_strike, key=lambda row: (abs(row[1] or 0.0), -row[0]))[0]
    put_wall = max(by_strike, key=lambda row: (abs(row[2] or 0.0), -row[0]))[0]
    assert (surface[0][3], surface[0][4]) == (call_wall, put_wall)
    net = {strike: (call or 0.0) + (put or 0.0) for strike, call, put in by_strike}
    assert [row[2] for row in surface] == pytest.approx([net.get(row[0], 0.0) for row in surface])
    levels = warehouse(
        market_lake,
        "select count(*), count(zero_gamma_level), "
        "max(abs(zero_gamma_level - spot_price)) from silver.gex_surface_1s",
    )[0]
    assert levels[1] > 0
    assert levels[2] <= 100


def test_contracted_tables_check_their_constraints_as_they_are_written(market_lake: Lake) -> None:
    """The not-null and check constraints the models' contracts declare are the warehouse's
    tables' own (DuckDB enforces them as dbt writes each table; no data test runs them
    again), and a row that breaks one is refused with the table and the rule named."""
    declared: Counter[tuple[str, str]] = Counter()
    for path in (PROJECT_ROOT / "models").rglob("*.yml"):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            for owner in (model, *model.get("columns", [])):
                for constraint in owner.get("constraints", []):
                    declared[(model["name"], constraint["type"])] += 1
    enforced = warehouse(
        market_lake,
        "select table_name, lower(replace(constraint_type, ' ', '_')), count(*) "
        "from duckdb_constraints() where constraint_type in ('NOT NULL', 'CHECK') "
        "and schema_name in ('silver', 'gold') group by all",
    )
    assert Counter({(table, kind): count for table, kind, count in enforced}) == declared
    assert declared[("contract_day_selection", "check")] >= 3
    connection = duckdb.connect()
    connection.execute(f"attach '{market_lake.duckdb_path}' as market (read_only)")
    [(ddl,)] = connection.execute(
        "select sql from duckdb_tables() "
        "where database_name = 'market' and table_name = 'contract_day_selection'"
    ).fetchall()
    connection.execute("create schema silver")
    connection.execute(ddl)  # the warehouse's table, empty, in memory
    copy = (
        "insert into silver.contract_day_selection select * replace ({}) "
        "from market.silver.contract_day_selection limit 1"
    )
    connection.execute(copy.format("dt as dt"))
    with pytest.raises(
        duckdb.ConstraintException, match=r"NOT NULL constraint failed: contract_day_selection\.dt"
    ):
        connection.execute(copy.format("null::date as dt"))
    with pytest.raises(
        duckdb.ConstraintException,
        match=r'CHECK constraint failed on table "contract_day_selection" .*\(exclusion_reason IN',
    ):
        connection.execute(copy.format("'expired' as exclusion_reason, false as is_included"))


def test_every_model_and_column_is_documented(market_lake: Lake) -> None:
    """dbt docs: every model, source and seed has a description, and so has every column the
    warehouse actually holds; the lineage runs from the bronze sources to the gold tables."""
    dbt(market_lake, "docs", "generate")
    manifest = json.loads((dbt_target() / "manifest.json").read_text())
    catalog = json.loads((dbt_target() / "catalog.json").read_text())
    undocumented = []
    for unique_id, node in {**manifest["nodes"], **manifest["sources"]}.items():
        if node["resource_type"] not in {"model", "seed", "source"}:
            continue
        if not node["description"].strip():
            undocumented.append(unique_id)
        documented = {
            name for name, column in node["columns"].items() if column["description"].strip()
        }
        entry = catalog["nodes"].get(unique_id) or catalog["sources"].get(unique_id)
        if entry is not None:
            missing = {name.lower() for name in entry["columns"]} - documented
            undocumented += [f"{unique_id}.{name}" for name in sorted(missing)]
    assert undocumented == []
    parents = manifest["parent_map"]

    def ancestors(unique_id: str) -> set[str]:
        found: set[str] = set()
        pending = [unique_id]
        while pending:
            for parent in parents.get(pending.pop(), []):
                if parent not in found:
                    found.add(parent)
                    pending.append(parent)
        return found

    lineage = ancestors("model.spymaster.physics_norm_calibration")
    assert "source.spymaster.bronze.futures_mbo" in lineage
    assert "model.spymaster.engine_depth_and_flow_1s" in lineage
    options_lineage = ancestors("model.spymaster.gex_surface_1s")
    assert {
        "source.spymaster.bronze.options_mbo",
        "source.spymaster.bronze.options_statistics",
        "model.spymaster.engine_zero_gamma_1s",
        "model.spymaster.engine_gex_by_strike_1s",
    } <= options_lineage
    trigger_lineage = ancestors("model.spymaster.trigger_vectors")
    assert {
        "model.spymaster.depth_and_flow_1s",
        "model.spymaster.gex_surface_1s",
        "model.spymaster.session_levels",
        "seed.spymaster.session_level_definitions",
    } <= trigger_lineage


def test_summary_prints_tables_and_selection(
    market_lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["summary", "--lake", str(market_lake.root)]) == 0
    printed = capsys.readouterr().out
    assert "bronze.futures_mbo" in printed
    assert "silver.contract_day_selection" in printed
    assert "2024-03-04  ESH4" in printed
    assert "roll_boundary" in printed
    assert "gamma exposure per included day" in printed
    assert "triggers and outcomes at the primary horizon" in printed
    assert "walk-forward retrieval of P(BREAK)" in printed
    assert "models beside retrieval on the same walk-forward folds" in printed
    assert "within-session AUC pooled over PM_HIGH and PM_LOW: null_retrieval" in printed
    assert "PM_HIGH" in printed
    assert "the four conditions in the 30 s before each trigger, all levels" in printed


def test_evidence_prints_a_levels_conditions_at_real_and_placebo_levels(
    market_lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    """`spymaster evidence`: the group's triggers counted as the table counts them, real
    and placebo; a window or level the warehouse lacks is named."""
    argv = ["evidence", "--lake", str(market_lake.root), "--level", "PM_HIGH", "--dir", "UP"]
    assert main([*argv, "--window", "10"]) == 0
    printed = capsys.readouterr().out
    assert "the four conditions in the 10 s before each trigger, PM_HIGH, approached UP" in printed
    ((n,),) = warehouse(
        market_lake,
        "select n from gold.condition_outcomes where level_kind = 'real' and level_id = 'PM_HIGH' "
        "and approach_dir = 'UP' and window_seconds = 10 and grouping = 'all'",
    )
    assert f"    all triggers  {n:>5,} " in printed
    assert "  real levels " in printed
    assert "  placebo levels" in printed
    assert main([*argv, "--window", "7"]) == 1
    assert "--window 7: the warehouse has condition windows of [5, 10, 30] seconds" in (
        capsys.readouterr().err
    )
    assert main(["evidence", "--lake", str(market_lake.root), "--level", "PM_HIGX"]) == 1
    error = capsys.readouterr().err
    assert "no triggers of --level PM_HIGX --dir ALL" in error
    assert "Traceback" not in error


def test_diff_finds_a_changed_row_and_a_missing_table(
    market_lake: Lake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`spymaster diff`: a copy of the warehouse is the same; with one level moved by a tick
    and one table dropped, both are named and the command fails."""
    other = Lake(tmp_path / "other")
    other.root.mkdir()
    shutil.copyfile(market_lake.duckdb_path, other.duckdb_path)
    arguments = ["diff", "--lake", str(market_lake.root), "--other", str(other.root)]
    assert main(arguments) == 0
    assert "all the same" in capsys.readouterr().out
    connection = duckdb.connect(str(other.duckdb_path))
    try:
        connection.execute(
            "update silver.session_levels set level_price = level_price + 0.25 "
            "where rowid = (select min(rowid) from silver.session_levels)"
        )
        connection.execute("drop table gold.model_reliability")
    finally:
        connection.close()
    assert main(arguments) == 1
    printed = capsys.readouterr().out
    dropped = next(line for line in printed.splitlines() if "gold.model_reliability" in line)
    assert "only in this lake" in dropped
    levels = next(line for line in printed.splitlines() if "silver.session_levels" in line)
    assert "1 rows only here, 1 only there" in levels
    assert printed.rstrip().endswith("2 differ")


def test_raw_folder_holds_only_what_the_generator_wrote(market_lake: Lake) -> None:
    """Per session: the future's MBO and definitions, the options' MBO, definitions and
    statistics, laid out by product and schema under Databento's daily names; beside them the
    generator's ground truth."""
    days = [day for (day,) in warehouse(market_lake, "select dt from silver.session_calendar")]
    assert len(days) == SESSIONS
    expected = {"ground_truth/approaches.parquet", "ground_truth/market.json"}
    for day in days:
        for product, schemas in (
            ("ES.FUT", ("mbo", "definition")),
            ("ES.OPT", ("mbo", "definition", "statistics")),
        ):
            expected |= {
                f"{product}/{schema}/glbx-mdp3-{day:%Y%m%d}.{schema}.dbn.zst" for schema in schemas
            }
    written = {
        str(path.relative_to(market_lake.raw))
        for path in market_lake.raw.rglob("*")
        if path.is_file()
    }
    assert written == expected


def test_planted_approaches_are_found_as_triggers_with_their_outcomes(market_lake: Lake) -> None:
    """Against the generator's ground truth (read by tests only): each planted approach of an
    included session is a trigger of the same level within a minute, in the same direction,
    and its label at the primary horizon is the planted outcome."""
    matches = warehouse(
        market_lake,
        f"""
        with planted as (
            select truth.*, make_timestamp(truth.trigger_ts // 1000) as planted_ts
            from read_parquet('{market_lake.raw}/ground_truth/approaches.parquet') as truth
            inner join silver.contract_day_selection as selection
                on selection.dt = truth.session_date and selection.is_included
        )
        select planted.level_id, planted.approach_dir, planted.outcome,
            arg_min(vectors.approach_dir, abs(epoch(vectors.ts) - epoch(planted.planted_ts))),
            arg_min(outcomes.outcome, abs(epoch(vectors.ts) - epoch(planted.planted_ts)))
        from planted
        left join gold.trigger_vectors as vectors
            on vectors.dt = planted.session_date and vectors.level_id = planted.level_id
            and vectors.ts between planted.planted_ts - interval 60 second
                and planted.planted_ts + interval 60 second
        left join gold.trigger_outcomes as outcomes using (trigger_id)
        group by planted.session_date, planted.level_id, planted.approach_dir, planted.outcome,
            planted.planted_ts
        """,
    )
    assert len(matches) >= 60
    found = [row for row in matches if row[3] is not None]
    recall = len(found) / len(matches)
    assert recall >= 0.90, f"recall {recall:.1%} of {len(matches)} planted approaches"
    assert all(direction == planted for _, planted, _, direction, _ in found)
    agreement = np.mean([label == outcome for _, _, outcome, _, label in found])
    assert agreement >= 0.90, f"labels agree with the planted outcomes in {agreement:.1%}"


def test_trigger_vectors_are_the_blocks_of_the_level_features(market_lake: Lake) -> None:
    """Recompute a few vectors from level_features and market_features by the blocks'
    definitions, name by name through the catalog."""
    catalog = warehouse(
        market_lake,
        "select level_id, feature_index, feature_name, block, base_feature, feature_scope "
        "from gold.trigger_feature_catalog order by level_id, feature_index",
    )
    lengths = dict(
        warehouse(
            market_lake,
            "select level_id, len(any_value(feature_vector)) "
            "from gold.trigger_vectors group by level_id",
        )
    )
    names_by_level: dict[str, list[tuple[str, str, str, str]]] = {}
    for level, index, name, block, base, scope in catalog:
        names_by_level.setdefault(level, []).append((name, block, base, scope))
        assert index == len(names_by_level[level])
        prefix = level.lower() + "_"
        assert name == f"{base}_{block}"
        assert base.startswith(prefix) == (scope == "level")
    assert set(lengths) <= set(names_by_level)
    for level, length in lengths.items():
        assert length == len(names_by_level[level])
        assert len({name for name, *_ in names_by_level[level]}) == length
    assert ("pm_high_ask_pull_add_log_rest_w0", "w0", "pm_high_ask_pull_add_log_rest", "level") in (
        names_by_level["PM_HIGH"]
    )

    triggers = warehouse(
        market_lake,
        "select trigger_id, symbol, dt, level_id, window_start, feature_vector "
        "from gold.trigger_vectors using sample reservoir(6 rows) repeatable (3)",
    )
    step = np.timedelta64(5, "s")
    for trigger_id, symbol, day, level, window_start, vector in triggers:
        history: dict[str, np.ndarray] = {}
        for table, condition in (
            ("gold.level_features", f"and level_id = '{level}'"),
            ("gold.market_features", ""),
        ):
            connection = duckdb.connect(str(market_lake.duckdb_path), read_only=True)
            frame = connection.execute(
                f"select * from {table} where symbol = ? and dt = ? {condition} "
                "and window_start <= ? order by window_start",
                [symbol, day, window_start],
            ).fetchnumpy()
            connection.close()
            times = frame["window_start"].astype("datetime64[s]")
            for column, values in frame.items():
                if values.dtype.kind == "f":
                    history[column] = (times, values.astype(float))
        for position, (name, block, base, scope) in enumerate(names_by_level[level]):
            column = base.removeprefix(level.lower() + "_") if scope == "level" else base
            times, values = history[column]
            expected = _block(times, values, block, step)
            assert vector[position] == pytest.approx(expected, abs=1e-9), (trigger_id, name)


def _block(times: np.ndarray, values: np.ndarray, block: str, step: np.timedelta64) -> float:
    """The block of a series at its last time; a missing earlier window is no change."""
    at = dict(zip(times, values, strict=True))
    now = times[-1]

    def lagged(k: int) -> float | None:
        return at.get(now - k * step)

    def difference(order: int, offset: int = 0) -> float:
        if order == 0:
            return at[now - offset * step]
        if lagged(offset + 1) is None:
            return 0.0
        return difference(order - 1, offset) - difference(order - 1, offset + 1)

    if block == "w0":
        return at[now]
    if block in ("d1", "d2", "d3"):
        return difference(int(block[1]))
    windows = int(block.split("_", maxsplit=1)[0][1:])
    if block.endswith("_mean"):
        return float(np.mean([value for time, value in at.items() if time > now - windows * step]))
    earlier = lagged(windows - 1)
    return 0.0 if earlier is None else (at[now] - earlier) / (windows - 1)


def test_neighbors_command_lists_earlier_setups_as_the_walk_forward_did(
    market_lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    indexes = warehouse(
        market_lake, "select level_id, approach_dir, vectors from gold.retrieval_indexes"
    )
    assert {(level, direction) for level, direction, _ in indexes} >= {("PM_HIGH", "UP")}
    for level, direction, vectors in indexes:
        folder = market_lake.root / "indexes" / f"{level}_{direction}"
        assert (folder / "vectors.faiss").exists(), folder
        meta = json.loads((folder / "index.json").read_text())
        assert len(meta["trigger_ids"]) == vectors
        features = warehouse(
            market_lake,
            f"select feature_name from gold.retrieval_features where level_id = '{level}' "
            "order by retrieval_index",
        )
        assert meta["feature_names"] == [name for (name,) in features]
        assert len(meta["metric"]["weights"]) == len(meta["metric"]["scaling"]["median"]) == 96
    level, ts, day, direction = warehouse(
        market_lake,
        "select level_id, ts, dt, approach_dir from gold.trigger_vectors "
        "where dt = (select max(dt) from gold.trigger_vectors) order by ts limit 1",
    )[0]
    at = ts.replace(tzinfo=dt.UTC).isoformat()
    assert main(["neighbors", "--lake", str(market_lake.root), "--level", level, "--at", at,
                 "--k", "5", "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert (result["level_id"], result["approach_dir"]) == (level, direction)
    earlier = warehouse(
        market_lake,
        "select count(*) from gold.trigger_vectors v "
        "join gold.trigger_outcomes o using (trigger_id) "
        f"where v.level_id = '{level}' and v.approach_dir = '{direction}' and v.dt < '{day}' "
        "and o.outcome is not null",
    )[0][0]
    assert len(result["neighbors"]) == min(5, earlier) > 0
    assert all(row["dt"] < str(day) for row in result["neighbors"])
    similarities = [row["similarity"] for row in result["neighbors"]]
    assert similarities == sorted(similarities, reverse=True)
    assert result["p_break"] + result["p_reject"] + result["p_chop"] == pytest.approx(1.0)
    # with the walk-forward's k, the same neighbours and P(BREAK) as trigger_signals
    assert main(["neighbors", "--lake", str(market_lake.root), "--level", level, "--at", at,
                 "--k", "15", "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    (signal,) = warehouse(
        market_lake,
        "select neighbour_trigger_ids, p_break from gold.trigger_signals "
        f"where trigger_id = '{result['trigger_id']}'",
    )
    assert [row["trigger_id"] for row in result["neighbors"]] == signal[0]
    assert result["p_break"] == pytest.approx(signal[1])
    assert main(["neighbors", "--lake", str(market_lake.root), "--level", level, "--at", at]) == 0
    assert "most similar setups of earlier sessions" in capsys.readouterr().out
    assert main(["neighbors", "--lake", str(market_lake.root), "--level", level,
                 "--at", "2020-01-02T15:00:00Z"]) == 1  # fmt: skip
    assert "no " + level + " trigger on 2020-01-02" in capsys.readouterr().err
    # the first session has no earlier one: an answer without neighbours, not an error
    first_level, first_ts = warehouse(
        market_lake,
        "select level_id, ts from gold.trigger_vectors "
        "where dt = (select min(dt) from gold.trigger_vectors) order by ts limit 1",
    )[0]
    first_at = first_ts.replace(tzinfo=dt.UTC).isoformat()
    assert main(["neighbors", "--lake", str(market_lake.root), "--level", first_level,
                 "--at", first_at, "--json"]) == 0  # fmt: skip
    first = json.loads(capsys.readouterr().out)
    assert first["neighbors"] == []
    assert first["p_break"] is None
    assert main(["neighbors", "--lake", str(market_lake.root), "--level", first_level,
                 "--at", first_at]) == 0  # fmt: skip
    assert "no earlier session has a trigger" in capsys.readouterr().out


def _rewrite_open_interest(path: Path, factor: int) -> None:
    """The same statistics file with every open interest multiplied (a corrected download)."""
    store = db.DBNStore.from_file(path)
    records = store.to_ndarray().copy()
    records["quantity"] = records["quantity"] * factor
    header_length = 8 + int.from_bytes(store.reader.read(8)[4:8], "little")
    header = store.reader.read(header_length)
    path.write_bytes(zstandard.ZstdCompressor().compress(header + records.tobytes()))


OPTIONS_QUOTES = ("engine_options_quote_partitions", "engine_options_quotes_1s")


def test_statistics_landed_after_a_build_rebuild_that_days_option_quotes(
    market_lake: Lake,
) -> None:
    """Open interest is an input of a contract-day's option quotes: a statistics file landed
    (or corrected) after the day was built rebuilds that day, and only it."""
    (day, _), *_ = included_days(market_lake)[::-1]
    stamp = f"{day:%Y%m%d}"
    path = market_lake.raw / "ES.OPT" / "statistics" / f"glbx-mdp3-{stamp}.statistics.dbn.zst"
    original = path.read_bytes()

    def quotes() -> dict[dt.date, tuple[object, ...]]:
        """Per day: the open interest summed, the partition's file (its name and modification
        time: a day computed again writes it again) and the build fingerprint."""
        files = engine_files(market_lake, "options_quotes_1s")
        return {
            day: (open_interest, files[f"symbol={symbol}/dt={day}/{data_file}"][0], fingerprint)
            for day, symbol, open_interest, data_file, fingerprint in warehouse(
                market_lake,
                "select dt, symbol, sum(open_interest), any_value(data_file), "
                "min(q.build_fingerprint) from silver.engine_options_quotes_1s q "
                "join silver.engine_options_quote_partitions using (symbol, dt) group by all",
            )
        }

    before = quotes()
    try:
        _rewrite_open_interest(path, 2)
        ingest(market_lake.raw, market_lake, workers=1)
        dbt(market_lake, "build", "--select", *OPTIONS_QUOTES)
        after = quotes()
        assert after[day][0] == 2 * before[day][0]
        assert after[day][2] != before[day][2]
        assert {d: v for d, v in after.items() if d != day} == {
            d: v for d, v in before.items() if d != day
        }
    finally:  # the market as the other tests know it
        path.write_bytes(original)
        ingest(market_lake.raw, market_lake, workers=1)
        dbt(market_lake, "build", "--select", *OPTIONS_QUOTES)
    assert quotes()[day][::2] == before[day][::2]


def test_every_table_name_is_unique_across_the_schemas(market_lake: Lake) -> None:
    """Live and the HUD find a warehouse table by its name alone."""
    assert (
        warehouse(
            market_lake,
            "select table_name from information_schema.tables group by table_name "
            "having count(*) > 1",
        )
        == []
    )
