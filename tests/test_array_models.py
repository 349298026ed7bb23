"""The array models' own process: it computes, from the rows sent to it, the rows the calling
process computes from the same rows (a model read by another of its models included); what it
cannot compute and its end are named; the calling thread keeps off its CPU while both run."""

from __future__ import annotations

import datetime as dt
import os
import signal

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from live.array_models import (
    ArrayModel,
    ArrayModels,
    ArrayProcess,
    ArrayProcessError,
    RecentRows,
    TimeSpans,
)
from live.array_sql import ArrayQuery, ArraySqlError, HeldTable
from tests.test_array_sql import book_rows

NS = 1_000_000_000
START_NS = int(dt.datetime(2024, 3, 12, 14, 30, tzinfo=dt.UTC).timestamp()) * NS

# over the book's rows: a LAG per side and price (a string key) and a decimal division
CHANGES = """
select
    window_start, side, price, qty,
    qty - lag(qty) over (partition by side, price order by window_start) as qty_change,
    qty / (rest + 1.0) as intensity
from book
"""
# over CHANGES's rows: a model of the process reading another
PER_SIDE = """
select window_start, side, sum(qty) as qty, count(qty_change) as changes, max(price) as top
from changes
group by window_start, side
"""


def models(book: pa.Table) -> ArrayModels:
    """CHANGES over the book, PER_SIDE over CHANGES, typed as DuckDB types them."""
    connection = duckdb.connect()
    connection.register("book", book)
    changes_schema = connection.sql(CHANGES).to_arrow_table().schema
    connection.register("changes", connection.sql(CHANGES).to_arrow_table())
    per_side_schema = connection.sql(PER_SIDE).to_arrow_table().schema
    built = ArrayModels()
    built.models["changes"] = ArrayModel(
        "changes",
        ArrayQuery(CHANGES, connection),
        changes_schema,
        "window_start",
        frozenset({"book"}),
    )
    built.models["per_side"] = ArrayModel(
        "per_side",
        ArrayQuery(PER_SIDE, connection),
        per_side_schema,
        "window_start",
        frozenset({"changes"}),
    )
    for table, schema in (("book", book.schema), ("changes", changes_schema)):
        built.recent[table] = RecentRows("window_start")
        built.schemas[table] = schema
    return built


def second(offset: int) -> int:
    return START_NS + offset * NS


def run_here(here: ArrayModels, name: str, start: int, lower: int, end: int) -> pa.Table:
    held = here.run(name, start, lower, end)
    here.add(name, held, TimeSpans(held.table))
    return held.table


def run_there(process: ArrayProcess, name: str, start: int, lower: int, end: int) -> pa.Table:
    process.start_run(name, start, lower, end)
    done, rows = process.result()
    assert done == name
    return rows


def same_bits(left: pa.Table, right: pa.Table) -> None:
    assert left.schema == right.schema
    for name in left.column_names:
        a, b = left.column(name), right.column(name)
        assert a.is_valid().equals(b.is_valid()), name
        if pa.types.is_floating(a.type):
            x, y = a.fill_null(0.0).to_numpy(), b.fill_null(0.0).to_numpy()
            assert np.array_equal(x.view(np.int64), y.view(np.int64)), name
        else:
            assert a.to_pylist() == b.to_pylist(), name


def test_the_process_computes_from_the_rows_sent_what_the_caller_computes() -> None:
    book = book_rows(400, seed=21)  # 40 seconds of rows, a few per second
    here = models(book)
    process = ArrayProcess(models(book))
    try:
        assert process.names == {"changes", "per_side"}
        assert process.reads == {"book"}  # changes is made there
        chunks = [pa.Table.from_batches([batch]) for batch in book.to_batches(max_chunksize=25)]
        compared = 0
        for step in range(0, 40, 4):  # a step computes 4 seconds over 3 of lookback
            start, end = second(step), second(step + 4)
            for chunk in chunks:
                times = chunk.column("window_start").cast(pa.int64()).to_numpy() * 1000
                if start <= times.min() < end:  # the rows arrive before their seconds run
                    here.add("book", HeldTable(chunk), TimeSpans(chunk))
                    process.add("book", chunk)
            for name in ("changes", "per_side"):
                expected = run_here(here, name, start, start - 3 * NS, end)
                same_bits(run_there(process, name, start, start - 3 * NS, end), expected)
                compared += expected.num_rows
            here.forget_before(start - 3 * NS)
            process.forget_before(start - 3 * NS)
        assert compared > 400
    finally:
        process.close()


def test_what_the_process_cannot_compute_is_named_and_it_goes_on() -> None:
    book = book_rows(200, seed=22)
    spoiled = book.set_column(
        book.schema.get_field_index("price"),
        "price",
        pa.array(np.where(np.arange(200) == 150, np.nan, book.column("price").to_numpy())),
    )
    process = ArrayProcess(models(book))
    try:
        process.add("book", spoiled)  # a NaN price late in the rows: a LAG's partition key
        with pytest.raises(ArraySqlError, match="a NaN key is not evaluated"):
            run_there(process, "changes", second(0), second(0), second(40))
        assert run_there(process, "changes", second(0), second(0), second(5)).num_rows > 0
    finally:
        process.close()


def test_a_process_that_died_is_named_with_its_exit_code() -> None:
    book = book_rows(50, seed=23)
    process = ArrayProcess(models(book))
    try:
        process.add("book", book)
        assert run_there(process, "changes", second(0), second(0), second(40)).num_rows == 50
        os.kill(process.pid, signal.SIGKILL)
        ended = r"the process computing changes, per_side ended \(exit code -9\)"
        with pytest.raises(ArrayProcessError, match=ended):
            run_there(process, "changes", second(0), second(0), second(40))
    finally:
        process.close()  # at once: nothing left to stop


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to keep off")
def test_the_calling_thread_keeps_off_the_processs_cpu_while_both_compute() -> None:
    book = book_rows(10, seed=24)
    process = ArrayProcess(models(book))
    try:
        process.add("book", book)
        run_there(process, "changes", second(0), second(0), second(40))  # it has started
        before = os.sched_getaffinity(0)
        assert process.cpu in before
        with process.beside():
            assert os.sched_getaffinity(0) == before - {process.cpu}
        assert os.sched_getaffinity(0) == before
        assert os.sched_getaffinity(process.pid) == {process.cpu}
    finally:
        process.close()
