"""live.array_sql: compiled SQL evaluated over arrays gives DuckDB's rows, bit for bit.

DuckDB itself is the reference: each query runs in DuckDB and in the evaluator over the same
Arrow tables (random values with NULLs, gaps in time, ties), and the results must be equal,
column types included. Constructs the evaluator does not implement are named."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from live.array_models import RecentRows, TimeSpans
from live.array_sql import ArrayQuery, ArraySqlError, HeldTable, _Evaluation, from_arrow


def _with_nulls(values: np.ndarray, rng: np.random.Generator, share: float = 0.15) -> pa.Array:
    return pa.array(values, mask=rng.random(len(values)) < share)


def book_rows(rows: int, seed: int) -> pa.Table:
    """Seconds with gaps, two sides, a few prices: the shape of the frame tables."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2024, 3, 12, 14, 30)
    seconds = np.sort(rng.choice(40, size=rows)) if rows else np.zeros(0, int)
    return pa.table(
        {
            "symbol": pa.array(["ESM4"] * rows, pa.string()).dictionary_encode(),
            "dt": pa.array([dt.date(2024, 3, 12)] * rows, pa.date32()),
            "window_start": pa.array(
                [start + dt.timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us")
            ),
            "side": pa.array(rng.choice(["bid", "ask"], size=rows), pa.string()),
            "price": pa.array(5000 + 0.25 * rng.integers(-8, 8, size=rows), pa.float64()),
            "rel_ticks": pa.array(rng.integers(-25, 25, size=rows), pa.int32()),
            "qty": pa.array(rng.integers(0, 40, size=rows), pa.int64()),
            "rest": _with_nulls(rng.integers(0, 9, size=rows), rng),
            "value": _with_nulls(rng.normal(0, 3, size=rows), rng),
            "ratio": pa.array(rng.random(rows) * 50 + 1e-3, pa.float64()),
            "valid": _with_nulls(rng.random(rows) < 0.9, rng),
        }
    )


BANDS = pa.table(
    {
        "band": ["at", "near", "mid"],
        "min_ticks": pa.array([0, 3, 6], pa.int32()),
        "max_ticks": pa.array([2, 5, 14], pa.int32()),
    }
)


def both(sql: str, tables: dict[str, pa.Table]) -> tuple[pa.Table, pa.Table]:
    """DuckDB's result and the evaluator's, as DuckDB types it."""
    connection = duckdb.connect()
    for name, table in tables.items():
        connection.register(name, table)
    expected = connection.sql(sql).to_arrow_table()
    query = ArrayQuery(sql, connection)
    got = query.run_as(lambda schema, name: tables[name], expected.schema)
    return expected, got


def assert_same(sql: str, tables: dict[str, pa.Table]) -> None:
    expected, got = both(sql, tables)
    assert got.schema == expected.schema
    for name in expected.column_names:
        left, right = expected.column(name), got.column(name)
        assert left.null_count == right.null_count, name
        assert left.is_valid().equals(right.is_valid()), name
        if pa.types.is_floating(left.type):  # the same bits, -0.0 included
            valid = left.is_valid().to_numpy(zero_copy_only=False)
            a = left.fill_null(0.0).to_numpy()[valid]
            b = right.fill_null(0.0).to_numpy()[valid]
            assert np.array_equal(a.view(np.int64), b.view(np.int64)), (name, a, b)
        else:
            assert left.to_pylist() == right.to_pylist(), name


SIZES = [0, 1, 7, 300]

ARITHMETIC = """
select
    symbol, dt, window_start, side, price,
    qty / (rest + 1.0) as intensity,
    qty / rest as int_division,
    ln((qty + 1.0) / (rest + 1.0)) as log_ratio,
    ln(ratio) as ln_ratio,
    round(value) as rounded,
    round(price / 5) * 5 + 5 * 2 as grid,
    cast(round((price - 5000) / 0.25) as integer) as ticks,
    cast(greatest(qty - rest, 0) as double) as erosion,
    greatest(value, 0.0) as floor_value,
    least(greatest(value / 3, 0.0), 1.0) as clamped,
    coalesce(rest, 0) as rest_or_zero,
    abs(rel_ticks) as distance,
    -value as negated,
    value / (abs(value) + 1e-6) as imbalance,
    0.5 * value + 0.35 * ratio + 0.15 * (1.0 - ratio) as weighted,
    window_start + interval 1 second as window_end,
    (price + price) / 2 as mid
from book
order by window_start, side, price, qty, rest, value
"""


@pytest.mark.parametrize("rows", SIZES)
def test_arithmetic_and_functions_are_duckdbs(rows: int) -> None:
    assert_same(ARITHMETIC, {"book": book_rows(rows, seed=rows)})


def test_halves_round_away_from_zero_and_a_division_by_zero_is_null() -> None:
    table = pa.table(
        {
            "x": pa.array([0.5, 1.5, 2.5, -0.5, -2.5, 2.4999999999999996, 1e15 + 0.5, 0.0]),
            "n": pa.array([0, 1, 2, 3, 0, 5, 6, 0], pa.int64()),
        }
    )
    assert_same(
        "select round(x) as r, cast(x as bigint) as i, x / n as q, n / n as nn, "
        "x / 0.0 as zero from t order by x",
        {"t": table},
    )


LOGIC = """
select
    window_start, side, price, qty, rest, value, valid,
    case
        when rest is null or value is null then null
        when value > rest then 1.0
        when valid then 0.5
        else 0.0
    end as stepped,
    case when side = 'ask' and rel_ticks > 0 then 'above'
         when side = 'bid' and rel_ticks < 0 then 'below' end as book_side,
    valid and value > 0 as both_hold,
    valid or value > 0 as either_holds,
    not valid as invalid,
    rest is null as rest_missing,
    value is not null as has_value,
    abs(rel_ticks) between 3 and 5 as near
from book
where qty >= 1 or rest is null
order by window_start, side, price, qty, rest, value
"""


@pytest.mark.parametrize("rows", SIZES)
def test_conditions_follow_sql_three_valued_logic(rows: int) -> None:
    assert_same(LOGIC, {"book": book_rows(rows, seed=100 + rows)})


DERIVATIVES = """
with deduplicated as (
    select symbol, dt, window_start, side, price, max(value) as value, sum(qty) as qty
    from book
    group by symbol, dt, window_start, side, price
),

lags as (
    select
        *,
        lag(window_start) over w = window_start - interval 1 second as consecutive_1,
        lag(window_start, 2) over w = lag(window_start) over w - interval 1 second
            as consecutive_2,
        lag(value) over w as value_1,
        lag(value, 2) over w as value_2,
        lag(qty, 3) over w as qty_3
    from deduplicated
    window w as (partition by symbol, dt, side, price order by window_start)
)

select
    * exclude (consecutive_2),
    case when consecutive_1 then value - value_1 else 0 end as value_d1,
    case when consecutive_2 then value_1 - value_2 else 0 end as value_d1_back
from lags
order by side, price, window_start
"""


@pytest.mark.parametrize("rows", SIZES)
def test_lags_see_only_their_partitions_earlier_rows(rows: int) -> None:
    assert_same(DERIVATIVES, {"book": book_rows(rows, seed=200 + rows)})


JOINS = """
with seconds as (
    select distinct_seconds.window_start, distinct_seconds.side
    from (
        select window_start, side, max(qty) as top
        from book
        group by window_start, side
    ) as distinct_seconds
    where top > 10
),
grid as (
    select seconds.window_start, seconds.side, 5000 + 0.25 * steps.step as price
    from seconds
    cross join range(-3, 3 + 1) as steps (step)
)
select
    grid.window_start,
    grid.side,
    grid.price,
    book.qty,
    book.value,
    case when book.price is null then 0.0 else book.value end as value_or_zero,
    bands.band,
    band_starts.at_band_start
from grid
left join book
    on
        grid.window_start = book.window_start
        and grid.side = book.side
        and grid.price = book.price
left join bands on abs(book.rel_ticks) between bands.min_ticks and bands.max_ticks
-- a constant of the right side: NULL where no row matches
left join (select min_ticks, true as at_band_start from bands) as band_starts
    on abs(book.rel_ticks) = band_starts.min_ticks
order by grid.window_start, grid.side, grid.price, book.qty, book.value, bands.band
"""


@pytest.mark.parametrize("rows", SIZES)
def test_joins_match_keys_and_leave_the_unmatched_null(rows: int) -> None:
    assert_same(JOINS, {"book": book_rows(rows, seed=300 + rows), "bands": BANDS})


AGGREGATES = """
select
    window_start,
    side,
    count(*) as price_levels,
    sum(qty) as total,
    cast(sum(rest) as bigint) as total_rest,
    sum(qty) / (sum(rest) + 1.0) as intensity,
    max(value) filter (where side = 'ask') as top_ask_value,
    min(price) as low,
    bool_and(valid) as all_valid,
    arg_max(price, [abs(value), -price]) filter (where value != 0) as wall,
    list_avg(list_transform(list([value, ratio] order by price), lambda row: row[1]))
        as ordered_value,
    list_avg(list_transform(list([value, ratio] order by price), lambda row: row[2]))
        as ordered_ratio,
    0.6 * max(value) filter (where rel_ticks > 0) + 0.4 * max(ratio) as score
from book
group by window_start, side
order by window_start, side
"""


@pytest.mark.parametrize("rows", SIZES)
def test_aggregates_and_ordered_averages_are_duckdbs(rows: int) -> None:
    assert_same(AGGREGATES, {"book": book_rows(rows, seed=400 + rows)})


def test_an_aggregate_without_groups_gives_one_row_even_over_no_rows() -> None:
    for rows in (0, 5):
        assert_same(
            "select count(*) as n, sum(qty) as q, max(value) as v from book",
            {"book": book_rows(rows, seed=rows)},
        )


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("select sum(value) as s from book", "sum of non-integers"),
        ("select string_agg(side, ',') as s from book", "string_agg"),
        ("select * from book union all select * from book", "SET_OPERATION_NODE"),
        ("select side < 'bid' as b from book", "ordering comparisons of strings"),
        ("select row_number() over (order by qty) as r from book", "WINDOW_ROW_NUMBER"),
        ("select qty from book limit 3", "LIMIT_MODIFIER"),
    ],
)
def test_what_it_does_not_evaluate_is_named(sql: str, named: str) -> None:
    tables = {"book": book_rows(5, seed=1)}
    query = ArrayQuery(sql)
    with pytest.raises(ArraySqlError, match=named):
        query.run_as(lambda schema, name: tables[name], pa.schema([]))


RUNS = """
with wide_bands as (
    -- reads only the bands: the same table every run
    select band, min_ticks, max_ticks + 1 as max_ticks from bands
),
busy as (
    select window_start, side, price, rel_ticks, qty from book where qty > 5
),
busy_bands as (
    -- reads wide_bands and busy: busy's book changes
    select busy.window_start, busy.side, busy.price, busy.qty, wide_bands.band
    from busy
    left join wide_bands
        on abs(busy.rel_ticks) between wide_bands.min_ticks and wide_bands.max_ticks
),
per_band as (
    -- busy read a second time in a run (computed once), through busy_bands
    select band, count(*) as seconds_busy, max(qty) as top from busy_bands group by band
)
select
    busy_bands.window_start, busy_bands.side, busy_bands.price, busy_bands.band,
    per_band.seconds_busy, per_band.top
from busy_bands
left join per_band on busy_bands.band = per_band.band
order by busy_bands.window_start, busy_bands.side, busy_bands.price, busy_bands.qty, busy_bands.band
"""


def test_a_cte_over_tables_that_did_not_change_is_computed_once_a_run_over_new_rows_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection = duckdb.connect()
    query = ArrayQuery(RUNS, connection)
    queries_run = []
    evaluate = _Evaluation.query
    monkeypatch.setattr(
        _Evaluation,
        "query",
        lambda self, node, ctes: queries_run.append(1) or evaluate(self, node, ctes),
    )
    for run, seed in enumerate((11, 12, 13, 13)):
        book = book_rows(120, seed=seed)  # a new table every run
        tables = {"book": book, "bands": BANDS}  # the bands: the same object every run
        for name, table in tables.items():
            connection.register(name, table)
        expected = connection.sql(RUNS).to_arrow_table()
        queries_run.clear()
        got = query.run_as(lambda schema, name, tables=tables: tables[name], expected.schema)
        assert got.equals(expected), run
        # the select and its four CTEs, then all but wide_bands
        assert len(queries_run) == (5 if run == 0 else 4), run


@pytest.mark.parametrize("sql", [ARITHMETIC, LOGIC, DERIVATIVES, JOINS, AGGREGATES])
@pytest.mark.parametrize("rows", [0, 7, 300])
def test_held_rows_columns_are_what_reading_them_back_from_arrow_gives(sql: str, rows: int) -> None:
    tables = {"book": book_rows(rows, seed=400 + rows), "bands": BANDS}
    connection = duckdb.connect()
    for name, table in tables.items():
        connection.register(name, table)
    schema = connection.sql(sql).to_arrow_table().schema
    held = ArrayQuery(sql, connection).run_held(lambda _, name: tables[name], schema)
    seeded = [i for i, col in enumerate(held._cols) if col is not None]  # the others: read later
    for i in seeded:
        got, read = held.col(i), from_arrow(held.table.column(i))
        name = schema.field(i).name
        assert (got.kind, got.values.dtype) == (read.kind, read.values.dtype), name
        assert (got.valid is None) == (read.valid is None), name
        if got.valid is not None:
            assert np.array_equal(got.valid, read.valid), name
        # every value, NULLs' fill included, to the bit
        assert got.values.tobytes() == read.values.tobytes(), name
    assert len(seeded) > len(schema) // 2


def test_recent_rows_are_read_by_time_and_forgotten_behind_the_horizon() -> None:
    table = book_rows(300, seed=9)
    recent = RecentRows("window_start")
    for part in table.to_batches(max_chunksize=40):
        rows = pa.Table.from_batches([part])
        recent.add(HeldTable(rows), TimeSpans(rows))
    start_ns = int(dt.datetime(2024, 3, 12, 14, 30, tzinfo=dt.UTC).timestamp()) * 10**9
    lower, upper = start_ns + 10 * 10**9, start_ns + 13 * 10**9
    times = table.column("window_start").cast(pa.int64()).to_numpy() * 1000
    expected = table.filter(pa.array((times >= lower) & (times < upper)))
    query = ArrayQuery("select * from t")

    def read(lower: int, upper: int) -> pa.Table:
        return query.run_as(
            lambda schema, name: recent.rows(table.schema, lower, upper), table.schema
        )

    assert expected.num_rows > 0
    assert read(lower, upper).equals(expected)
    recent.forget_before(lower)
    assert read(lower, upper).equals(expected)
    assert read(start_ns, upper).num_rows < int((times < upper).sum())
